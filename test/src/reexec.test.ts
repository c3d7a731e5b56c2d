// virtlogd and virtlockd re-execute in place on SIGUSR1: same pid, every
// socket, client, pipe and lock kept. Real processes throughout: a writer
// pushing numbered lines into a virtlogd pipe, a second process trying to
// take a lock virtlockd holds, an admin client that must never reconnect,
// and a storm of SIGUSR1 and SIGHUP.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { AdminClient, LogManagerClient, LockClient, LOCK_ACQUIRE } from '@virtd/client';
import { closeFd } from '@virtd/posix';
import { startDaemon, isRoot, tempDir, waitFor, sleep, inspectorOpenIn, INSPECTOR_STARTED, type DaemonHandle } from '@virtd/test-utils';

const ROUNDS = Number(process.env.VIRTD_REEXEC_ROUNDS ?? 100);
// Two hundred re-execs take a minute or two on a loaded 2-core machine.
t.setTimeout(420_000);
const DOM = { uuid: 'c7a5fdbd-edaf-9455-926a-d65c16db1809', name: 'guest1' };

const READY_AGAIN = /ready again after re-exec/g;
const readyCount = (h: DaemonHandle): number => (h.stderr.match(READY_AGAIN) ?? []).length;

/** SIGUSR1, then wait until the new image says it serves again. */
async function reexec(h: DaemonHandle, n: number): Promise<void> {
  h.signal('SIGUSR1');
  await waitFor(() => {
    if (h.proc.exitCode !== null) throw new Error(`daemon died:\n${h.output.slice(-4000)}`);
    return readyCount(h) >= n;
  }, 20_000, `re-exec ${n}`).catch((e: Error) => {
    // What the daemon said last tells a hang from a slow machine.
    throw new Error(`${e.message}; the daemon's last output:\n${h.output.slice(-3000)}`);
  });
}

/** The admin server's view of its clients: ids that must not change. */
async function clientIds(a: AdminClient, server: string): Promise<number[]> {
  return (await a.listClients(server)).map((c) => c.id).sort((x, y) => x - y);
}

/** A writer that puts bursts of numbered lines into fd 3 as fast as the pipe takes them. */
function writerProcess(fd: number): ChildProcess {
  return spawn(process.execPath, ['-e', `
    const fs = require('fs');
    let next = 0;
    process.stdin.on('data', (d) => {
      for (const cmd of d.toString().trim().split('\\n')) {
        const n = Number(cmd);
        if (!n) { fs.closeSync(3); console.log('closed ' + next); continue; }
        let buf = '';
        for (let i = 0; i < n; i++) {
          buf += String(next++).padStart(9, '0') + '\\n';
          if (buf.length >= 65536) { fs.writeSync(3, buf); buf = ''; }
        }
        if (buf) fs.writeSync(3, buf);
        console.log('wrote ' + next);
      }
    });
  `], { stdio: ['pipe', 'pipe', 'inherit', fd] });
}

/** The child's next output; each call's listeners go once it settles (called once per round). */
const nextLine = (p: ChildProcess): Promise<string> => new Promise((resolve, reject) => {
  const onData = (d: Buffer): void => { p.off('exit', onExit); resolve(d.toString().trim()); };
  const onExit = (code: number | null): void => { p.stdout!.off('data', onData); reject(new Error(`child exited with ${code}`)); };
  p.stdout!.once('data', onData);
  p.once('exit', onExit);
});

if (!isRoot()) {
  t.pass('skipped: needs root');
} else {
  t.test(`virtlogd: ${ROUNDS} re-execs under a writer lose and repeat no line`, async (t) => {
    const h = startDaemon({ name: 'virtlogd', mode: 'system', args: ['--verbose'], config: 'max_backups = 32\n' });
    t.teardown(() => h.kill());
    await h.ready('/run/libvirt/virtlogd-sock');
    const pid = h.pid;
    const admin = AdminClient.open(`virtlogd:///system?socket=${h.path('/run/libvirt/virtlogd-admin-sock')}`, {}, 0);
    t.teardown(() => admin.close());
    const logs = new LogManagerClient(h.path('/run/libvirt/virtlogd-sock'));
    t.teardown(() => logs.close());
    const file = path.join(tempDir('virtd-reexec-'), 'guest.log');
    const { fd } = await logs.openLogFile('qemu', DOM, file);
    const writer = writerProcess(fd);
    closeFd(fd);
    t.teardown(() => writer.kill());
    const adminIds = await clientIds(admin, 'admin');
    const mainIds = await clientIds(admin, 'virtlogd');

    for (let i = 1; i <= ROUNDS; i++) {
      // 20000 lines (200 KB): more than the pipe holds, so the exec lands
      // with the pipe full and the writer blocked in write().
      writer.stdin!.write('20000\n');
      const burst = nextLine(writer);
      await sleep(i % 5);
      await reexec(h, i);
      await burst;
      if (i % 10 === 0 || i === ROUNDS) {
        t.same(await clientIds(admin, 'admin'), adminIds, `round ${i}: the admin client is the same connection`);
        t.same(await clientIds(admin, 'virtlogd'), mainIds, `round ${i}: so is the log client`);
      }
    }
    t.equal(h.pid, pid, 'the pid never changed');
    t.equal(h.proc.exitCode, null, 'still running');

    // The log client's next call works on its old connection.
    const pos = await logs.getLogFilePosition(file);
    t.ok(pos.offset > 0, 'position after the re-execs');
    writer.stdin!.write('0\n');
    const closed = await nextLine(writer);
    const total = Number(closed.split(' ')[1]);
    await waitFor(async () => (await logs.list()).length === 0, 10_000, 'entry closed at EOF');

    const files = [...Array.from({ length: 32 }, (_, k) => `${file}.${31 - k}`), file].filter((f) => fs.existsSync(f));
    const text = files.map((f) => fs.readFileSync(f, 'latin1')).join('');
    const lines = text.split('\n');
    t.equal(lines.pop(), '', 'ends with a newline');
    t.equal(lines.length, total, `${total} lines on disk, as many as written`);
    let bad = -1;
    for (let k = 0; k < lines.length; k++) if (Number(lines[k]) !== k) { bad = k; break; }
    t.equal(bad, -1, bad < 0 ? 'every line once, in order' : `line ${bad} is ${JSON.stringify(lines[bad])}`);
    t.notOk(fs.existsSync('/run/virtlogd-restart-exec.json') || fs.existsSync(h.path('/run/virtlogd-restart-exec.json')), 'no state file left');
    t.same(await h.stop(), { code: 0, signal: null });
  });

  t.test(`virtlockd: ${ROUNDS} re-execs and the lock is never free`, async (t) => {
    const h = startDaemon({ name: 'virtlockd', mode: 'system', args: ['--verbose'] });
    t.teardown(() => h.kill());
    await h.ready('/run/libvirt/virtlockd-sock');
    const pid = h.pid;
    const admin = AdminClient.open(`virtlockd:///system?socket=${h.path('/run/libvirt/virtlockd-admin-sock')}`, {}, 0);
    t.teardown(() => admin.close());
    // The owner is a separate idle process: virtlockd must not kill the test.
    const ownerProc = spawn('sleep', ['600']);
    t.teardown(() => ownerProc.kill());
    const locks = new LockClient(h.path('/run/libvirt/virtlockd-sock'));
    t.teardown(() => locks.close());
    const file = path.join(tempDir('virtd-reexec-'), 'disk.img');
    await locks.register({ uuid: DOM.uuid, name: DOM.name, id: 1, pid: ownerProc.pid! });
    await locks.acquire('', file, LOCK_ACQUIRE.AUTOCREATE);

    // Tries the lock every millisecond; reports how often it got it.
    const contender = spawn(process.execPath, ['-e', `
      const fs = require('fs');
      const { tryLockByte0, unlockByte0 } = require(${JSON.stringify(require.resolve('@virtd/posix'))});
      const fd = fs.openSync(${JSON.stringify(file)}, 'r+');
      let tries = 0, got = 0;
      const timer = setInterval(() => { tries++; if (tryLockByte0(fd)) { got++; unlockByte0(fd); } }, 1);
      process.stdin.on('data', () => { clearInterval(timer); console.log(tries + ' ' + got); });
    `], { stdio: ['pipe', 'pipe', 'inherit'] });
    t.teardown(() => contender.kill());
    const adminIds = await clientIds(admin, 'admin');

    for (let i = 1; i <= ROUNDS; i++) await reexec(h, i);
    t.equal(h.pid, pid, 'the pid never changed');
    t.equal(fs.readFileSync(h.path('/run/virtlockd.pid'), 'utf8'), String(pid), 'the pid file still names us');
    t.same(await clientIds(admin, 'admin'), adminIds, 'the admin client is the same connection');

    contender.stdin!.write('stop\n');
    const [tries, got] = (await nextLine(contender)).split(' ').map(Number);
    t.ok(tries! > ROUNDS, `the contender tried ${tries} times`);
    t.equal(got, 0, 'and never got the lock');
    t.same((await locks.list()).map((r) => [r.path, r.owners]), [[file, [ownerProc.pid]]], 'virtlockd still lists the owner');
    await locks.release('', file);
    t.notOk(fs.existsSync(file), 'released (and the autocreated file removed) on the old connection');
    const ex = await h.stop();
    if (ex.code !== 0) t.comment(h.output.slice(-3000));
    t.same(ex, { code: 0, signal: null });
  });

  t.test('a storm of SIGUSR1 and SIGHUP leaves virtlockd alive, same pid, no debug port', async (t) => {
    const h = startDaemon({ name: 'virtlockd', mode: 'system', args: ['--verbose'] });
    t.teardown(() => h.kill());
    await h.ready('/run/libvirt/virtlockd-sock');
    const pid = h.pid;
    const locks = new LockClient(h.path('/run/libvirt/virtlockd-sock'));
    t.teardown(() => locks.close());
    const ownerProc = spawn('sleep', ['600']);
    t.teardown(() => ownerProc.kill());
    const file = path.join(tempDir('virtd-reexec-'), 'storm.img');
    await locks.register({ uuid: DOM.uuid, name: DOM.name, id: 1, pid: ownerProc.pid! });
    await locks.acquire('', file, LOCK_ACQUIRE.AUTOCREATE);

    let sent = 0;
    let inspector = false;
    const until = Date.now() + 4000;
    while (Date.now() < until) {
      h.signal(sent % 2 ? 'SIGHUP' : 'SIGUSR1');
      sent++;
      if (sent % 50 === 0) inspector ||= inspectorOpenIn(pid);
      await sleep(1);
    }
    // Let the last requested re-exec finish, then look.
    await sleep(1000);
    await waitFor(() => !fs.existsSync(h.path('/run/virtlockd-restart-exec.json')), 20_000, 'quiet again');
    t.equal(h.proc.exitCode, null, `alive after ${sent} signals`);
    t.equal(h.pid, pid, 'same pid');
    t.notOk(inspector || inspectorOpenIn(pid), 'virtlockd never held an inspector port');
    t.notMatch(h.stderr, INSPECTOR_STARTED, 'and Node never said it started one');
    const reexecs = readyCount(h);
    t.ok(reexecs >= 1, `${reexecs} re-execs honoured`);
    t.match(h.stderr, /SIGHUP/, 'SIGHUPs are logged as ignored');
    t.same((await locks.list()).map((r) => r.path), [file], 'the lock survived, and the old connection works');
    await locks.release('', file);
    t.same(await h.stop(), { code: 0, signal: null });
  });

  t.test('a changed virtlogd.conf applies to the reopened files after SIGUSR1', async (t) => {
    const h = startDaemon({ name: 'virtlogd', mode: 'system', args: ['--verbose'], config: 'max_size = 0\n' });
    t.teardown(() => h.kill());
    await h.ready('/run/libvirt/virtlogd-sock');
    const logs = new LogManagerClient(h.path('/run/libvirt/virtlogd-sock'));
    t.teardown(() => logs.close());
    const file = path.join(tempDir('virtd-reexec-'), 'conf.log');
    const { fd } = await logs.openLogFile('qemu', DOM, file);
    fs.writeSync(fd, 'x'.repeat(99) + '\n');
    await logs.getLogFilePosition(file);
    t.notOk(fs.existsSync(`${file}.0`), 'max_size 0 never rolls');
    fs.writeFileSync(h.configFile!, 'max_size = 150\nmax_backups = 2\n');
    await reexec(h, 1);
    fs.writeSync(fd, 'y'.repeat(99) + '\n');
    await logs.getLogFilePosition(file);
    t.ok(fs.existsSync(`${file}.0`), 'the new max_size rolled the file over');
    t.equal(fs.readFileSync(`${file}.0`, 'utf8') + fs.readFileSync(file, 'utf8'), `${'x'.repeat(99)}\n${'y'.repeat(99)}\n`, 'nothing lost');
    closeFd(fd);
  });

  t.test('the state file: corrupt after a re-exec stops start-up with 3; stale at a cold start is removed', async (t) => {
    // VIRTD_REEXEC is what a re-exec puts in the new image's environment.
    const bad = startDaemon({
      name: 'virtlockd', mode: 'system', env: { VIRTD_REEXEC: '-1' },
      nsSetup: 'echo "{ not json" > /run/virtlockd-restart-exec.json',
    });
    t.teardown(() => bad.kill());
    t.same(await bad.exited, { code: 3, signal: null }, 'corrupt after a re-exec: exit 3');
    t.match(bad.stderr, /re-exec state file \/run\/virtlockd-restart-exec.json: invalid JSON/);
    t.notMatch(bad.runAfterExit, /virtlockd-restart-exec/, 'and the file is gone');

    for (const content of ['{ not json', '{"magic": "1", "daemon": {"servers": {}}}']) {
      const cold = startDaemon({
        name: 'virtlockd', mode: 'system', args: ['--verbose'],
        nsSetup: `echo '${content}' > /run/virtlockd-restart-exec.json`,
      });
      t.teardown(() => cold.kill());
      await cold.ready('/run/libvirt/virtlockd-sock');
      t.match(cold.stderr, /removed a stale re-exec state file/, `cold start over ${JSON.stringify(content)}: warned about`);
      t.notOk(fs.existsSync(cold.path('/run/virtlockd-restart-exec.json')), 'and removed');
      t.same(await cold.stop(), { code: 0, signal: null });
    }
  });
}
