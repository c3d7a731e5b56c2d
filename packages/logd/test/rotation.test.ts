// libvirt's rotation test vectors (tests/virrotatingfiletest.c, facts §8.4).
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RotatingFileWriter, readFromPosition } from '../src/rotating-file.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtd-rot-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;

interface Vector {
  name: string;
  maxSize: number;
  maxBackups: number;
  existing?: Buffer;
  existingBackups?: number[];
  writes: Buffer[];
  /** Expected sizes: live, .0, .1, …; undefined = must not exist. */
  want: (number | undefined)[];
}

const bytes = (len: number, ch = 0x61): Buffer => Buffer.alloc(len, ch);
const line = (len: number): Buffer => Buffer.concat([bytes(len - 1), Buffer.from('\n')]);

const vectors: Vector[] = [
  { name: 'max 200, no backups, 512 bytes', maxSize: 200, maxBackups: 0, writes: [bytes(512)], want: [112, undefined] },
  { name: 'max 1024, 2 backups, 3×512', maxSize: 1024, maxBackups: 2, writes: [bytes(512), bytes(512), bytes(512)], want: [512, 1024, undefined] },
  { name: 'max 1024, 2 backups, 7×512', maxSize: 1024, maxBackups: 2, writes: Array.from({ length: 7 }, () => bytes(512)), want: [512, 1024, 1024] },
  { name: 'existing 768 + 512', maxSize: 1024, maxBackups: 2, existing: bytes(768), writes: [bytes(512)], want: [256, 1024, undefined] },
  { name: 'split after a newline in the last 80 bytes', maxSize: 160, maxBackups: 2, existing: bytes(100), writes: [Buffer.concat([line(44), line(59)])], want: [59, 144, undefined] },
  { name: 'existing over the limit rolls first', maxSize: 160, maxBackups: 2, existing: bytes(200), writes: [bytes(103)], want: [103, 200, undefined] },
  { name: 'exactly at the limit rolls only when more comes', maxSize: 100, maxBackups: 1, writes: [bytes(100)], want: [100, undefined] },
  { name: 'max 0 never rolls', maxSize: 0, maxBackups: 3, writes: [bytes(5000), bytes(5000)], want: [10000, undefined] },
];

for (const v of vectors) {
  t.test(v.name, async (t) => {
    const p = path.join(dir, `log${++n}`);
    if (v.existing) fs.writeFileSync(p, v.existing);
    const w = await RotatingFileWriter.open(p, v.maxSize, v.maxBackups);
    for (const b of v.writes) await w.append(b);
    await w.close();
    const size = (f: string): number | undefined => (fs.existsSync(f) ? fs.statSync(f).size : undefined);
    t.same([size(p), ...v.want.slice(1).map((_, i) => size(`${p}.${i}`))], v.want);
    t.equal(fs.statSync(p).mode & 0o777, 0o600, 'log files are 0600');
  });
}

t.test('truncate removes the file and its backups', async (t) => {
  const p = path.join(dir, 'trunc');
  for (const f of [p, `${p}.0`, `${p}.1`]) fs.writeFileSync(f, 'old');
  const w = await RotatingFileWriter.open(p, 100, 2, true);
  await w.close();
  t.same([fs.statSync(p).size, fs.existsSync(`${p}.0`), fs.existsSync(`${p}.1`)], [0, false, false]);
});

t.test('position and reads across rotated files', async (t) => {
  const p = path.join(dir, 'read');
  const w = await RotatingFileWriter.open(p, 100, 3);
  await w.append(Buffer.from('A'.repeat(60)));
  const pos = w.position();
  t.same(pos, { inode: fs.statSync(p).ino, offset: 60 });
  // 120 more bytes: 40 finish the first file, 80 go to a new one.
  await w.append(Buffer.from('B'.repeat(120)));
  const read = await readFromPosition(p, 3, pos, 1000);
  t.equal(read.toString(), 'B'.repeat(120), 'from the old inode (now .0) on into the live file');
  t.equal((await readFromPosition(p, 3, pos, 50)).toString(), 'B'.repeat(50), 'maxlen bounds it');
  const gone = await readFromPosition(p, 3, { inode: 1, offset: 10 }, 1000);
  t.equal(gone.toString(), 'A'.repeat(50) + 'B'.repeat(120), 'an unknown inode starts at the oldest file, same offset');
  await w.close();
});
