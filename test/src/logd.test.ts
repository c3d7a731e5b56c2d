// virtlogd end to end: real pipes handed over as real fds, a real writer
// process, rotation on disk, positions and reads across rotated files,
// the session-mode shutdown inhibition.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { LogManagerClient } from '@virtd/client';
import { closeFd, pipeSize } from '@virtd/posix';
import { startDaemon, isRoot, tempDir, waitFor, sleep, ensureUser, runtimeDirFor, userEnv } from '@virtd/test-utils';

const DOM = { uuid: 'c7a5fdbd-edaf-9455-926a-d65c16db1809', name: 'guest1' };
const SOCK = '/run/libvirt/virtlogd-sock';

if (!isRoot()) {
  t.pass('skipped: needs root');
} else {
  t.test('a pipe handed over as an fd feeds the file; EOF closes the entry', async (t) => {
    const h = startDaemon({ name: 'virtlogd', mode: 'system' });
    t.teardown(() => h.kill());
    await h.ready(SOCK);
    const c = new LogManagerClient(h.path(SOCK));
    t.teardown(() => c.close());
    const dir = tempDir('virtd-logs-');
    const file = path.join(dir, 'guest1.log');

    const { fd, pos } = await c.openLogFile('qemu', DOM, file);
    t.equal(pos.offset, 0, 'a new file starts at 0');
    t.equal(pos.inode, fs.statSync(file).ino, 'the position names the live file');
    t.equal((fs.statSync(file).mode & 0o777), 0o600, 'log files are 0600');
    await t.rejects(c.openLogFile('qemu', DOM, file), /Cannot open log file: '.*guest1.log': Device or resource busy/, 'one pipe per path');

    fs.writeSync(fd, 'line one\nline two\n');
    // GetLogFilePosition first writes out what the pipe holds.
    const p = await c.getLogFilePosition(file);
    t.equal(p.offset, 18, 'the position counts what was in the pipe');
    t.equal(fs.readFileSync(file, 'utf8'), 'line one\nline two\n');
    t.equal(pipeSize(fd), 1024 * 1024, 'the pipe holds 1 MiB (the kernel gives 64 KiB unless asked)');

    // Bursts are read in large chunks whose buffers go to the write queue
    // uncopied, short writes are copied: interleave both, every line unique.
    const burst = (from: number, n: number): string => Array.from({ length: n }, (_, i) => `burst line ${from + i}\n`).join('');
    let expect = 'line one\nline two\n';
    for (let round = 0; round < 4; round++) {
      const big = burst(round * 100_000, 22_000); // ~400 KB: the four stay under the default max_size
      fs.writeSync(fd, big);
      fs.writeSync(fd, `short ${round}\n`);
      expect += `${big}short ${round}\n`;
    }
    t.equal((await c.getLogFilePosition(file)).offset, Buffer.byteLength(expect), 'bursts and short writes all counted');
    t.ok(fs.readFileSync(file, 'utf8') === expect, 'the file holds every byte in order');
    t.same((await c.list()).map((f) => f.path), [file], 'listed while open');

    closeFd(fd);
    await waitFor(async () => (await c.list()).length === 0, 5000, 'entry closed at EOF');
    await t.rejects(c.getLogFilePosition(file), /No open log file/, 'gone after EOF');

    await c.appendLogFile('qemu', DOM, file, 'appended without a pipe\n');
    t.match(fs.readFileSync(file, 'utf8'), /short 3\nappended without a pipe\n$/);
    t.same(await h.stop(), { code: 0, signal: null });
  });

  t.test('rotation while a writer runs; reads span the rotated files', async (t) => {
    const h = startDaemon({ name: 'virtlogd', mode: 'system', config: 'max_size = 4096\nmax_backups = 3\n' });
    t.teardown(() => h.kill());
    await h.ready(SOCK);
    const c = new LogManagerClient(h.path(SOCK));
    t.teardown(() => c.close());
    const file = path.join(tempDir('virtd-logs-'), 'rot.log');
    const { fd, pos: start } = await c.openLogFile('qemu', DOM, file, 1);

    // 200 numbered 50-byte lines = 10000 bytes: live + .0 + .1 at 4096 each.
    const lines = Array.from({ length: 200 }, (_, i) => `${String(i).padStart(6, '0')} ${'x'.repeat(42)}\n`);
    fs.writeSync(fd, lines.join(''));
    const end = await c.getLogFilePosition(file);
    t.ok(fs.existsSync(`${file}.0`) && fs.existsSync(`${file}.1`), 'rolled over twice');
    t.notOk(fs.existsSync(`${file}.2`), 'no third backup yet');
    for (const f of [file, `${file}.0`, `${file}.1`]) t.ok(fs.statSync(f).size <= 4096, `${path.basename(f)} within max_size`);
    const onDisk = [`${file}.1`, `${file}.0`, file].map((f) => fs.readFileSync(f, 'utf8')).join('');
    t.equal(onDisk, lines.join(''), 'concatenated in rotation order: every line once, in order');
    t.ok(fs.readFileSync(`${file}.0`, 'utf8').endsWith('\n'), 'a file ends at a line boundary');

    const all = await c.readLogFile(file, start, 1 << 20);
    t.equal(all.toString(), lines.join(''), 'reading from the open position crosses both rotations');
    const tail = await c.readLogFile(file, end, 1 << 20);
    t.equal(tail.length, 0, 'nothing after the end position');
    const mid = await c.readLogFile(file, { inode: start.inode, offset: 100 }, 150);
    t.equal(mid.toString(), lines.join('').slice(100, 250), 'an offset and maxlen are honoured');
    await t.rejects(c.readLogFile(file, start, 4 * 1024 * 1024 + 1), /larger than maximum/, 'maxlen is capped');
    closeFd(fd);
  });

  t.test('killing the writer closes its entry', async (t) => {
    const h = startDaemon({ name: 'virtlogd', mode: 'system' });
    t.teardown(() => h.kill());
    await h.ready(SOCK);
    const c = new LogManagerClient(h.path(SOCK));
    t.teardown(() => c.close());
    const file = path.join(tempDir('virtd-logs-'), 'writer.log');
    const { fd } = await c.openLogFile('qemu', DOM, file);
    // The writer gets the pipe as stdout, as QEMU does; we keep no copy.
    const writer = spawn(process.execPath, ['-e', 'setInterval(() => process.stdout.write("tick\\n"), 5)'], { stdio: ['ignore', fd, 'ignore'] });
    closeFd(fd);
    await waitFor(() => fs.existsSync(file) && fs.statSync(file).size > 50, 5000, 'writer output');
    t.equal((await c.list()).length, 1);
    writer.kill('SIGKILL');
    await waitFor(async () => (await c.list()).length === 0, 5000, 'entry closed');
    t.match(fs.readFileSync(file, 'utf8'), /^(tick\n)+$/, 'only whole lines from the writer');
  });

  t.test('session virtlogd stays up while a log pipe is open', async (t) => {
    const user = ensureUser('virttest');
    const xdg = runtimeDirFor(user);
    const env = userEnv(user, xdg);
    const h = startDaemon({ name: 'virtlogd', mode: 'session', user, env, args: ['--timeout', '1'] });
    t.teardown(() => h.kill());
    const sock = path.join(xdg, 'libvirt', 'virtlogd-sock');
    // The test is root; a session virtlogd serves only its user, so the
    // opener runs as the user and hands the fd on by holding it open.
    const dir = tempDir('virtd-logs-');
    fs.chmodSync(dir, 0o777);
    const file = path.join(dir, 'session.log');
    const opener = spawn(process.execPath, ['-e', `
      const { LogManagerClient } = require(${JSON.stringify(require.resolve('@virtd/client'))});
      const { pipeSize } = require(${JSON.stringify(require.resolve('@virtd/posix'))});
      const c = new LogManagerClient(${JSON.stringify(sock)});
      const attempt = () => c.openLogFile('qemu', ${JSON.stringify(DOM)}, ${JSON.stringify(file)})
        .then((r) => { c.close(); console.log('open ' + pipeSize(r.fd)); process.stdin.on('data', () => process.exit(0)); },
              () => setTimeout(attempt, 50));
      attempt();
    `], { uid: user.uid, gid: user.gid, env, stdio: ['pipe', 'pipe', 'inherit'] });
    t.teardown(() => opener.kill());
    const opened = await new Promise<string>((resolve, reject) => {
      opener.stdout.once('data', (d: Buffer) => resolve(d.toString().trim()));
      void h.exited.then(() => reject(new Error(`daemon exited early:\n${h.output}`)));
    });
    t.equal(opened, `open ${64 * 1024}`, 'a session virtlogd keeps the kernel\'s pipe size (the user\'s pipe quota is theirs)');
    await sleep(2500);
    t.equal(h.proc.exitCode, null, 'an open log file holds auto-shutdown off');
    opener.stdin.write('x');
    t.same(await h.exited, { code: 0, signal: null }, 'exits once the pipe is closed');
  });
}
