// A new writer starts on a new line (RotatingFileWriter.endLine): after a
// partial last line in the live file, or in the newest backup when the
// live file is empty; nothing is added to a log that already ends at a line
// boundary or is empty. discard() drops queued writes of a failed file.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RotatingFileWriter } from '../src/rotating-file.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtd-endline-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;

async function after(files: Record<string, string>, maxBackups = 2): Promise<Record<string, string>> {
  const base = path.join(dir, `log${n++}`);
  for (const [suffix, text] of Object.entries(files)) fs.writeFileSync(base + suffix, text);
  const w = await RotatingFileWriter.open(base, 1024, maxBackups);
  await w.endLine();
  await w.append(Buffer.from('next\n'));
  await w.close();
  const out: Record<string, string> = {};
  for (const suffix of ['', '.0', '.1']) if (fs.existsSync(base + suffix)) out[suffix || 'live'] = fs.readFileSync(base + suffix, 'utf8');
  return out;
}

t.test('endLine', async (t) => {
  t.same(await after({ '': 'whole\npart' }), { live: 'whole\npart\nnext\n' }, 'a partial last line is ended');
  t.same(await after({ '': 'whole\n' }), { live: 'whole\nnext\n' }, 'a whole last line is left alone');
  t.same(await after({}), { live: 'next\n' }, 'a new file gets nothing');
  t.same(await after({ '': '', '.0': 'rolled\npart' }), { live: '\nnext\n', '.0': 'rolled\npart' },
    'an empty live file after a rollover: the newest backup\'s partial line is ended');
  t.same(await after({ '': '', '.0': 'rolled\n' }), { live: 'next\n', '.0': 'rolled\n' }, 'a backup ending a line is left alone');
  t.same(await after({ '': '', '.0': 'stale part' }, 0), { live: 'next\n', '.0': 'stale part' }, 'without backups there is nothing before the live file');
});

t.test('discard drops queued writes without touching the file', async (t) => {
  const base = path.join(dir, 'discard');
  const w = await RotatingFileWriter.open(base, 0, 0);
  await w.append(Buffer.from('kept\n'));
  w.discard();
  await t.rejects(w.append(Buffer.from('dropped\n')), /discarded/);
  await w.close();
  t.equal(fs.readFileSync(base, 'utf8'), 'kept\n');
});
