// Every scenario an administrator runs through systemd, under a real
// `systemd --system` booted in isolated namespaces: our units installed by
// the install step, socket activation per role, a masked socket, the
// documented switch from monolithic to modular daemons, TCP and TLS
// sockets, reloads and restarts, and a drop-in changing the daemon's
// arguments.
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { DAEMONS } from '@virtd/daemons';
import { SystemdNamespace, namespaceScratch, isRoot, repoRoot, run, makePki, sleep, type Pki } from '@virtd/test-utils';

const hasSystemd = fs.existsSync('/lib/systemd/systemd') && fs.existsSync('/sys/fs/cgroup/systemd') && fs.existsSync('/sys/fs/cgroup/unified');

// Many daemon starts and a kill loop: 100 s on an idle 2-core machine, more
// when the other test files share it (tap's default is 120 s per file).
t.setTimeout(360_000);

if (!isRoot() || !hasSystemd) {
  t.pass('skipped: needs root, systemd and the hybrid cgroup layout');
} else {
  // Outside /tmp, /run and /var/tmp: those are private tmpfs inside the namespace.
  const base = path.join(namespaceScratch('e2e'), `run-${process.pid}`);
  fs.mkdirSync(base, { recursive: true });
  t.teardown(() => fs.rmSync(base, { recursive: true, force: true }));
  let n = 0;

  interface Host {
    readonly ns: SystemdNamespace;
    readonly dir: string;
    readonly prefix: string;
    readonly etc: string;
    readonly pki: Pki;
    vsh(...args: string[]): ReturnType<SystemdNamespace['exec']>;
    vadmin(...args: string[]): ReturnType<SystemdNamespace['exec']>;
  }

  /** Installs our units with the install step, then boots a namespace systemd over them. */
  async function boot(t: Test, o: { net?: boolean; conf?: Record<string, string> } = {}): Promise<Host> {
    const dir = path.join(base, `host-${++n}`);
    const prefix = path.join(dir, 'prefix');
    const etc = path.join(dir, 'etc');
    // The vendor units go to the runtime unit directory inside; an empty
    // /etc/systemd/system is the administrator's (mask, enable, drop-ins).
    const unitdir = path.join(dir, 'vendor-units');
    const adminDir = path.join(dir, 'etc-systemd-system');
    fs.mkdirSync(adminDir, { recursive: true });
    const inst = await run(process.execPath, [path.join(repoRoot, 'scripts/dist/install.js'),
      `--prefix=${prefix}`, `--unitdir=${unitdir}`, `--sysconfdir=${etc}`, '--envdir=default', '--no-reload']);
    t.equal(inst.code, 0, `install${inst.code ? `: ${inst.stderr}` : ''}`);
    const pki = makePki(fs.mkdtempSync(path.join(dir, 'pki-')));
    for (const [name, text] of Object.entries(o.conf ?? {})) fs.writeFileSync(path.join(etc, 'libvirt', name), text);
    // No default dependencies (they would pull the machine's sysinit in), no
    // start-rate limit (tests start units in loops), output to files.
    const units: Record<string, string> = {};
    for (const f of fs.readdirSync(unitdir)) units[f] = fs.readFileSync(path.join(unitdir, f), 'utf8');
    for (const d of DAEMONS) {
      units[`${d.name}.service.d/test.conf`] = '[Unit]\nDefaultDependencies=no\nStartLimitIntervalSec=0\n'
        + `[Service]\nStandardOutput=append:/run/${d.name}.log\nStandardError=append:/run/${d.name}.log\n`;
      for (const s of ['', '-ro', '-admin', '-tcp', '-tls']) units[`${d.name}${s}.socket.d/test.conf`] = '[Unit]\nDefaultDependencies=no\n';
    }
    const ns = await SystemdNamespace.boot({
      net: o.net ?? false,
      units,
      binds: [{ host: path.join(etc, 'libvirt'), target: '/etc/libvirt' }, { host: adminDir, target: '/etc/systemd/system' }],
    }, dir);
    t.teardown(() => ns.shutdown());
    await ns.systemctl('daemon-reload');
    return {
      ns, dir, prefix, etc, pki,
      vsh: (...args) => ns.exec([path.join(prefix, 'bin', 'vsh'), ...args]),
      vadmin: (...args) => ns.exec([path.join(prefix, 'bin', 'vadmin'), ...args]),
    };
  }

  const tlsConf = (pki: Pki): string =>
    `key_file = "${pki.server.key}"\ncert_file = "${pki.server.cert}"\nca_file = "${pki.ca.cert}"\n`;

  t.test('every installed unit passes systemd-analyze verify', async (t) => {
    const h = await boot(t);
    const files = fs.readdirSync(path.join(h.dir, 'vendor-units')).filter((f) => /\.(service|socket)$/.test(f));
    t.ok(files.length >= 60, `${files.length} units installed`);
    const r = await h.ns.exec(['systemd-analyze', 'verify', ...files.map((f) => `/run/systemd/system/${f}`)]);
    const problems = r.stderr.split('\n').filter((l) => l.trim() && !/systemd-machined|xendomains|xencommons|iscsid|apparmor|firewalld|iptables|ip6tables/.test(l));
    t.same(problems, [], 'no complaints beyond units this host does not have');
  });

  t.test('1. socket activation of virtsecretd, per role, and auto-shutdown behind the sockets', async (t) => {
    const h = await boot(t);
    fs.writeFileSync(path.join(h.etc, 'default', 'virtsecretd'), 'VIRTSECRETD_ARGS="--timeout 2"\n');
    const start = await h.ns.systemctl('start', 'virtsecretd.socket', 'virtsecretd-ro.socket', 'virtsecretd-admin.socket');
    t.equal(start.code, 0, start.stderr);
    t.equal((await h.ns.show('virtsecretd.service', ['ActiveState'])).ActiveState, 'inactive', 'the service waits for a client');

    // First client on the rw socket.
    const def = await h.vsh('-c', 'secret:///system', 'secret-define', '/dev/stdin');
    t.equal(def.code, 1, 'sanity: stdin is empty');
    const xml = path.join(h.dir, 'secret.xml');
    fs.writeFileSync(xml, "<secret ephemeral='no' private='no'><usage type='ceph'><name>e2e</name></usage></secret>");
    t.match((await h.vsh('-c', 'secret:///system', 'secret-define', xml)).stdout, /^Secret \S+ created/);
    const s = await h.ns.show('virtsecretd.service', ['Type', 'ActiveState', 'SubState', 'MainPID', 'StatusText']);
    t.match(s, { Type: 'notify', ActiveState: 'active', SubState: 'running' });
    t.match(s.StatusText, /^Running: \d+ clients?, exits after 2 s without clients$/, 'a STATUS= line worth reading');
    const cmd = await h.ns.exec(['cat', `/proc/${s.MainPID}/cmdline`]);
    t.match(cmd.stdout.replace(/\0/g, ' '), /virtsecretd --timeout 2/, 'MainPID is the daemon, with the env file\'s arguments');
    t.match((await h.ns.systemctl('status', 'virtsecretd.service')).stdout, /Status: "Running/);

    // Auto-shutdown: the service stops, the sockets keep listening.
    await h.ns.waitFor('virtsecretd.service', 'inactive', 10_000);
    t.equal((await h.ns.show('virtsecretd.socket', ['ActiveState'])).ActiveState, 'active', 'the socket keeps listening');
    t.equal((await h.ns.exec(['test', '-S', '/run/libvirt/virtsecretd-sock'])).code, 0);

    // The ro socket as first client: lists, cannot define.
    t.match((await h.vsh('-r', '-c', 'secret:///system', 'secret-list')).stdout, 'ceph e2e', 'ro client activates it and lists');
    t.match((await h.vsh('-r', '-c', 'secret:///system', 'secret-define', xml)).stderr, 'read only access prevents virSecretDefineXML');
    await h.ns.waitFor('virtsecretd.service', 'inactive', 10_000);

    // The admin socket as first client.
    const srv = await h.vadmin('-c', 'virtsecretd:///system', 'srv-list');
    t.equal(srv.stdout, ' Id   Name\n-------------------\n 0    virtsecretd\n 1    admin\n\n', srv.stderr);
    const after = await h.ns.show('virtsecretd.service', ['MainPID']);
    t.not(after.MainPID, s.MainPID, 'started again by the next client');
  });

  t.test('2. a masked -ro socket simply does not exist; the daemon starts without it', async (t) => {
    const h = await boot(t);
    t.equal((await h.ns.systemctl('mask', 'virtsecretd-ro.socket')).code, 0);
    t.equal((await h.ns.systemctl('start', 'virtsecretd.socket', 'virtsecretd-admin.socket')).code, 0);
    t.equal((await h.vsh('-c', 'secret:///system', 'uri')).stdout, 'secret:///system\n\n');
    t.equal((await h.ns.show('virtsecretd.service', ['ActiveState'])).ActiveState, 'active');
    t.not((await h.ns.exec(['test', '-e', '/run/libvirt/virtsecretd-sock-ro'])).code, 0, 'no read-only socket');
    t.match((await h.vsh('-r', '-c', 'secret:///system', 'uri')).stderr, 'No such file or directory');
  });

  t.test('3. switching from monolithic libvirtd to the modular daemons, as documented', async (t) => {
    const h = await boot(t, { conf: {} });
    fs.writeFileSync(path.join(h.etc, 'libvirt', 'virtproxyd.conf'), tlsConf(h.pki));
    const ctl = async (...args: string[]): Promise<void> => {
      const r = await h.ns.systemctl(...args);
      t.equal(r.code, 0, `systemctl ${args.join(' ')}${r.code ? `: ${r.stderr}` : ''}`);
    };
    const active = async (unit: string): Promise<string> => (await h.ns.systemctl('is-active', unit)).stdout.trim();

    // Monolithic, through its sockets.
    await ctl('enable', 'libvirtd.service', 'libvirtd.socket', 'libvirtd-ro.socket', 'libvirtd-admin.socket');
    await ctl('start', 'libvirtd.socket', 'libvirtd-ro.socket', 'libvirtd-admin.socket');
    t.equal((await h.vsh('-c', 'secret:///system', 'uri')).stdout, 'secret:///system\n\n');
    t.match((await h.vadmin('-c', 'libvirtd:///system', 'srv-list')).stdout, ' 0    libvirtd\n', 'libvirtd answers on libvirt-admin-sock');
    // Which mode is in use: libvirtd's units are active, the modular ones are not.
    t.equal(await active('libvirtd.service'), 'active');
    t.equal(await active('libvirtd.socket'), 'active');
    t.equal(await active('virtqemud.socket'), 'inactive');
    t.equal(await active('virtproxyd.socket'), 'inactive');

    // 1-2. Stop and disable the monolithic daemon and its sockets.
    await ctl('stop', 'libvirtd.service');
    await ctl('stop', ...['', '-ro', '-admin', '-tcp', '-tls'].map((s) => `libvirtd${s}.socket`));
    await ctl('disable', 'libvirtd.service');
    await ctl('disable', ...['', '-ro', '-admin', '-tcp', '-tls'].map((s) => `libvirtd${s}.socket`));
    // 3-4. Enable and start the modular daemons' sockets.
    const drivers = ['qemu', 'interface', 'network', 'nodedev', 'nwfilter', 'secret', 'storage'];
    for (const drv of drivers) {
      await ctl('unmask', `virt${drv}d.service`);
      await ctl('unmask', `virt${drv}d.socket`, `virt${drv}d-ro.socket`, `virt${drv}d-admin.socket`);
      await ctl('enable', `virt${drv}d.service`);
      await ctl('enable', `virt${drv}d.socket`, `virt${drv}d-ro.socket`, `virt${drv}d-admin.socket`);
    }
    for (const drv of drivers) await ctl('start', `virt${drv}d.socket`, `virt${drv}d-ro.socket`, `virt${drv}d-admin.socket`);
    // 5. The proxy for remote and legacy-socket clients, TLS included.
    await ctl('unmask', 'virtproxyd.service');
    await ctl('unmask', 'virtproxyd.socket', 'virtproxyd-ro.socket', 'virtproxyd-admin.socket');
    await ctl('enable', 'virtproxyd.service');
    await ctl('enable', 'virtproxyd.socket', 'virtproxyd-ro.socket', 'virtproxyd-admin.socket');
    await ctl('start', 'virtproxyd.socket', 'virtproxyd-ro.socket', 'virtproxyd-admin.socket');
    await ctl('unmask', 'virtproxyd-tls.socket');
    await ctl('enable', 'virtproxyd-tls.socket');
    await ctl('start', 'virtproxyd-tls.socket');

    // A client on /run/libvirt/libvirt-sock now reaches virtsecretd through virtproxyd.
    const viaProxy = await h.vsh('-c', 'secret:///system?socket=/run/libvirt/libvirt-sock', 'uri');
    t.equal(viaProxy.stdout, 'secret:///system?socket=/run/libvirt/libvirt-sock\n\n', viaProxy.stderr);
    t.equal(await active('virtproxyd.service'), 'active', 'virtproxyd was activated');
    t.equal(await active('virtsecretd.service'), 'active', 'and it activated virtsecretd');
    t.equal(await active('libvirtd.service'), 'inactive');
    t.equal(await active('libvirtd.socket'), 'inactive', 'modular mode in use: libvirtd\'s socket is not');
    t.equal(await active('virtqemud.socket'), 'active');

    // The Conflicts= keep the two modes apart.
    await ctl('start', 'libvirtd.socket');
    t.equal(await active('virtproxyd.socket'), 'inactive', 'starting libvirtd.socket stopped virtproxyd.socket');
    t.equal(await active('virtsecretd.socket'), 'inactive', 'and the modular sockets');
    await ctl('start', 'virtsecretd.socket');
    t.equal(await active('libvirtd.socket'), 'inactive', 'and the other way round');
  });

  t.test('4. TCP and TLS through libvirtd-tcp/-tls.socket and virtproxyd-tls.socket on loopback', async (t) => {
    const h = await boot(t, { net: true });
    fs.writeFileSync(path.join(h.etc, 'libvirt', 'libvirtd.conf'), tlsConf(h.pki));
    const pkipath = path.join(h.dir, 'client-pki');
    fs.mkdirSync(pkipath);
    fs.copyFileSync(h.pki.ca.cert, path.join(pkipath, 'cacert.pem'));
    fs.copyFileSync(h.pki.client.cert, path.join(pkipath, 'clientcert.pem'));
    fs.copyFileSync(h.pki.client.key, path.join(pkipath, 'clientkey.pem'));
    const start = await h.ns.systemctl('start', 'libvirtd.socket', 'libvirtd-tcp.socket', 'libvirtd-tls.socket');
    t.equal(start.code, 0, start.stderr);
    t.equal((await h.vsh('-c', 'secret+tcp://127.0.0.1/system', 'uri')).stdout, 'secret+tcp://127.0.0.1/system\n\n', 'TCP 16509');
    const tls = await h.vsh('-c', `secret+tls://127.0.0.1/system?pkipath=${pkipath}`, 'secret-list');
    t.equal(tls.code, 0, `TLS 16514: ${tls.stderr}`);
    const clients = await h.vadmin('-c', 'libvirtd:///system', 'srv-clients-info', 'libvirtd');
    t.match(clients.stdout, 'nclients_max');
    await h.ns.systemctl('stop', 'libvirtd.service', 'libvirtd.socket', 'libvirtd-tcp.socket', 'libvirtd-tls.socket');

    fs.writeFileSync(path.join(h.etc, 'libvirt', 'virtproxyd.conf'), tlsConf(h.pki));
    t.equal((await h.ns.systemctl('start', 'virtsecretd.socket', 'virtproxyd.socket', 'virtproxyd-tls.socket')).code, 0);
    const proxied = await h.vsh('-c', `secret+tls://127.0.0.1/system?pkipath=${pkipath}`, 'uri');
    t.equal(proxied.stdout, `secret+tls://127.0.0.1/system?pkipath=${pkipath}\n\n`, `virtproxyd TLS → virtsecretd: ${proxied.stderr}`);
    t.equal((await h.ns.show('virtsecretd.service', ['ActiveState'])).ActiveState, 'active');
  });

  t.test('5. reloads keep the MainPID; kill -9 brings a Restart=on-failure daemon back', async (t) => {
    const h = await boot(t);
    for (const name of ['virtlogd', 'virtlockd', 'virtsecretd']) {
      t.equal((await h.ns.systemctl('start', `${name}.socket`, `${name}-admin.socket`)).code, 0);
      t.equal((await h.ns.systemctl('start', `${name}.service`)).code, 0);
      const before = (await h.ns.show(`${name}.service`, ['MainPID'])).MainPID;
      const r = await h.ns.systemctl('reload', `${name}.service`);
      t.equal(r.code, 0, `reload ${name}: ${r.stderr}`);
      await sleep(500);
      const after = await h.ns.show(`${name}.service`, ['MainPID', 'ActiveState']);
      t.same(after, { MainPID: before, ActiveState: 'active' }, `${name}: same MainPID after reload (${name === 'virtsecretd' ? 'HUP' : 'USR1'})`);
    }
    const before = (await h.ns.show('virtsecretd.service', ['MainPID'])).MainPID;
    await h.ns.exec(['kill', '-9', before!]);
    await sleep(300);
    await h.ns.waitFor('virtsecretd.service', 'active', 15_000);
    const again = (await h.ns.show('virtsecretd.service', ['MainPID', 'NRestarts']));
    t.not(again.MainPID, before, 'a new process');
    t.equal(again.NRestarts, '1', 'restarted by Restart=on-failure');
  });

  t.test('6. a drop-in setting NAME_ARGS takes effect after daemon-reload', async (t) => {
    const h = await boot(t);
    t.equal((await h.ns.systemctl('start', 'virtsecretd.socket')).code, 0);
    await h.ns.writeFile('/etc/systemd/system/virtsecretd.service.d/debug.conf', '[Service]\nEnvironment=VIRTSECRETD_ARGS="--verbose"\n');
    t.equal((await h.ns.systemctl('daemon-reload')).code, 0);
    t.equal((await h.ns.systemctl('restart', 'virtsecretd.service')).code, 0);
    const pid = (await h.ns.show('virtsecretd.service', ['MainPID'])).MainPID;
    const cmd = (await h.ns.exec(['cat', `/proc/${pid}/cmdline`])).stdout.replace(/\0/g, ' ');
    t.match(cmd, /virtsecretd --verbose $/, 'the drop-in replaced --timeout 120 with --verbose');
    const log = (await h.ns.exec(['cat', '/run/virtsecretd.log'])).stdout;
    t.match(log, ' info : daemon : virtsecretd ', 'and --verbose shows in the log');
  });
}
