// Socket configuration as libvirt reads it: unix_sock_dir, unix_sock_group
// (name or +gid), unix_sock_*_perms and the listen backlog.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { startDaemon, isRoot, tempDir, ensureUser, runtimeDirFor, userEnv } from '@virtd/test-utils';

if (!isRoot()) {
  t.pass('skipped: needs root');
} else {
  const mode = (p: string): number => fs.statSync(p).mode & 0o7777;

  t.test('system mode: unix_sock_dir, group by name and +gid, perms, backlog', async (t) => {
    const dir = path.join(tempDir(), 'socks');
    const h = startDaemon({
      name: 'libvirtd', mode: 'system',
      config: [
        `unix_sock_dir = "${dir}"`, 'unix_sock_group = "nogroup"', 'unix_sock_rw_perms = "0770"',
        'unix_sock_ro_perms = "0775"', 'unix_sock_admin_perms = "0750"', 'max_queued_clients = 7',
        'admin_max_queued_clients = 3',
      ].join('\n'),
    });
    t.teardown(() => h.kill());
    await h.ready(path.join(dir, 'libvirt-admin-sock'));
    const nogroup = Number(execFileSync('getent', ['group', 'nogroup'], { encoding: 'utf8' }).split(':')[2]);
    for (const [f, m] of [['libvirt-sock', 0o770], ['libvirt-sock-ro', 0o775], ['libvirt-admin-sock', 0o750]] as const) {
      const p = path.join(dir, f);
      t.equal(mode(p), m, `${f} mode ${m.toString(8)}`);
      t.equal(fs.statSync(p).gid, nogroup, `${f} group nogroup`);
    }
    t.notOk(fs.existsSync(h.path('/run/libvirt/libvirt-sock')), 'nothing in /run/libvirt');
    // ss reports a listening socket's backlog in Send-Q.
    const ss = execFileSync('ss', ['-xlH'], { encoding: 'utf8' });
    const backlog = (f: string): number | undefined => {
      const line = ss.split('\n').find((l) => l.includes(path.join(dir, f)));
      return line ? Number(line.trim().split(/\s+/)[3]) : undefined;
    };
    t.equal(backlog('libvirt-sock'), 7, 'max_queued_clients is the backlog');
    t.equal(backlog('libvirt-admin-sock'), 3, 'admin_max_queued_clients for the admin socket');
    await h.stop();
    t.same(fs.readdirSync(dir), [], 'all three unlinked at exit');
  });

  t.test('numeric group and a missing group', async (t) => {
    const dir = path.join(tempDir(), 'socks');
    const h = startDaemon({ name: 'virtqemud', mode: 'system', config: `unix_sock_dir = "${dir}"\nunix_sock_group = "+4242"\n` });
    t.teardown(() => h.kill());
    await h.ready(path.join(dir, 'virtqemud-admin-sock'));
    t.equal(fs.statSync(path.join(dir, 'virtqemud-sock')).gid, 4242);
    await h.stop();
    const bad = startDaemon({ name: 'virtqemud', mode: 'system', config: 'unix_sock_group = "no-such-group-virtd"\n' });
    t.teardown(() => bad.kill());
    t.equal((await bad.exited).code, 6);
    t.match(bad.stderr, "Failed to find group 'no-such-group-virtd'");
  });

  t.test('session mode with unix_sock_dir has only the main socket', async (t) => {
    const user = ensureUser('virttest');
    const xdg = runtimeDirFor(user);
    const dir = path.join(xdg, 'custom');
    const h = startDaemon({ name: 'virtsecretd', mode: 'session', user, env: userEnv(user, xdg), config: `unix_sock_dir = "${dir}"\n` });
    t.teardown(() => h.kill());
    await h.socketReady(path.join(dir, 'virtsecretd-sock'));
    t.same(fs.readdirSync(dir), ['virtsecretd-sock'], 'no admin socket, no ro socket');
    await h.stop();
  });

  t.test('virtlogd ignores unix_sock_* keys', async (t) => {
    const h = startDaemon({ name: 'virtlogd', mode: 'system', config: 'unix_sock_dir = "/nonexistent"\nunix_sock_rw_perms = "0777"\n' });
    t.teardown(() => h.kill());
    await h.ready('/run/libvirt/virtlogd-admin-sock');
    t.equal(mode(h.path('/run/libvirt/virtlogd-sock')), 0o700);
    await h.stop();
  });
}
