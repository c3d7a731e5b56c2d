// The secret driver end to end, through every hop: a session daemon started
// on demand by vsh as an ordinary user, virtproxyd (UNIX and TLS) in front
// of virtsecretd, and the monolithic libvirtd; read-only sockets; events to
// a second client; files that survive kill -9 in the middle of writes.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import {
  startDaemon, isRoot, ensureUser, runtimeDirFor, userEnv, run, binPath, tempDir, waitFor, sleep, makePki, freePort,
  type TestUser, type DaemonHandle,
} from '@virtd/test-utils';
import { parseSecretXml } from '@virtd/drivers';

const VOLUME = `<secret ephemeral='no' private='no'>
  <description>disk key</description>
  <usage type='volume'>
    <volume>/var/lib/libvirt/images/test.img</volume>
  </usage>
</secret>
`;
const PRIVATE = `<secret ephemeral='yes' private='yes'>
  <uuid>11111111-2222-3333-4444-555555555555</uuid>
  <usage type='ceph'>
    <name>client.admin secret</name>
  </usage>
</secret>
`;

// Many daemon starts and a kill loop: 100 s on an idle 2-core machine, more
// when the other test files share it (tap's default is 120 s per file).
t.setTimeout(360_000);

if (!isRoot()) {
  t.pass('skipped: needs root');
} else {
  const files = tempDir();
  fs.writeFileSync(path.join(files, 'volume.xml'), VOLUME);
  fs.writeFileSync(path.join(files, 'private.xml'), PRIVATE);
  fs.chmodSync(files, 0o755);
  const volumeXml = path.join(files, 'volume.xml');
  const privateXml = path.join(files, 'private.xml');

  const vsh = (uri: string, args: string[], o: { user?: TestUser; env?: Record<string, string> } = {}): ReturnType<typeof run> =>
    run(binPath('vsh'), ['-c', uri, ...args], { ...(o.user ? { user: o.user } : {}), env: o.env ?? {} });

  /** The daemon whose process runs with this name as the user, if any. */
  const pidsOf = (name: string, uid: number): number[] => fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((pid) => {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      return cmd.includes(`bin/${name}`) && fs.statSync(`/proc/${pid}`).uid === uid;
    } catch { return false; }
  });

  t.test('session mode: vsh autostarts virtsecretd, which exits on its own later', async (t) => {
    const user = ensureUser('virttest');
    const xdg = runtimeDirFor(user);
    const env = { ...userEnv(user, xdg), VIRTD_AUTOSTART_TIMEOUT: '3', XDG_CONFIG_HOME: path.join(xdg, 'config') };
    const uri = 'secret:///session';
    t.teardown(() => { for (const pid of pidsOf('virtsecretd', user.uid)) process.kill(pid, 'SIGKILL'); });
    t.same(pidsOf('virtsecretd', user.uid), [], 'no daemon running at first');

    // Two clients race to start it; one daemon results.
    const [a, b] = await Promise.all([vsh(uri, ['uri'], { user, env }), vsh(uri, ['uri'], { user, env })]);
    t.equal(a.stdout, 'secret:///session\n\n', a.stderr);
    t.equal(b.stdout, 'secret:///session\n\n', b.stderr);
    t.equal(pidsOf('virtsecretd', user.uid).length, 1, 'exactly one virtsecretd started');
    t.notOk(fs.existsSync(path.join(xdg, 'libvirt', 'virtsecretd.lock')), 'the autostart lock file is gone');

    // A second client watches for events while the first defines and sets.
    const watcher = spawn(binPath('vsh'), ['-c', uri, 'secret-event', '--event', 'lifecycle', '--loop', '--timeout', '8'],
      { uid: user.uid, gid: user.gid, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let watched = '';
    watcher.stdout.on('data', (d) => (watched += d));
    await sleep(1000);
    const def = await vsh(uri, ['secret-define', volumeXml], { user, env });
    t.match(def.stdout, /^Secret [0-9a-f-]{36} created\n/);
    const uuid = /Secret (\S+) created/.exec(def.stdout)![1]!;
    const set = await vsh(uri, ['secret-set-value', uuid, '--base64', Buffer.from('s3cret').toString('base64')], { user, env });
    t.equal(set.stdout, 'Secret value set\n\n');
    t.equal((await vsh(uri, ['secret-get-value', uuid], { user, env })).stdout, `${Buffer.from('s3cret').toString('base64')}\n\n`);
    t.equal((await vsh(uri, ['secret-get-value', uuid, '--plain'], { user, env })).stdout, 's3cret\n');
    const list = await vsh(uri, ['secret-list'], { user, env });
    t.match(list.stdout, ` ${uuid}   volume /var/lib/libvirt/images/test.img\n`);
    await waitFor(() => watched.includes(uuid), 8000, 'the event at the second client');
    t.match(watched, `event 'lifecycle' for secret ${uuid}: Defined`);
    watcher.kill();

    // Persistent, in the session config directory, in libvirt's layout.
    const dir = path.join(xdg, 'config', 'libvirt', 'secrets');
    t.equal(fs.statSync(dir).mode & 0o777, 0o700);
    t.equal(fs.statSync(path.join(dir, `${uuid}.xml`)).mode & 0o777, 0o600);
    t.equal(fs.readFileSync(path.join(dir, `${uuid}.base64`), 'utf8'), Buffer.from('s3cret').toString('base64'));
    t.equal(fs.statSync(path.join(dir, `${uuid}.xml`)).uid, user.uid);

    // No clients: the autostarted daemon leaves after its timeout.
    await waitFor(() => pidsOf('virtsecretd', user.uid).length === 0, 15_000, 'the daemon to exit by itself');
    t.pass('virtsecretd exited by itself after the last client');
    t.equal((await vsh(uri, ['secret-list'], { user, env })).code, 0, 'and is started again on demand');
  });

  const tls = async (): Promise<{ pkiDir: string; conf: string[] }> => {
    const pki = makePki(tempDir('virtd-pki-'));
    const pkiDir = tempDir('virtd-clientpki-');
    fs.copyFileSync(pki.ca.cert, path.join(pkiDir, 'cacert.pem'));
    fs.copyFileSync(pki.client.cert, path.join(pkiDir, 'clientcert.pem'));
    fs.copyFileSync(pki.client.key, path.join(pkiDir, 'clientkey.pem'));
    return { pkiDir, conf: [`key_file = "${pki.server.key}"`, `cert_file = "${pki.server.cert}"`, `ca_file = "${pki.ca.cert}"`] };
  };

  t.test('system mode through virtproxyd, over UNIX and TLS, read-only included', async (t) => {
    const port = await freePort();
    const { pkiDir, conf } = await tls();
    const proxy = startDaemon({
      name: 'virtproxyd', mode: 'system',
      config: [...conf, 'listen_tls = 1', `tls_port = "${port}"`, 'listen_addr = "127.0.0.1"'].join('\n'),
    });
    t.teardown(() => proxy.kill());
    await proxy.ready('/run/libvirt/libvirt-sock');
    const secretd = proxy.companion('virtsecretd');
    t.teardown(() => secretd.kill());
    await secretd.ready('/run/libvirt/virtsecretd-sock');
    const rw = `secret:///system?socket=${proxy.path('/run/libvirt/libvirt-sock')}`;
    const ro = `secret:///system?socket=${proxy.path('/run/libvirt/libvirt-sock-ro')}`;

    const def = await vsh(rw, ['secret-define', privateXml]);
    t.equal(def.stdout, 'Secret 11111111-2222-3333-4444-555555555555 created\n\n', def.stderr);
    t.equal((await vsh(rw, ['secret-set-value', '11111111-2222-3333-4444-555555555555', '--base64', 'aGVsbG8='])).code, 0);
    const priv = await vsh(rw, ['secret-get-value', '11111111-2222-3333-4444-555555555555']);
    t.equal(priv.stderr, 'error: Invalid secret: secret is private\n', 'a private value never crosses RPC, relayed unchanged');
    t.equal((await vsh(rw, ['uri'])).stdout, `${rw}\n\n`, 'the URI as given, as virsh prints it');
    const nodeinfo = await vsh(rw, ['nodeinfo']);
    t.equal(nodeinfo.stderr, 'error: failed to get node information\nerror: this function is not supported by the connection driver: virNodeGetInfo\n');

    t.match((await vsh(ro, ['secret-list'])).stdout, '11111111-2222-3333-4444-555555555555   ceph client.admin secret', 'the ro socket lists');
    const roDef = await vsh(ro, ['secret-define', volumeXml]);
    t.equal(roDef.code, 1);
    t.equal(roDef.stderr, `error: Failed to set attributes from ${volumeXml}\nerror: operation forbidden: read only access prevents virSecretDefineXML\n`);

    const viaTls = `secret+tls://127.0.0.1:${port}/system?pkipath=${pkiDir}`;
    t.match((await vsh(viaTls, ['secret-list'])).stdout, '11111111-2222-3333-4444-555555555555', 'TLS to virtproxyd reaches virtsecretd');
    const tlsDef = await vsh(viaTls, ['secret-define', volumeXml]);
    t.match(tlsDef.stdout, /^Secret \S+ created/);
    const qemu = await vsh(`qemu:///system?socket=${proxy.path('/run/libvirt/libvirt-sock')}`, ['uri']);
    t.equal(qemu.stderr, "error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/run/libvirt/virtqemud-sock': No such file or directory\n",
      'a daemon that is not running: the proxy reports the socket it tried');
    await secretd.stop();
    await proxy.stop();
  });

  t.test('the monolithic libvirtd serves secrets in-process', async (t) => {
    const h = startDaemon({ name: 'libvirtd', mode: 'system' });
    t.teardown(() => h.kill());
    await h.ready('/run/libvirt/libvirt-sock');
    const uri = `secret:///system?socket=${h.path('/run/libvirt/libvirt-sock')}`;
    const def = await vsh(uri, ['secret-define', volumeXml]);
    t.match(def.stdout, /^Secret \S+ created/, def.stderr);
    // A hypervisor connection on libvirtd reaches the same secret driver.
    const viaQemu = await vsh(`qemu:///system?socket=${h.path('/run/libvirt/libvirt-sock')}`, ['secret-list']);
    t.match(viaQemu.stdout, 'volume /var/lib/libvirt/images/test.img');
    const files = fs.readdirSync(path.join(h.etcDir, 'secrets'));
    t.equal(files.filter((f) => f.endsWith('.xml')).length, 1, 'persisted under /etc/libvirt/secrets');
    await h.stop();
  });

  t.test('secret files survive kill -9 in the middle of set-value', async (t) => {
    const rounds = Number(process.env.VIRTD_TEST_KILL_ROUNDS ?? 6);
    let h: DaemonHandle = startDaemon({ name: 'virtsecretd', mode: 'system' });
    t.teardown(() => h.kill());
    await h.ready('/run/libvirt/virtsecretd-sock');
    const etc = h.etcDir;
    const uriOf = (d: DaemonHandle): string => `secret:///system?socket=${d.path('/run/libvirt/virtsecretd-sock')}`;
    const def = await vsh(uriOf(h), ['secret-define', volumeXml]);
    const uuid = /Secret (\S+) created/.exec(def.stdout)![1]!;
    const written = new Set<string>();
    for (let round = 0; round < rounds; round++) {
      // A writer process sets values as fast as it can; the daemon dies under it.
      const writer = spawn(process.execPath, ['-e', `
        const { VirtConnection } = require(${JSON.stringify(require.resolve('@virtd/client'))});
        (async () => {
          const c = await VirtConnection.open(${JSON.stringify(uriOf(h))});
          for (let i = 0; ; i++) {
            const v = 'round${round}-value-' + i + '-' + 'x'.repeat(i % 300);
            process.stdout.write(v + '\\n');
            await c.secretSetValue(${JSON.stringify(uuid)}, Buffer.from(v));
          }
        })().catch(() => process.exit(0));
      `], { stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      writer.stdout.on('data', (d) => (out += d));
      // Let it get going (a few values set), then kill at a random moment.
      await waitFor(() => out.split('\n').length > 4, 10_000, 'the writer to start');
      await sleep(Math.floor(Math.random() * 300));
      h.signal('SIGKILL');
      await h.exited;
      await new Promise((r) => writer.on('exit', r));
      for (const v of out.split('\n').filter(Boolean)) written.add(v);
      // Every file on disk is whole: the definition parses, the value is one that was written.
      const dir = path.join(etc, 'secrets');
      t.same(parseSecretXml(fs.readFileSync(path.join(dir, `${uuid}.xml`), 'utf8')).uuid, uuid, `round ${round}: xml intact`);
      const value = Buffer.from(fs.readFileSync(path.join(dir, `${uuid}.base64`), 'utf8'), 'base64').toString();
      t.ok(written.has(value), `round ${round}: value '${value.slice(0, 24)}…' is one that was written`);
      // The daemon starts again cleanly over the leftovers and serves that value.
      h = startDaemon({ name: 'virtsecretd', mode: 'system', nsSetup: `mount --bind ${etc} /etc/libvirt` });
      await h.ready('/run/libvirt/virtsecretd-sock');
      const got = await vsh(uriOf(h), ['secret-get-value', uuid, '--plain']);
      t.equal(got.stdout, `${value}\n`, `round ${round}: the restarted daemon serves it`);
    }
    await h.stop();
  });
}
