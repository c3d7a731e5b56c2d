// Writes the generated files (etc/libvirt/*.conf, etc/default/*, systemd/*,
// docs/*.md), or with
// --check compares them with what the renderers produce now and exits 1
// naming the stale ones, so CI catches code that moved without its docs.
//
//   node scripts/dist/generate.js [--check]
import fs from 'node:fs';
import path from 'node:path';
import { renderEtc } from './render-etc.js';
import { renderDocs } from './render-docs.js';
import { renderSystemdFiles } from './render-units.js';

/** scripts/dist/generate.js → the repository root. */
const ROOT = path.resolve(__dirname, '..', '..');

export async function renderAll(): Promise<Map<string, string>> {
  return new Map([...renderEtc(), ...renderSystemdFiles(), ...await renderDocs()]);
}

async function main(argv: readonly string[]): Promise<number> {
  const unknown = argv.filter((a) => a !== '--check');
  if (unknown.length) {
    process.stderr.write(`usage: generate.js [--check] (unknown: ${unknown.join(' ')})\n`);
    return 2;
  }
  const check = argv.includes('--check');
  const stale: string[] = [];
  for (const [rel, text] of await renderAll()) {
    const file = path.join(ROOT, rel);
    const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
    if (current === text) continue;
    stale.push(rel);
    if (!check) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, text);
    }
  }
  if (check && stale.length) {
    process.stderr.write(`stale generated files (run: node scripts/dist/generate.js):\n${stale.map((f) => `  ${f}\n`).join('')}`);
    return 1;
  }
  process.stdout.write(check ? 'generated files are up to date\n' : `wrote ${stale.length} file(s)${stale.map((f) => `\n  ${f}`).join('')}\n`);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    (e) => { process.stderr.write(`generate: ${e instanceof Error ? e.stack : String(e)}\n`); process.exitCode = 1; },
  );
}
