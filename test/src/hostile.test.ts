// Clients that try to take a daemon down by volume or by stalling, against
// real daemons: a flood past max_clients waits in the kernel's backlog
// (libvirt stops accepting, it does not accept-then-close) and resumes as
// slots free; clients that never read their (large) replies pin a bounded
// amount of memory and hold up nobody; a client trickling a byte a second
// holds up nobody; running out of file descriptors pauses accepting (once
// logged, no spinning, nobody accepted-then-dropped) until fds come back.
// Every scenario keeps a good client working throughout.
import t, { type Test } from 'tap';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { HealthService } from '@virtd/protocol/health';
import { SecretService } from '@virtd/protocol/secret';
import { ConnectService } from '@virtd/protocol/connect';
import { AdminService } from '@virtd/protocol/admin';
import { LogManagerService } from '@virtd/protocol/logd';
import { AdminClient, Connection, LogManagerClient, unixTarget } from '@virtd/client';
import {
  startDaemon, isRoot, tempDir, freePort, makePki, tlsTarget, waitFor, sleep,
  RawH2Client, h2Start, h2Frame, H2, grpcRequestHeaders, grpcMessage,
  vmRssKiB, openFds, cpuTicks, processAlive, unixAcceptQueue, type DaemonHandle,
} from '@virtd/test-utils';

if (!isRoot()) {
  t.pass('skipped: needs root');
} else {
  const DEADLINE = { deadlineMs: 10_000 };
  const check = (c: Connection, ms = 10_000): Promise<unknown> => c.unary(HealthService, 'Check', {}, { deadlineMs: ms });
  const RW = '/run/libvirt/virtsecretd-sock';
  const ADMIN = '/run/libvirt/virtsecretd-admin-sock';

  async function secretd(t: Test, o: { config?: string; wrap?: string[]; args?: string[] } = {}): Promise<{ h: DaemonHandle; admin: AdminClient; sock: string }> {
    const h = startDaemon({ name: 'virtsecretd', mode: 'system', ...(o.config ? { config: o.config } : {}), ...(o.wrap ? { wrap: o.wrap } : {}), ...(o.args ? { args: o.args } : {}) });
    t.teardown(() => h.kill());
    await h.ready(ADMIN);
    const admin = AdminClient.open(`virtsecretd:///system?socket=${h.path(ADMIN)}`, {}, 0);
    t.teardown(() => admin.close());
    return { h, admin, sock: h.path(RW) };
  }

  /**
   * A raw connection; resolves once connected (the kernel took it, accepted
   * or queued). One the daemon closes lands in closedByDaemon.
   */
  const byUs = new WeakSet<net.Socket>();
  async function rawConnect(path: string, into: net.Socket[], closedByDaemon: Set<net.Socket>): Promise<net.Socket> {
    const s = net.connect(path);
    s.on('error', () => {});
    s.on('close', () => { if (!byUs.has(s)) closedByDaemon.add(s); });
    into.push(s);
    await new Promise<void>((resolve, reject) => {
      s.once('connect', () => resolve());
      s.once('close', () => reject(new Error('refused')));
    });
    return s;
  }
  const closeByUs = (s: net.Socket): void => {
    byUs.add(s);
    s.destroy();
  };

  t.test('a flood past max_clients waits in the backlog, and nobody else notices', async (t) => {
    const { h, admin, sock } = await secretd(t, { config: 'max_clients = 8\nmax_anonymous_clients = 8\n' });
    const good = new Connection(unixTarget(sock));
    t.teardown(() => good.close());
    await check(good);
    const flood: net.Socket[] = [];
    const droppedByDaemon = new Set<net.Socket>();
    t.teardown(() => { for (const s of flood) closeByUs(s); });
    for (let i = 0; i < 7; i++) await rawConnect(sock, flood, droppedByDaemon);
    await waitFor(async () => (await admin.clientLimits('virtsecretd')).nclients === 8, 5000, 'eight clients');
    // Twenty more: the kernel takes them, the daemon does not.
    for (let i = 0; i < 20; i++) await rawConnect(sock, flood, droppedByDaemon);
    await waitFor(() => unixAcceptQueue(h.pid, '/run/libvirt/virtsecretd-sock') === 20, 5000, 'twenty queued')
      .catch(() => {});
    t.equal(unixAcceptQueue(h.pid, '/run/libvirt/virtsecretd-sock'), 20, 'the twenty extra connections wait in the listen backlog');
    // A new well-behaved client queues like the rest...
    const late = new Connection(unixTarget(sock));
    t.teardown(() => late.close());
    let lateServed = false;
    const lateCall = check(late, 30_000).then(() => { lateServed = true; });
    for (let i = 0; i < 10; i++) {
      t.same(await check(good), { status: 1 }, `the good client is served during the flood (${i + 1})`);
      await sleep(100);
    }
    t.match(await admin.clientLimits('virtsecretd'), { nclients: 8, nclientsMax: 8 }, 'still exactly max_clients clients');
    t.equal(droppedByDaemon.size, 0, 'no connection was accepted and then closed');
    t.equal(lateServed, false, 'the late client waits its turn');
    t.ok((await admin.listServers()).includes('virtsecretd'), 'the admin socket (another server) is unaffected');

    // Slots free: the queue moves, one accept per free slot.
    for (const s of flood.slice(0, 5)) closeByUs(s);
    await waitFor(() => unixAcceptQueue(h.pid, '/run/libvirt/virtsecretd-sock') === 16, 5000, 'five accepted').catch(() => {});
    t.equal(unixAcceptQueue(h.pid, '/run/libvirt/virtsecretd-sock'), 16, 'five left, five more accepted (the late client is still queued)');
    t.match(await admin.clientLimits('virtsecretd'), { nclients: 8 }, 'back at the limit, not over it');
    for (const s of flood) closeByUs(s);
    await lateCall;
    t.equal(lateServed, true, 'the late client is served once the flood is gone');
    t.equal(droppedByDaemon.size, 0, 'the daemon closed none of the flood itself');
    await waitFor(async () => (await admin.clientLimits('virtsecretd')).nclients === 2, 5000, 'the flood gone');
    t.same(await h.stop(), { code: 0, signal: null });
  });

  t.test('clients that never read their replies hold up nobody, and pin bounded memory', async (t) => {
    const { h, admin, sock } = await secretd(t);
    const logd = startDaemon({ name: 'virtlogd', mode: 'system' });
    t.teardown(() => logd.kill());
    await logd.ready('/run/libvirt/virtlogd-sock');

    // A 1 MiB secret value, and a 4 MiB log file: large replies.
    const c = new Connection(unixTarget(sock));
    t.teardown(() => c.close());
    await c.unary(ConnectService, 'Open', { uri: 'secret:///system', flags: 0 }, DEADLINE);
    const uuid = '1b1a5d1e-0000-4000-8000-000000000001';
    await c.unary(SecretService, 'DefineXML', { xml: `<secret ephemeral='no' private='no'><uuid>${uuid}</uuid><usage type='ceph'><name>big</name></usage></secret>`, flags: 0 }, DEADLINE);
    const VALUE_BYTES = 1024 * 1024;
    await c.unary(SecretService, 'SetValue', { uuid, value: Buffer.alloc(VALUE_BYTES, 0x5a), flags: 0 }, DEADLINE);
    const logFile = `${tempDir('virtd-hostile-')}/big.log`;
    const LOG_BYTES = 4 * 1024 * 1024;
    fs.writeFileSync(logFile, Buffer.alloc(LOG_BYTES, 0x41));

    const baseSecretd = vmRssKiB(h.pid);
    const baseLogd = vmRssKiB(logd.pid);
    const getValue = SecretService.GetValue.requestSerialize({ uuid });
    const openReq = ConnectService.Open.requestSerialize({ uri: 'secret:///system', flags: 0 });
    const readLog = LogManagerService.ReadLogFile.requestSerialize({ path: logFile, pos: { inode: 0, offset: 0 }, maxlen: LOG_BYTES, flags: 0 });
    const listClients = AdminService.ListClients.requestSerialize({ server: 'virtsecretd' });

    // Each stalled client opens its window wide ("send me everything"),
    // asks for far more than the daemon lets it have in flight, and reads
    // nothing at all.
    const stalled: RawH2Client[] = [];
    /** Each round, every stalled client asks for this many more replies. */
    const MORE = 40;
    t.teardown(() => { for (const s of stalled) s.destroy(); });
    for (let i = 0; i < 4; i++) {
      const s = new RawH2Client(net.connect(sock), { windowBytes: 0x7fffffff });
      stalled.push(s);
      await s.streamEnded(s.call(ConnectService.Open.path, openReq));
      s.stopReading();
    }
    for (let i = 0; i < 2; i++) {
      const s = new RawH2Client(net.connect(h.path(ADMIN)), { windowBytes: 0x7fffffff });
      stalled.push(s);
      s.stopReading();
    }
    for (let i = 0; i < 2; i++) {
      // virtlogd: through the HTTP/2 relay.
      const s = new RawH2Client(net.connect(logd.path('/run/libvirt/virtlogd-sock')), { windowBytes: 0x7fffffff });
      stalled.push(s);
      s.stopReading();
    }
    const askMore = (): void => stalled.forEach((s, i) => {
      for (let k = 0; k < MORE; k++) {
        if (i < 4) s.call(SecretService.GetValue.path, getValue);
        else if (i < 6) s.call(AdminService.ListClients.path, listClients);
        else s.call(LogManagerService.ReadLogFile.path, readLog);
      }
    });

    // Meanwhile good clients get the same large replies, promptly and whole.
    const lc = new LogManagerClient(logd.path('/run/libvirt/virtlogd-sock'));
    t.teardown(() => lc.close());
    let peakSecretd = 0;
    let peakLogd = 0;
    const ROUNDS = 5;
    for (let round = 0; round < ROUNDS; round++) {
      askMore();
      const v = await c.unary<object, { value?: Uint8Array }>(SecretService, 'GetValue', { uuid }, DEADLINE);
      t.equal(v.value?.length, VALUE_BYTES, `round ${round + 1}: a good client reads the 1 MiB value`);
      t.equal((await lc.readLogFile(logFile, { inode: 0, offset: 0 }, LOG_BYTES)).length, LOG_BYTES, `round ${round + 1}: a good client reads 4 MiB of log`);
      t.ok((await admin.listClients('virtsecretd')).length >= 5, `round ${round + 1}: admin calls are answered`);
      peakSecretd = Math.max(peakSecretd, vmRssKiB(h.pid));
      peakLogd = Math.max(peakLogd, vmRssKiB(logd.pid));
      await sleep(300);
    }
    // What a stalled client can pin: its calls in flight (max_client_requests
    // = 5 on virtsecretd, 1 on virtlogd) times the reply, a few copies on the
    // way out, plus what serving the good client costs (64 MiB). Unbounded
    // would be every reply asked for: 4 × 5 × 40 × 1 MiB = 800 MiB on
    // virtsecretd, 2 × 5 × 40 × 4 MiB = 1600 MiB on virtlogd.
    const MiB = 1024;
    const boundSecretd = 4 * 5 * (VALUE_BYTES / 1024) * 3 + 64 * MiB;
    const boundLogd = 2 * 1 * (LOG_BYTES / 1024) * 3 + 64 * MiB;
    t.ok(peakSecretd - baseSecretd < boundSecretd,
      `virtsecretd grew ${Math.round((peakSecretd - baseSecretd) / MiB)} MiB with 4 stalled clients asking for ${4 * ROUNDS * MORE} MiB (bound ${boundSecretd / MiB} MiB)`);
    t.ok(peakLogd - baseLogd < boundLogd,
      `virtlogd grew ${Math.round((peakLogd - baseLogd) / MiB)} MiB with 2 stalled clients asking for ${2 * ROUNDS * MORE * 4} MiB (bound ${boundLogd / MiB} MiB)`);
    t.ok(stalled.every((s) => !s.closed), 'stalled clients are not dropped for being slow (libvirt does not either)');
    for (const s of stalled) s.destroy();
    await waitFor(async () => (await admin.clientLimits('virtsecretd')).nclients === 1, 10_000, 'stalled clients gone');
    t.pass('the stalled clients are gone once they disconnect');
    t.same(await h.stop(), { code: 0, signal: null });
    t.same(await logd.stop(), { code: 0, signal: null });
  });

  t.test('a client sending a byte a second holds up nobody', async (t) => {
    const pki = makePki(tempDir('virtd-pki-'));
    const tlsPort = await freePort();
    const proxy = startDaemon({
      name: 'virtproxyd', mode: 'system',
      config: ['listen_tcp = 0', 'listen_tls = 1', `tls_port = "${tlsPort}"`, 'listen_addr = "127.0.0.1"',
        `key_file = "${pki.server.key}"`, `cert_file = "${pki.server.cert}"`, `ca_file = "${pki.ca.cert}"`].join('\n'),
    });
    const logd = startDaemon({ name: 'virtlogd', mode: 'system' });
    t.teardown(() => { proxy.kill(); logd.kill(); });
    await Promise.all([proxy.ready('/run/libvirt/libvirt-sock'), logd.ready('/run/libvirt/virtlogd-sock')]);
    const proxySock = proxy.path('/run/libvirt/libvirt-sock');
    const logdSock = logd.path('/run/libvirt/virtlogd-sock');

    // What each slow client trickles: a preface and a call; an fd hand-over
    // line; a TLS ClientHello.
    const call = Buffer.concat([h2Start(), h2Frame(H2.SETTINGS, H2.ACK, 0),
      h2Frame(H2.HEADERS, H2.END_HEADERS, 1, grpcRequestHeaders('/grpc.health.v1.Health/Check')),
      h2Frame(H2.DATA, H2.END_STREAM, 1, grpcMessage(Buffer.alloc(0)))]);
    const slow: { name: string; sock: net.Socket; bytes: Buffer; sent: number; got: Buffer[] }[] = [];
    const trickle = (name: string, sock: net.Socket, bytes: Buffer): void => {
      sock.on('error', () => {});
      const s = { name, sock, bytes, sent: 0, got: [] as Buffer[] };
      sock.on('data', (d: Buffer) => s.got.push(d));
      slow.push(s);
    };
    for (let i = 0; i < 5; i++) trickle(`HTTP/2 on virtproxyd's UNIX socket #${i + 1}`, net.connect(proxySock), call);
    for (let i = 0; i < 3; i++) trickle(`HTTP/2 through virtlogd's relay #${i + 1}`, net.connect(logdSock), call);
    trickle("an fd hand-over line on virtlogd's socket", net.connect(logdSock), Buffer.from(`VIRTD-FD1 ${'0'.repeat(32)}\n`));
    const hello = await new Promise<Buffer>((resolve) => {
      // A real ClientHello, captured from a client that never goes on.
      const srv = net.createServer((c) => c.once('data', (d: Buffer) => { resolve(d); c.destroy(); srv.close(); }));
      srv.listen(0, '127.0.0.1', () => {
        const c = tls.connect({ port: (srv.address() as net.AddressInfo).port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: ['h2'] });
        c.on('error', () => {});
      });
    });
    for (let i = 0; i < 3; i++) trickle(`a TLS handshake on virtproxyd #${i + 1}`, net.connect(tlsPort, '127.0.0.1'), hello);
    t.teardown(() => { for (const s of slow) s.sock.destroy(); });

    const unix = new Connection(unixTarget(proxySock));
    const overTls = new Connection(tlsTarget('127.0.0.1', tlsPort, pki.ca.cert, pki.client));
    const lc = new LogManagerClient(logdSock);
    t.teardown(() => { unix.close(); overTls.close(); lc.close(); });
    const SECONDS = 6;
    for (let sec = 0; sec < SECONDS; sec++) {
      for (const s of slow) if (s.sent < s.bytes.length) s.sock.write(s.bytes.subarray(s.sent, ++s.sent));
      // Fresh clients each second: accepting goes on, calls are answered.
      const fresh = new Connection(unixTarget(proxySock));
      await t.resolves(Promise.all([check(unix, 5000), check(overTls, 5000), check(fresh, 5000), lc.list()]),
        `second ${sec + 1}: clients on the UNIX socket, over TLS and through the relay are served`);
      fresh.close();
      await sleep(1000);
    }
    t.ok(slow.every((s) => !s.sock.destroyed), 'the slow clients are still connected (no per-byte timeout, as in libvirt)');
    // The rest at once: every slow client gets its answer after all.
    for (const s of slow) s.sock.write(s.bytes.subarray(s.sent));
    const h2 = slow.filter((x) => x.name.startsWith('HTTP/2'));
    const handoff = slow.find((s) => s.name.startsWith('an fd'))!;
    await waitFor(() => h2.every((s) => endsStream(Buffer.concat(s.got), 1)) && handoff.got.length > 0, 10_000, 'answers')
      .catch(() => {});
    for (const s of h2) t.ok(endsStream(Buffer.concat(s.got), 1), `${s.name}: answered once its call was complete`);
    t.match(Buffer.concat(handoff.got).toString(), /^ERR /, 'the trickled hand-over line is answered');
    t.same(await proxy.stop(), { code: 0, signal: null });
    t.same(await logd.stop(), { code: 0, signal: null });
  });

  t.test('out of file descriptors: accepting pauses, is logged once, and resumes', async (t) => {
    const LIMIT = 64;
    const { h, admin, sock } = await secretd(t, { wrap: ['prlimit', `--nofile=${LIMIT}:${LIMIT}`, '--'], args: ['--verbose'] });
    const good = new Connection(unixTarget(sock));
    t.teardown(() => good.close());
    await check(good);
    // Connected before the shortage: every listener of the process stops
    // accepting then, the admin socket's too.
    t.equal((await admin.clientLimits('virtsecretd')).nclients, 1, 'one client before the flood');
    const flood: net.Socket[] = [];
    const droppedByDaemon = new Set<net.Socket>();
    t.teardown(() => { for (const s of flood) closeByUs(s); });
    // More connections than the daemon has descriptors left.
    for (let i = 0; i < LIMIT; i++) await rawConnect(sock, flood, droppedByDaemon);
    let accepted = 0;
    await waitFor(async () => {
      const n = (await admin.clientLimits('virtsecretd')).nclients;
      const stable = n === accepted;
      accepted = n;
      return stable && (unixAcceptQueue(h.pid, RW) ?? 0) > 0;
    }, 10_000, 'accepting to stop');
    const queued = unixAcceptQueue(h.pid, RW)!;
    t.comment(`with ${LIMIT} fds: ${accepted} clients accepted, ${queued} waiting, ${openFds(h.pid)} fds open`);
    t.ok(queued > 0 && accepted + queued >= LIMIT, 'the daemon stopped accepting; the rest wait in the backlog');
    t.ok(openFds(h.pid) < LIMIT, 'it stopped short of the limit: it still has descriptors for its own work');
    t.equal(droppedByDaemon.size, 0, 'no connection was accepted and then closed (libuv\'s EMFILE trick would)');
    t.equal(countMatches(h.stderr, /too many open files/g), 1, 'logged once');
    const ticks = cpuTicks(h.pid);
    await sleep(2000);
    const used = cpuTicks(h.pid) - ticks;
    t.ok(used < 40, `idle while paused, not spinning: ${used * 10} ms of CPU in 2 s`);
    t.ok(processAlive(h.pid), 'alive');
    for (let i = 0; i < 3; i++) t.same(await check(good), { status: 1 }, `the good client is served while fds are exhausted (${i + 1})`);
    t.ok((await admin.clientLimits('virtsecretd')).nclients === accepted, 'the admin client is served too');

    // Free a third of the flood: the queue moves again.
    const freed = flood.splice(0, Math.floor(accepted / 3));
    for (const s of freed) closeByUs(s);
    await waitFor(() => (unixAcceptQueue(h.pid, RW) ?? 0) < queued, 10_000, 'accepting to resume').catch(() => {});
    t.ok(unixAcceptQueue(h.pid, RW)! < queued, `accepting resumed as fds came back (${unixAcceptQueue(h.pid, RW)} still waiting)`);
    t.equal(droppedByDaemon.size, 0, 'still none accepted and then closed');
    for (const s of flood) closeByUs(s);
    await waitFor(async () => (await admin.clientLimits('virtsecretd')).nclients === 1 && unixAcceptQueue(h.pid, RW) === 0, 10_000, 'the flood gone');
    const late = new Connection(unixTarget(sock));
    t.teardown(() => late.close());
    t.same(await check(late), { status: 1 }, 'a new client is served once the flood is gone');
    await waitFor(() => /accepting connections/.test(h.stderr), 5000, 'the recovery line').catch(() => {});
    t.match(h.stderr, /file descriptors available again: accepting connections/, 'the recovery is logged');
    t.equal(countMatches(h.stderr, /too many open files/g), 1, 'and the shortage still only once');
    t.same(await h.stop(), { code: 0, signal: null });
  });
}

function countMatches(s: string, re: RegExp): number {
  return [...s.matchAll(re)].length;
}

/** Whether the bytes hold a frame ending stream `sid` (HEADERS or DATA with END_STREAM, or RST_STREAM). */
function endsStream(bytes: Buffer, sid: number): boolean {
  for (let o = 0; o + 9 <= bytes.length;) {
    const len = bytes.readUIntBE(o, 3);
    const type = bytes[o + 3]!;
    const flags = bytes[o + 4]!;
    const id = bytes.readUInt32BE(o + 5) & 0x7fffffff;
    if (id === sid && ((type === H2.HEADERS && flags & H2.END_STREAM) || type === H2.RST_STREAM)) return true;
    o += 9 + len;
  }
  return false;
}
