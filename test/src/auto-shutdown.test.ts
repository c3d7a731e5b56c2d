// --timeout: the daemon exits about that long after the last client leaves,
// never while one is connected (admin clients count), and not while
// something inhibits shutdown.
import t from 'tap';
import { HealthService } from '@virtd/protocol/health';
import { Connection, unixTarget, AdminClient } from '@virtd/client';
import { startDaemon, isRoot, sleep, ensureUser, runtimeDirFor, userEnv } from '@virtd/test-utils';

if (!isRoot()) {
  t.pass('skipped: needs root');
} else {
  t.test('--timeout 2 exits about 2 s after the last client, not while one is connected', async (t) => {
    const h = startDaemon({ name: 'virtnetworkd', mode: 'system', args: ['--timeout', '2'] });
    t.teardown(() => h.kill());
    await h.socketReady('/run/libvirt/virtnetworkd-sock');
    const c = new Connection(unixTarget(h.path('/run/libvirt/virtnetworkd-sock')));
    await c.unary(HealthService, 'Check', {});
    await sleep(3500);
    t.equal(h.proc.exitCode, null, 'still running with a client connected');
    const left = Date.now();
    c.close();
    const exit = await h.exited;
    const after = (Date.now() - left) / 1000;
    t.same(exit, { code: 0, signal: null }, 'a clean exit');
    t.ok(after >= 1.8 && after < 4, `exited ${after.toFixed(2)} s after the last client left`);
  });

  t.test('an admin client keeps the daemon alive too', async (t) => {
    const user = ensureUser('virttest');
    const xdg = runtimeDirFor(user);
    // The test runs as root; session sockets serve only their owner, so a
    // client process runs as the user and holds the admin connection. It
    // starts first and retries, so its own start-up time (seconds on a busy
    // machine) cannot outlast the daemon's timeout.
    const { spawn } = await import('node:child_process');
    const holder = spawn(process.execPath, ['-e', `
      const { AdminClient } = require(${JSON.stringify(require.resolve('@virtd/client'))});
      const a = AdminClient.open('virtsecretd:///session', process.env, ${user.uid});
      // Retry until the daemon accepts (its socket exists before it serves).
      const attempt = () => a.listServers().then(() => console.log('held'), () => setTimeout(attempt, 50));
      attempt();
      process.stdin.on('data', () => { a.close(); });
    `], { uid: user.uid, gid: user.gid, env: userEnv(user, xdg), stdio: ['pipe', 'pipe', 'inherit'] });
    t.teardown(() => holder.kill());
    const h = startDaemon({ name: 'virtsecretd', mode: 'session', user, env: userEnv(user, xdg), args: ['-t', '2'] });
    t.teardown(() => h.kill());
    await new Promise((resolve, reject) => {
      holder.stdout.once('data', resolve);
      holder.once('exit', (code) => reject(new Error(`holder exited with ${code}`)));
      void h.exited.then(() => reject(new Error(`daemon exited early:\n${h.output}`)));
    });
    await sleep(3500);
    t.equal(h.proc.exitCode, null, 'an admin connection counts as a client');
    holder.stdin.write('close\n');
    t.same(await h.exited, { code: 0, signal: null }, 'exits once it is gone');
  });

  t.test('no timeout without --timeout; daemon-timeout 0 disables it again', async (t) => {
    const h = startDaemon({ name: 'virtstoraged', mode: 'system', args: ['--timeout', '1'] });
    t.teardown(() => h.kill());
    await h.ready('/run/libvirt/virtstoraged-admin-sock');
    const admin = AdminClient.open(`virtstoraged:///system?socket=${h.path('/run/libvirt/virtstoraged-admin-sock')}`, {}, 0);
    await admin.setDaemonTimeout(0);
    admin.close();
    await sleep(2500);
    t.equal(h.proc.exitCode, null, 'timeout 0 disabled auto-shutdown');
    t.same(await h.stop(), { code: 0, signal: null });
  });
}
