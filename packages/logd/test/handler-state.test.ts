// The log handler's re-exec pair: toState() against the golden JSON
// (libvirt's "handler" object), and restore() in a fresh handler on the
// same pipe (a duplicated fd, as execve would keep it) under a changed
// rotation, which the reopened file must follow. Nothing written to the
// pipe is lost or repeated across the hand-over.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { dupCloexec, closeFd } from '@virtd/posix';
import { LogHandler, type HandlerState } from '../src/handler.js';

const GOLDEN = path.join(__dirname, '..', '..', 'test', 'fixtures', 'handler-state.json');
const log = pino({ level: 'silent' });
const dom = { uuid: 'c7a5fdbd-edaf-9455-926a-d65c16db1809', name: 'guest1' };

t.test('LogHandler: golden state, restore on the same pipe, new rotation applies', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtd-handler-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'guest1.log');
  const old = new LogHandler({ maxSize: 0, maxBackups: 3 }, { log });
  const { writeFd } = await old.open('qemu', dom, file, 0);
  fs.writeSync(writeFd, 'before\n');
  t.equal((await old.position(file, 0)).offset, 7);

  await old.quiesce();
  // Written while quiesced: stays in the pipe for the next image.
  fs.writeSync(writeFd, 'in the pipe\n');
  const state = old.toState();
  const got = JSON.parse(JSON.stringify(state, (k, v: unknown) => (k === 'pipefd' ? '<fd>' : k === 'path' ? path.basename(v as string) : v))) as unknown;
  if (process.env.VIRTD_UPDATE_GOLDEN) fs.writeFileSync(GOLDEN, `${JSON.stringify(got, null, 2)}\n`);
  t.same(got, JSON.parse(fs.readFileSync(GOLDEN, 'utf8')), 'libvirt\'s handler object');
  t.equal(fs.readFileSync(file, 'utf8'), 'before\n', 'nothing read while quiesced');

  const kept: HandlerState = { files: state.files.map((f) => ({ ...f, pipefd: dupCloexec(f.pipefd) })) };
  const fresh = new LogHandler({ maxSize: 16, maxBackups: 8 }, { log });
  await fresh.restore(kept);
  t.same(fresh.list().map((f) => [f.path, f.driver, f.dom]), [[file, 'qemu', dom]], 'the entry is back');
  fs.writeSync(writeFd, 'after the hand-over\n');
  await fresh.position(file, 0);
  const all = [...Array.from({ length: 8 }, (_, i) => `${file}.${7 - i}`), file].filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f, 'utf8')).join('');
  t.equal(all, 'before\nin the pipe\nafter the hand-over\n', 'every byte once, in order');
  t.ok(fs.existsSync(`${file}.0`), 'the new max_size rolled the reopened file over');

  closeFd(writeFd);
  await t.resolves(() => new Promise<void>((resolve) => {
    const poll = (): void => { if (fresh.size === 0) resolve(); else setTimeout(poll, 10); };
    poll();
  }), 'EOF closes the restored entry');
  await old.close();
});
