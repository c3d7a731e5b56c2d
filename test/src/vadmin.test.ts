// Every vadmin verb against a running daemon, output compared with
// virt-admin's layout.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { HealthService } from '@virtd/protocol/health';
import { Connection, unixTarget } from '@virtd/client';
import { startDaemon, isRoot, run, binPath, tempDir, ensureUser, runtimeDirFor, userEnv } from '@virtd/test-utils';

if (!isRoot()) {
  t.pass('skipped: needs root');
} else {
  t.test('vadmin verbs against virtqemud', async (t) => {
    const h = startDaemon({ name: 'virtqemud', mode: 'system' });
    t.teardown(() => h.kill());
    await h.ready('/run/libvirt/virtqemud-admin-sock');
    const uri = `virtqemud:///system?socket=${h.path('/run/libvirt/virtqemud-admin-sock')}`;
    const vadmin = (...args: string[]): ReturnType<typeof run> => run(binPath('vadmin'), ['-c', uri, ...args]);
    const held = new Connection(unixTarget(h.path('/run/libvirt/virtqemud-sock')));
    t.teardown(() => held.close());
    await held.unary(HealthService, 'Check', {});

    t.equal((await vadmin('uri')).stdout, `${uri}\n\n`);
    t.match((await vadmin('version')).stdout, /^Compiled against library: virtd-node \d+\.\d+\.\d+\nUsing library: virtd-node .*\nRunning against daemon: \d+\.\d+\.\d+\n/);
    t.equal((await vadmin('srv-list')).stdout, ' Id   Name\n-----------------\n 0    virtqemud\n 1    admin\n\n');
    t.equal((await vadmin('server-list')).stdout, (await vadmin('srv-list')).stdout, 'aliases');
    t.equal((await vadmin('srv-threadpool-info', 'virtqemud')).stdout,
      'minWorkers     : 5\nmaxWorkers     : 20\nnWorkers       : 5\nfreeWorkers    : 5\nprioWorkers    : 5\njobQueueDepth  : 0\n\n');
    const set = await vadmin('srv-threadpool-set', 'virtqemud', '--min-workers', '2', '--max-workers', '8', '--priority-workers', '3');
    t.equal(set.code, 0);
    t.match((await vadmin('server-threadpool-info', '--server', 'virtqemud')).stdout, 'minWorkers     : 2\nmaxWorkers     : 8\n');
    const badPool = await vadmin('srv-threadpool-set', 'virtqemud', '--min-workers', '30');
    t.equal(badPool.code, 1);
    t.equal(badPool.stderr, 'error: Unable to change server workerpool parameters\nerror: invalid argument: minWorkers cannot be larger than maxWorkers\n');

    const list = await vadmin('client-list', 'virtqemud');
    t.match(list.stdout, /^ Id   Transport   Connected since\n-{44}\n 1    unix        \d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d{4}\n\n$/);
    t.equal((await vadmin('srv-clients-list', 'virtqemud')).stdout, list.stdout, 'alias');
    const info = await vadmin('client-info', 'virtqemud', '1');
    t.match(info.stdout, /^id             : 1\nconnection_time: .*\ntransport      : unix\nreadonly       : no\nunix_user_id   : 0\nunix_user_name : root\nunix_group_id  : 0\nunix_group_name: root\nunix_process_id: \d+\n\n$/);
    t.equal((await vadmin('client-info', 'virtqemud', '99')).stderr, "error: Client not found: No client with matching ID '99'\n");

    t.equal((await vadmin('srv-clients-info', 'virtqemud')).stdout,
      'nclients_max        : 5000\nnclients            : 1\nnclients_unauth_max : 20\nnclients_unauth     : 0\n\n');
    t.equal((await vadmin('srv-clients-set', 'virtqemud', '--max-clients', '10', '--max-unauth-clients', '20')).stderr,
      'error: --max-unauth-clients must be less than or equal to --max-clients\n');
    const tooLow = await vadmin('srv-clients-set', 'virtqemud', '--max-clients', '10');
    t.equal(tooLow.code, 1);
    t.match(tooLow.stderr, /^error: Unable to change server's client-related configuration limits\nerror: invalid argument: /);
    t.equal((await vadmin('server-clients-set', 'virtqemud', '--max-clients', '100', '--max-unauth-clients', '10')).code, 0);
    t.match((await vadmin('srv-clients-info', 'virtqemud')).stdout, 'nclients_max        : 100\n');

    t.equal((await vadmin('daemon-log-filters')).stdout, ' Logging filters: \n\n');
    t.equal((await vadmin('daemon-log-filters', '--filters', '1:rpc 3:util')).code, 0);
    t.equal((await vadmin('daemon-log-filters')).stdout, ' Logging filters: 1:*rpc* 3:*util*\n\n');
    t.equal((await vadmin('daemon-log-outputs')).stdout, ' Logging outputs: 3:stderr\n\n');
    const logFile = path.join(tempDir(), 'daemon.log');
    t.equal((await vadmin('daemon-log-outputs', '--outputs', `1:file:${logFile}`)).code, 0);
    t.equal((await vadmin('daemon-log-outputs')).stdout, ` Logging outputs: 1:file:${logFile}\n\n`);
    await vadmin('srv-list');
    t.match(fs.readFileSync(logFile, 'utf8'), / debug : rpc\.server : client connected/, 'the new output takes effect at once');
    t.equal((await vadmin('daemon-log-outputs', '--outputs', '9:foo')).stderr,
      "error: Unable to change daemon logging settings\nerror: invalid argument: Invalid log priority '9' for log output '9:foo'\n");
    t.equal((await vadmin('daemon-log-level')).stdout, ' Logging level: 3\n\n');

    t.equal((await vadmin('srv-update-tls', 'virtqemud')).stderr,
      "error: Unable to update server's tls related files.\nerror: internal error: no tls service found, unable to update tls files\n");
    t.equal((await vadmin('srv-threadpool-info', 'nope')).stderr, "error: Server not found: No server named 'nope'\n");

    t.equal((await vadmin('client-disconnect', 'virtqemud', '1')).stdout, "Client '1' disconnected\n\n");
    t.equal((await vadmin('client-list', 'virtqemud')).stdout, ' Id   Transport   Connected since\n-----------------------------------\n\n');

    t.equal((await vadmin('daemon-timeout', '--timeout', '1')).code, 0);
    const exit = await h.exited;
    t.same(exit, { code: 0, signal: null }, 'daemon-timeout 1 with no client left: the daemon exits on its own');
  });

  t.test('vadmin usage errors and default URIs', async (t) => {
    const vadmin = (args: string[], env: Record<string, string> = {}): ReturnType<typeof run> => run(binPath('vadmin'), args, { env });
    t.match((await vadmin(['bogus-verb'])).stderr, "error: unknown command: 'bogus-verb'");
    t.match((await vadmin(['-c', 'virtqemud:///system', 'client-info', 'virtqemud'])).stderr, "error: command 'client-info' requires <client> option");
    t.match((await vadmin(['-c', 'virtqemud:///system', 'client-info', 'x', 'abc'])).stderr, "Numeric value 'abc' for <client> option is malformed");
    t.match((await vadmin(['-c', 'virtqemud:///system', 'srv-list', '--bogus'])).stderr, "command 'server-list' doesn't support option --bogus");
    const nosock = await vadmin(['-c', 'virtnope:///system?socket=/nonexistent/sock', 'srv-list']);
    t.equal(nosock.code, 1);
    t.equal(nosock.stderr, "error: Failed to connect to the admin server\nerror: Failed to connect socket to '/nonexistent/sock': No such file or directory\n");
    t.match((await vadmin(['-c', 'virtqemud:///system?foo=1', 'srv-list'])).stderr, "Unknown URI parameter 'foo'");
    t.equal((await vadmin(['uri'], { LIBVIRT_ADMIN_DEFAULT_URI: 'virtsecretd:///system' })).stdout, 'virtsecretd:///system\n\n');
    t.equal((await vadmin(['uri'])).stdout, 'libvirtd:///system\n\n', 'root default');
    t.match((await vadmin(['help', 'srv-clients-set'])).stdout, /NAME\n    server-clients-set - /);

    const user = ensureUser('virttest');
    const xdg = runtimeDirFor(user);
    // A private XDG_CONFIG_HOME, made by the user (files made by root in the
    // user's home would break later session daemons).
    const conf = path.join(xdg, 'config', 'libvirt');
    await run('mkdir', ['-p', conf], { user });
    await run('sh', ['-c', `printf 'uri_default = "virtlogd:///session"\\n' > ${conf}/libvirt-admin.conf`], { user });
    t.teardown(() => fs.rmSync(path.join(conf, 'libvirt-admin.conf'), { force: true }));
    const xenv = { ...userEnv(user, xdg), XDG_CONFIG_HOME: path.join(xdg, 'config') };
    const u = await run(binPath('vadmin'), ['uri'], { user, env: xenv });
    t.equal(u.stdout, 'virtlogd:///session\n\n', 'uri_default from the user\'s libvirt-admin.conf');
    fs.rmSync(path.join(conf, 'libvirt-admin.conf'));
    t.equal((await run(binPath('vadmin'), ['uri'], { user, env: xenv })).stdout, 'libvirtd:///session\n\n', 'session default');
  });

  t.test('vadmin in session mode, as the user, with a session URI', async (t) => {
    const user = ensureUser('virttest');
    const xdg = runtimeDirFor(user);
    const env = userEnv(user, xdg);
    const h = startDaemon({ name: 'virtsecretd', mode: 'session', user, env });
    t.teardown(() => h.kill());
    await h.socketReady(path.join(xdg, 'libvirt', 'virtsecretd-admin-sock'));
    const r = await run(binPath('vadmin'), ['-c', 'virtsecretd:///session', 'srv-list'], { user, env });
    t.equal(r.stdout, ' Id   Name\n-------------------\n 0    virtsecretd\n 1    admin\n\n');
    await h.stop();
  });
}
