// The generated files against the code: etc/libvirt/*.conf and docs/*.md
// are what scripts/ renders now, every manual page lists exactly the options
// its binary's --help shows, docs/vadmin.md and docs/vsh.md exactly the
// verbs and global options of `vadmin help` and `vsh help`, docs/index.md
// links every page, and every shipped config file loads to the code defaults.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { DAEMONS } from '@virtd/daemons';
import { parseConf, remoteDaemonConfig, logdConfig, lockdConfig, type ConfFile } from '@virtd/conf';
import { run, binPath, repoRoot } from '@virtd/test-utils';

const read = (rel: string): string => fs.readFileSync(path.join(repoRoot, rel), 'utf8');

/** The body of a `## TITLE` section of a page, up to the next `## `. */
function docSection(page: string, title: string): string {
  const start = page.indexOf(`\n## ${title}\n`);
  if (start < 0) return '';
  const end = page.indexOf('\n## ', start + 1);
  return page.slice(start, end < 0 ? undefined : end);
}

const headings = (text: string, level: string): string[] =>
  [...text.matchAll(new RegExp(`^${level} \`([^\`]+)\`$`, 'gm'))].map((m) => m[1]!);

t.test('generated files are up to date', async (t) => {
  const script = path.join(repoRoot, 'scripts', 'dist', 'generate.js');
  t.ok(fs.existsSync(script), 'scripts are built (npx tsc -b scripts)');
  const r = await run(process.execPath, [script, '--check']);
  t.equal(r.code, 0, `node scripts/dist/generate.js --check\n${r.stderr}`);
});

t.test('no page renders an empty value', async (t) => {
  // A generator fed an empty string leaves `` or a doubled space behind
  // (docs/vsh.md once showed "vsh -c  uri" and "Using API:  0.1.0").
  const pages = fs.readdirSync(path.join(repoRoot, 'docs')).filter((f) => f.endsWith('.md'));
  for (const f of pages) {
    const prose = read(`docs/${f}`).split('\n').filter((l) => !l.startsWith('```')).join('\n');
    t.notMatch(prose, /(^|[^`])``([^`]|$)/, `${f}: no empty code span`);
    const examples = [...read(`docs/${f}`).matchAll(/^\$ (.*)$/gm)].map((m) => m[1]!);
    t.same(examples.filter((e) => / {2}/.test(e)), [], `${f}: no example command with an empty argument`);
  }
});

for (const d of DAEMONS) {
  t.test(`${d.name}: docs OPTIONS are the options of --help`, async (t) => {
    const help = await run(binPath(d.name), ['--help']);
    t.equal(help.code, 0);
    // "  -t | --timeout <secs>  Exit after timeout period"
    const fromHelp = [...help.stderr.matchAll(/^ {2}(-\w \| --[\w-]+(?: <[\w-]+>)?) /gm)].map((m) => m[1]!);
    t.ok(fromHelp.length >= 7, 'options parsed from --help');
    const documented = headings(docSection(read(`docs/${d.name}.md`), 'OPTIONS'), '###');
    t.same(documented, fromHelp, 'same options, same forms, same order');
  });

  t.test(`etc/libvirt/${d.name}.conf loads to the code defaults`, async (t) => {
    const file = `etc/libvirt/${d.name}.conf`;
    const load = (c: ConfFile | undefined): { config: object; unknownKeys: string[] } =>
      d.family === 'remote' ? remoteDaemonConfig(c, { daemon: d.name, withIP: d.withIP, privileged: true })
        : d.family === 'logd' ? logdConfig(c) : lockdConfig(c);
    const loaded = load(parseConf(read(file), file));
    t.same(loaded.unknownKeys, [], 'no key the loader does not know');
    t.same(loaded.config, load(undefined).config, 'every setting is commented out at its default');
  });
}

for (const cli of ['vadmin', 'vsh']) {
  t.test(`docs/${cli}.md COMMANDS are the verbs of \`${cli} help\``, async (t) => {
    const help = await run(binPath(cli), ['help']);
    t.equal(help.code, 0);
    // "    server-list                    list daemon's servers" (option lines start with '-')
    const verbs = [...help.stdout.matchAll(/^ {4}([a-z][\w-]*) {2,}/gm)].map((m) => m[1]!);
    t.ok(verbs.length >= 10, `verbs parsed from ${cli} help`);
    const documented = headings(docSection(read(`docs/${cli}.md`), 'COMMANDS'), '####');
    t.same([...documented].sort(), [...verbs].sort(), 'every verb documented, nothing else');
  });

  t.test(`docs/${cli}.md OPTIONS are the global options of \`${cli} --help\``, async (t) => {
    const help = await run(binPath(cli), ['--help']);
    t.equal(help.code, 0);
    // "    -c | --connect=URI      connection URI"
    const fromHelp = [...help.stdout.matchAll(/^ {4}(-\S.*?) {2,}/gm)].map((m) => m[1]!);
    t.ok(fromHelp.length >= 4, `options parsed from ${cli} --help`);
    const documented = headings(docSection(read(`docs/${cli}.md`), 'OPTIONS'), '###');
    t.same(documented, fromHelp, 'same options, same forms, same order');
  });
}

t.test('docs/index.md lists every page under docs/', async (t) => {
  const pages = fs.readdirSync(path.join(repoRoot, 'docs')).filter((f) => f.endsWith('.md') && f !== 'index.md').sort();
  const linked = [...read('docs/index.md').matchAll(/\]\(([\w-]+\.md)\)/g)].map((m) => m[1]!).sort();
  t.same(linked, pages, 'one link per page');
});
