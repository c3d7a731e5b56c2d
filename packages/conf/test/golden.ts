// Golden-file helpers shared by the data-driven tests. Set
// VIRTD_UPDATE_GOLDEN=1 to (re)write expectations instead of checking them;
// review the diff before keeping it.
import fs from 'node:fs';
import path from 'node:path';
import { isConfError } from '../src/index.js';

/** test/data in the source tree (tests run from dist/test). */
export const DATA = path.resolve(__dirname, '../../test/data');
const UPDATE = process.env.VIRTD_UPDATE_GOLDEN === '1';

/** Case names (without `.conf`) of a data directory, sorted. */
export const cases = (dir: string): string[] =>
  fs.readdirSync(path.join(DATA, dir)).filter((f) => f.endsWith('.conf')).map((f) => f.slice(0, -5)).sort();

export const readCase = (dir: string, name: string, ext = 'conf'): string =>
  fs.readFileSync(path.join(DATA, dir, `${name}.${ext}`), 'utf8');

/** Stable JSON: bigints as strings, absent optional fields as null so every field shows. */
export const toJson = (v: unknown): string =>
  `${JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x === undefined ? null : x), 2)}\n`;

type Check = Pick<typeof import('tap'), 'equal' | 'fail'>;

/**
 * Run a case and compare with `<name>.json` (its result) or `<name>.err`
 * (the message of the ConfError it throws). Exactly one of them must exist.
 */
export function expectGolden(t: Check, dir: string, name: string, run: () => unknown): void {
  const base = path.join(DATA, dir, name);
  let result: { json: string } | { err: string };
  try {
    result = { json: toJson(run()) };
  } catch (e) {
    if (!isConfError(e)) throw e;
    result = { err: `${e.message}\n` };
  }
  const [ext, text] = 'json' in result ? ['json', result.json] : ['err', result.err];
  const other = ext === 'json' ? 'err' : 'json';
  if (UPDATE) {
    fs.writeFileSync(`${base}.${ext}`, text);
    fs.rmSync(`${base}.${other}`, { force: true });
  }
  if (fs.existsSync(`${base}.${other}`)) {
    t.fail(`${dir}/${name}: expected the outcome in ${name}.${other}, got ${ext}: ${text.trim()}`);
  } else if (!fs.existsSync(`${base}.${ext}`)) {
    t.fail(`${dir}/${name}: no ${name}.json or ${name}.err (run with VIRTD_UPDATE_GOLDEN=1 to create)`);
  } else {
    t.equal(text, fs.readFileSync(`${base}.${ext}`, 'utf8'), `${dir}/${name}.${ext}`);
  }
}
