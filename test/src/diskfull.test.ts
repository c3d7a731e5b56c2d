// virtlogd on a full disk. Two guests log at once: one to a 64 KiB tmpfs
// (mounted inside the daemon's mount namespace only; the test reads it
// through /proc/PID/root), one to an ordinary directory. When the tmpfs
// fills, virtlogd does what libvirt's log handler does on a write error:
// it reports it, closes that file's pipe (the writer gets EPIPE) and
// forgets the entry. The other guest's log keeps flowing, calls are
// answered, nothing crashes, and the full file opens again once there is
// room.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { LogManagerClient } from '@virtd/client';
import { startDaemon, isRoot, tempDir, waitFor, LogWriter, logLine } from '@virtd/test-utils';

const SOCK = '/run/libvirt/virtlogd-sock';
const GUEST_A = { uuid: 'c7a5fdbd-edaf-9455-926a-d65c16db1809', name: 'full' };
const GUEST_B = { uuid: '0f6e4cf1-4d2b-4c8e-9d3a-2b7f1f7a8e11', name: 'roomy' };
const TMPFS_BYTES = 64 * 1024;

if (!isRoot()) {
  t.pass('skipped: needs root');
} else {
  t.test('a full disk closes that log file only; the daemon and the other log go on', async (t) => {
    // The directory exists on the host; the tmpfs over it only in the daemon's namespace.
    const small = tempDir('virtd-full-');
    const h = startDaemon({ name: 'virtlogd', mode: 'system', nsSetup: `mount -t tmpfs -o size=${TMPFS_BYTES},mode=755 tmpfs ${small}` });
    t.teardown(() => h.kill());
    await h.ready(SOCK);
    const c = new LogManagerClient(h.path(SOCK));
    t.teardown(() => c.close());
    const fullFile = path.join(small, 'full.log');
    const okFile = path.join(tempDir('virtd-logs-'), 'roomy.log');
    const writers: LogWriter[] = [];
    t.teardown(() => { for (const w of writers) w.kill(); });

    const a = await c.openLogFile('qemu', GUEST_A, fullFile);
    const b = await c.openLogFile('qemu', GUEST_B, okFile);
    t.ok(fs.existsSync(h.path(fullFile)) && !fs.existsSync(fullFile), 'the small file lives on the namespace\'s tmpfs only');

    // A writes fast until its pipe breaks; B writes steadily.
    const wa = new LogWriter(a.fd, { session: 1, first: 0, maxPiece: 4096, pauseMs: 0 });
    const wb = new LogWriter(b.fd, { session: 2, first: 0, maxPiece: 512, pauseMs: 2 });
    writers.push(wa, wb);

    await waitFor(() => wa.endedWith !== undefined, 20_000, 'the writer on the full disk to see its pipe break');
    t.equal(wa.endedWith, 'EPIPE', 'virtlogd closed the full file\'s pipe: its writer gets EPIPE');
    const errors = h.output.split('\n').filter((l) => l.includes(`Unable to write to ${fullFile}`));
    t.equal(errors.length, 1, 'the write error is logged, once');
    t.match(errors[0] ?? '', /error : .*no space left on device/i, 'as an error naming the cause');
    t.same((await c.list()).map((f) => f.path), [okFile], 'the full file\'s entry is forgotten; the other stays');
    await t.rejects(c.getLogFilePosition(fullFile), /No open log file/, 'no position for a forgotten file');

    // What reached the full file is a prefix of A's lines: whole lines, the last one possibly cut.
    const onTmpfs = fs.readFileSync(h.path(fullFile), 'latin1');
    t.ok(onTmpfs.length > TMPFS_BYTES / 2 && onTmpfs.length <= TMPFS_BYTES, `the tmpfs filled up (${onTmpfs.length} bytes)`);
    // (The writer's pieces end anywhere, so the file may end inside the line after its last whole one.)
    t.ok(wa.text(wa.last + 1).startsWith(onTmpfs), 'the full file holds a prefix of what its writer wrote');

    // B goes on: everything it writes from now on still lands, in order.
    const before = wb.last;
    await waitFor(() => wb.last > before + 50, 10_000, 'the other writer to go on');
    const mark = wb.last;
    const pos = await c.getLogFilePosition(okFile);
    const roomy = fs.readFileSync(okFile, 'latin1');
    t.ok(roomy.startsWith(wb.text(mark)), `the other log holds every line its writer wrote (${mark + 1} lines so far)`);
    t.ok(pos.offset >= wb.text(mark).length && roomy.length >= pos.offset, 'its position counts what was in the pipe');
    t.equal(logLine(2, 0), roomy.split('\n')[0], 'starting at its first line');

    // Calls on the full file get errors, not a dead daemon.
    t.equal((await c.readLogFile(fullFile, a.pos, 100)).toString('latin1'), onTmpfs.slice(0, 100), 'reading the full file works');
    await t.rejects(c.appendLogFile('qemu', GUEST_A, fullFile, 'one more line\n'), /Unable to write to .*full\.log: .*no space left on device/i,
      'an append to the full file is refused with the cause');
    t.equal(h.proc.exitCode, null, 'virtlogd is still running');

    // Once there is room, the file opens again and takes lines.
    fs.truncateSync(h.path(fullFile), 0);
    const again = await c.openLogFile('qemu', GUEST_A, fullFile);
    t.equal(again.pos.offset, 0, 'reopened after the space came back');
    fs.writeSync(again.fd, 'back in business\n');
    await c.getLogFilePosition(fullFile);
    t.equal(fs.readFileSync(h.path(fullFile), 'latin1'), 'back in business\n', 'and written again');
    fs.closeSync(again.fd);

    wb.kill();
    await waitFor(async () => (await c.list()).length === 0, 5000, 'both entries closed');
    t.same(await h.stop(), { code: 0, signal: null }, 'a clean stop');
  });
}
