// Every binary starts cleanly and stops on SIGTERM: in system mode as root
// (in a private mount namespace, so /run is the daemon's own) and in session
// mode as a real ordinary user. Run dirs, sockets and the pid file are
// created with libvirt's modes and removed at exit.
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { DAEMONS, type VirtdDescriptor } from '@virtd/daemons';
import { startDaemon, ensureUser, runtimeDirFor, userEnv, isRoot, tempDir, type DaemonHandle } from '@virtd/test-utils';

if (!isRoot()) {
  t.pass('skipped: these tests start daemons as root and as a created user; run them as root');
} else {
  const user = ensureUser('virttest');

  const modeOf = (p: string): number => fs.statSync(p).mode & 0o7777;

  async function systemRun(t: Test, d: VirtdDescriptor): Promise<void> {
    const h = startDaemon({ name: d.name, mode: 'system' });
    t.teardown(() => h.kill());
    const prefix = d.sockPrefix;
    const rw = `/run/libvirt/${prefix}-sock`;
    // Served, not only connectable: every listener is in place by then.
    await h.ready(rw);
    t.equal(modeOf(h.path('/run/libvirt')), 0o755, 'run dir 0755');
    t.equal(fs.readFileSync(h.path(`/run/${d.name}.pid`), 'utf8'), String(h.pid), 'pid file holds the pid, no newline');
    const remote = d.family === 'remote';
    t.equal(modeOf(h.path(rw)), 0o700, 'rw socket 0700 (no polkit)');
    t.equal(fs.existsSync(h.path(`/run/libvirt/${prefix}-sock-ro`)), remote, 'ro socket only for the remote family');
    if (remote) t.equal(modeOf(h.path(`/run/libvirt/${prefix}-sock-ro`)), 0o777, 'ro socket 0777');
    t.equal(modeOf(h.path(`/run/libvirt/${prefix}-admin-sock`)), 0o700, 'admin socket 0700');
    t.ok(fs.statSync(h.path(rw)).isSocket());
    const exit = await h.stop('SIGTERM');
    t.same(exit, { code: 0, signal: null }, 'SIGTERM stops it with status 0');
    t.notMatch(h.runAfterExit, `${d.name}.pid`, 'pid file removed at exit');
    t.notMatch(h.runAfterExit, `${prefix}-sock`, 'sockets removed at exit');
    t.match(h.runAfterExit, /\/run\/libvirt:\ntotal 0/, 'run dir left empty');
  }

  async function sessionRun(t: Test, d: VirtdDescriptor): Promise<void> {
    const xdg = runtimeDirFor(user);
    const h = startDaemon({ name: d.name, mode: 'session', user, env: userEnv(user, xdg) });
    t.teardown(() => h.kill());
    if (!d.sessionSupported) {
      // As libvirt 9.0's: its mandatory driver skips itself, the daemon stops with 0 (session.test.ts).
      const exit = await h.exited;
      t.same(exit, { code: 0, signal: null }, 'system-only daemon stops at driver initialisation');
      t.match(h.stderr, 'Driver state initialization failed');
      t.notOk(fs.existsSync(path.join(xdg, 'libvirt', `${d.sockPrefix}-sock`)), 'and leaves no socket');
      return;
    }
    const dir = path.join(xdg, 'libvirt');
    const rw = path.join(dir, `${d.sockPrefix}-sock`);
    const admin = path.join(dir, `${d.sockPrefix}-admin-sock`);
    // Sockets are bound one after the other: both must be up before we look.
    await h.socketReady(rw);
    await h.socketReady(admin);
    t.equal(modeOf(dir), 0o700, 'session run dir 0700');
    t.equal(fs.statSync(dir).uid, user.uid, 'owned by the user');
    t.equal(fs.statSync(rw).uid, user.uid);
    t.notOk(fs.existsSync(path.join(dir, `${d.sockPrefix}-sock-ro`)), 'no read-only socket in session mode');
    t.ok(fs.existsSync(admin), 'admin socket present');
    const pidFile = path.join(dir, `${d.name}.pid`);
    t.equal(fs.readFileSync(pidFile, 'utf8'), String(h.pid));
    const exit = await h.stop('SIGTERM');
    t.same(exit, { code: 0, signal: null });
    t.notOk(fs.existsSync(pidFile), 'pid file removed');
    t.notOk(fs.existsSync(rw), 'socket removed');
  }

  t.test('system mode, every daemon', async (t) => {
    // Two at a time: they are independent namespaces.
    const queue = [...DAEMONS];
    await Promise.all([0, 1].map(async () => {
      for (let d = queue.shift(); d; d = queue.shift()) {
        const dd = d;
        await t.test(dd.name, (t) => systemRun(t, dd));
      }
    }));
  });

  t.test('session mode as an ordinary user, every daemon', async (t) => {
    const queue = [...DAEMONS];
    await Promise.all([0, 1].map(async () => {
      for (let d = queue.shift(); d; d = queue.shift()) {
        const dd = d;
        await t.test(dd.name, (t) => sessionRun(t, dd));
      }
    }));
  });

  t.test('a held pid file stops a second instance with status 1', async (t) => {
    // The holder is a real first instance: fcntl locks belong to a process,
    // and the test must not hold one itself (reading the file would drop it).
    const pidFile = path.join(tempDir(), 'shared.pid');
    const first = startDaemon({ name: 'virtsecretd', mode: 'system', args: ['--pid-file', pidFile] });
    t.teardown(() => first.kill());
    await first.socketReady('/run/libvirt/virtsecretd-sock');
    for (const name of ['virtsecretd', 'virtlogd']) {
      const h: DaemonHandle = startDaemon({ name, mode: 'system', args: ['--pid-file', pidFile] });
      t.teardown(() => h.kill());
      const exit = await h.exited;
      t.equal(exit.code, 1, `second instance (${name}) exits 1`);
      t.match(h.stderr, pidFile, 'the message names the pid file');
      t.match(h.stderr, 'Unable to obtain pidfile');
      t.match(h.stderr, `pid ${first.pid}`, 'and the holder');
    }
    t.equal(fs.readFileSync(pidFile, 'utf8'), String(first.pid), 'the holder\'s pid file is untouched');
    t.equal(first.proc.exitCode, null, 'the first instance runs on');
    t.same(await first.stop(), { code: 0, signal: null });
    t.notOk(fs.existsSync(pidFile));
  });

  t.test('pid file: empty --pid-file means none; a stale unlocked one is taken over', async (t) => {
    const dir = tempDir();
    const stale = path.join(dir, 'stale.pid');
    fs.writeFileSync(stale, '999999\n');
    const h = startDaemon({ name: 'virtsecretd', mode: 'system', args: [`--pid-file=${stale}`] });
    t.teardown(() => h.kill());
    await h.socketReady('/run/libvirt/virtsecretd-sock');
    t.equal(fs.readFileSync(stale, 'utf8'), String(h.pid), 'stale content replaced');
    t.same(await h.stop(), { code: 0, signal: null });
    t.notOk(fs.existsSync(stale), 'removed at exit');

    const none = startDaemon({ name: 'virtsecretd', mode: 'system', args: ['--pid-file='] });
    t.teardown(() => none.kill());
    await none.socketReady('/run/libvirt/virtsecretd-sock');
    t.notOk(fs.existsSync(none.path('/run/virtsecretd.pid')), 'no pid file at all');
    await none.stop();
  });

  t.test('SIGINT and SIGQUIT quit gracefully too; SIGHUP and SIGUSR1 do not stop a daemon', async (t) => {
    for (const sig of ['SIGINT', 'SIGQUIT'] as const) {
      const h = startDaemon({ name: 'virtstoraged', mode: 'system' });
      t.teardown(() => h.kill());
      await h.socketReady('/run/libvirt/virtstoraged-sock');
      t.same(await h.stop(sig), { code: 0, signal: null }, `${sig} → status 0`);
    }
    for (const name of ['virtnetworkd', 'virtlockd']) {
      const h = startDaemon({ name, mode: 'system', args: ['--verbose'] });
      t.teardown(() => h.kill());
      await h.socketReady(`/run/libvirt/${name}-sock`);
      h.signal('SIGHUP');
      h.signal('SIGUSR1');
      await new Promise((r) => setTimeout(r, 300));
      t.equal(h.proc.exitCode, null, `${name} survives SIGHUP and SIGUSR1`);
      t.same(await h.stop(), { code: 0, signal: null });
    }
  });
}
