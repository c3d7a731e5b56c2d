// systemd socket activation through systemd-socket-activate: fds claimed by
// name for the rw, ro, admin, tcp and tls services; every failure case
// stops start-up with status 6; activated sockets are never unlinked.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { AdminService } from '@virtd/protocol/admin';
import { HealthService } from '@virtd/protocol/health';
import {
  startDaemon, isRoot, tempDir, freePort, makePki, connectUnix, tlsTarget, tcpTarget, waitFor, canConnect,
} from '@virtd/test-utils';
import { Connection } from '@virtd/client';

const hasActivate = fs.existsSync('/usr/bin/systemd-socket-activate') || fs.existsSync('/bin/systemd-socket-activate');

if (!isRoot() || !hasActivate) {
  t.pass('skipped: needs root and systemd-socket-activate');
} else {
  const dir = tempDir();
  const pki = makePki(tempDir('virtd-pki-'));

  const activate = (names: string[], listen: string[]): string[] =>
    ['systemd-socket-activate', ...listen.flatMap((l) => ['-l', l]), `--fdname=${names.join(':')}`];

  t.test('libvirtd: rw, ro, admin, tcp and tls fds claimed by name', async (t) => {
    const [tcpPort, tlsPort] = [await freePort(), await freePort()];
    const socks = ['rw', 'ro', 'admin'].map((s) => path.join(dir, `act-${s}.sock`));
    const h = startDaemon({
      name: 'libvirtd', mode: 'system',
      // listen_tcp/listen_tls and the ports are ignored under activation.
      config: [
        `key_file = "${pki.server.key}"`, `cert_file = "${pki.server.cert}"`, `ca_file = "${pki.ca.cert}"`,
        'listen_tcp = 0', 'listen_tls = 0', 'tcp_port = "1"',
      ].join('\n'),
      wrap: activate(
        ['libvirtd.socket', 'libvirtd-ro.socket', 'libvirtd-admin.socket', 'libvirtd-tcp.socket', 'libvirtd-tls.socket'],
        [...socks, `127.0.0.1:${tcpPort}`, `127.0.0.1:${tlsPort}`],
      ),
    });
    t.teardown(() => h.kill());
    // The activator binds, then listens: existing is not enough. This first
    // connection (to the admin socket) is what starts the daemon.
    await waitFor(async () => socks.every((s) => fs.existsSync(s)) && canConnect(socks[2]!), 10_000, 'activator sockets');

    // Each socket lands on its role.
    const admin = connectUnix(socks[2]!);
    t.teardown(() => admin.close());
    const servers = await admin.unary<object, { servers: { name: string }[] }>(AdminService, 'ListServers', {});
    t.same(servers.servers.map((s) => s.name), ['libvirtd', 'admin']);

    // One open connection per socket, to see each land on its role.
    const conns = {
      rw: connectUnix(socks[0]!),
      ro: connectUnix(socks[1]!),
      tcp: new Connection(tcpTarget('127.0.0.1', tcpPort)),
      tls: new Connection(tlsTarget('127.0.0.1', tlsPort, pki.ca.cert, pki.client)),
    };
    t.teardown(() => Object.values(conns).forEach((c) => c.close()));
    for (const [name, c] of Object.entries(conns)) {
      t.same(await c.unary(HealthService, 'Check', {}), { status: 1 }, `${name} socket serves`);
    }
    type Listed = { clients?: { id?: number; transport?: number }[] };
    const listed = await admin.unary<object, Listed>(AdminService, 'ListClients', { server: 'libvirtd' });
    const clients = listed.clients ?? [];
    t.same(clients.map((c) => c.transport ?? 0).sort(), [0, 0, 1, 2], 'two unix, one tcp, one tls client');
    const readonly: boolean[] = [];
    for (const c of clients) {
      type Info = { params?: { field?: string; boolean?: boolean }[] };
      const info = await admin.unary<object, Info>(AdminService, 'GetClientInfo', { server: 'libvirtd', id: c.id });
      readonly.push(!!info.params?.find((p) => p.field === 'readonly')?.boolean);
    }
    t.equal(readonly.filter(Boolean).length, 1, 'exactly the ro socket\'s client is read-only');

    const exit = await h.stop();
    t.same(exit, { code: 0, signal: null });
    for (const s of socks) t.ok(fs.existsSync(s), `${path.basename(s)} not unlinked: systemd owns it`);
  });

  t.test('a name with no service (an unclaimed fd) stops start-up with status 6', async (t) => {
    const sock = path.join(dir, 'unclaimed-rw.sock');
    const stray = path.join(dir, 'unclaimed-tcp.sock');
    const h = startDaemon({
      name: 'virtqemud', mode: 'system',
      wrap: activate(['virtqemud.socket', 'virtqemud-tcp.socket'], [sock, stray]),
    });
    t.teardown(() => h.kill());
    await waitFor(() => canConnect(sock), 10_000, 'the activator listening');
    const c = connectUnix(sock);
    c.unary(HealthService, 'Check', {}, { deadlineMs: 5000 }).catch(() => undefined);
    const exit = await h.exited;
    c.close();
    t.equal(exit.code, 6, 'exit status 6 (network)');
    t.match(h.stderr, 'Some activation file descriptors are unclaimed: virtqemud-tcp.socket');
  });

  t.test('the ro socket is not claimed in session-style units: a missing name means no service', async (t) => {
    // Disabling a socket unit just means that fd is absent: the daemon starts without it.
    const rw = path.join(dir, 'only-rw.sock');
    const admin = path.join(dir, 'only-admin.sock');
    const h = startDaemon({
      name: 'virtsecretd', mode: 'system',
      wrap: activate(['virtsecretd.socket', 'virtsecretd-admin.socket'], [rw, admin]),
    });
    t.teardown(() => h.kill());
    await waitFor(() => canConnect(admin), 10_000, 'the activator listening');
    const c = connectUnix(admin);
    t.teardown(() => c.close());
    t.same((await c.unary<object, { servers: unknown[] }>(AdminService, 'ListServers', {})).servers.length, 2);
    t.notOk(fs.existsSync(h.path('/run/libvirt/virtsecretd-sock-ro')), 'nothing bound by itself under activation');
    t.notOk(fs.existsSync(h.path('/run/libvirt/virtsecretd-sock')));
    t.same(await h.stop(), { code: 0, signal: null });
  });

  t.test('missing LISTEN_FDNAMES stops start-up with status 6', async (t) => {
    const sock = path.join(dir, 'noname.sock');
    const h = startDaemon({ name: 'virtsecretd', mode: 'system', wrap: ['systemd-socket-activate', '-l', sock] });
    t.teardown(() => h.kill());
    await waitFor(() => canConnect(sock), 10_000, 'the activator listening');
    connectUnix(sock).unary(HealthService, 'Check', {}, { deadlineMs: 3000 }).catch(() => undefined);
    const exit = await h.exited;
    t.equal(exit.code, 6);
    t.match(h.stderr, /LISTEN_FDNAMES|unclaimed/);
  });

  t.test('--listen together with activation stops libvirtd with status 6', async (t) => {
    const sock = path.join(dir, 'listen.sock');
    const h = startDaemon({ name: 'libvirtd', mode: 'system', args: ['--listen'], wrap: activate(['libvirtd.socket'], [sock]) });
    t.teardown(() => h.kill());
    await waitFor(() => canConnect(sock), 10_000, 'the activator listening');
    connectUnix(sock).unary(HealthService, 'Check', {}, { deadlineMs: 3000 }).catch(() => undefined);
    const exit = await h.exited;
    t.equal(exit.code, 6);
    t.match(h.stderr, "--listen parameter not permitted with systemd activation sockets, see 'man libvirtd'");
  });
}
