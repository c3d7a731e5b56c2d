// Fuzzing real daemons on every kind of socket they serve: virtsecretd's
// rw, ro and admin sockets; virtproxyd's TCP and TLS listeners (forwarding
// to that virtsecretd); virtlogd's and virtlockd's main sockets (behind the
// HTTP/2 relay; virtlogd's also takes fd hand-over lines) and admin sockets.
// Inputs come from a seeded PRNG (test-utils' hostile.ts): random bytes, a
// good preface followed by broken frames, malformed protobuf in valid
// calls, wrong paths, huge metadata, rapid stream resets, connections
// abandoned mid-handshake (TLS included), fd hand-over lines garbled.
//
// Each daemon gets its inputs in batches, all its sockets at once. After a
// batch: the daemon is alive; on every socket, a client that stayed
// connected through the batch and a fresh one are both served (a health
// check and a call of the daemon's own program); the client count of each
// of its servers and its open fds are back to what they were before any
// fuzzing; its resident memory is back under baseline + MEMORY_SLACK_MIB.
//
// VIRTD_FUZZ_SEED=<n> replays a run (the seed is printed first);
// VIRTD_FUZZ_COUNT=<n> sets the number of inputs (default 10,000).
import t, { type Test } from 'tap';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { ALL_METHODS } from '@virtd/protocol/methods';
import { HealthService } from '@virtd/protocol/health';
import { SecretService } from '@virtd/protocol/secret';
import { ConnectService } from '@virtd/protocol/connect';
import { AdminService } from '@virtd/protocol/admin';
import { LogManagerService } from '@virtd/protocol/logd';
import { LockSpaceService } from '@virtd/protocol/lockd';
import { AdminClient, Connection, LockClient, LogManagerClient, unixTarget } from '@virtd/client';
import {
  startDaemon, isRoot, tempDir, freePort, makePki, tlsTarget, tcpTarget, waitFor, sleep,
  Prng, fuzzSeed, fuzzCount, runFuzzBatch, vmRssKiB, openFds, processAlive,
  type DaemonHandle, type FuzzTarget, type FuzzCaseKind, type BatchReport,
} from '@virtd/test-utils';

/**
 * Memory. The daemon cannot be made to collect garbage (no --expose-gc),
 * V8 keeps a heap it grew, and malloc keeps what nghttp2 and OpenSSL freed:
 * the first batch alone lifts VmRSS by 20–50 MiB for good, leak or not. So
 * the first batch is the warm-up, held only to WARMUP_SLACK_MIB over the
 * untouched daemon (a gross blow-up), and every later batch must leave
 * VmRSS within MEMORY_SLACK_MIB of where the warm-up left it, after a
 * settle window: a leak of what one connection costs (an HTTP/2 session, a
 * Client, a relay: 30 KiB and up) over the daemon's later thousands of
 * inputs passes that, while heap churn stays well inside it. Leaked
 * connections themselves are caught exactly, by the open-fd and
 * client-count checks.
 */
const MEMORY_SLACK_MIB = 50;
const WARMUP_SLACK_MIB = 100;
/** How long a daemon gets to drop closed connections and settle after a batch (normally < 3 s). */
const SETTLE_MS = 20_000;
/** Batches per daemon: checks run between them. */
const BATCHES = 3;
/** Cases in flight per socket. */
const CONCURRENCY = 12;

if (!isRoot()) {
  t.pass('skipped: needs root');
} else {
  const seed = fuzzSeed();
  const total = fuzzCount(10_000);
  t.comment(`fuzz seed ${seed} (replay with VIRTD_FUZZ_SEED=${seed}), ${total} inputs`);
  const root = new Prng(seed);

  // ---- which methods each socket serves ----------------------------------
  const EXTRAS = ['grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection'];
  const ADMIN = ['virtd.admin.v1.Admin', ...EXTRAS];
  const SECRETD = ['virtd.connect.v1.Connect', 'virtd.secret.v1.Secret', ...EXTRAS];
  const LOGD = ['virtd.logd.v1.LogManager', ...EXTRAS];
  const LOCKD = ['virtd.lockd.v1.LockSpace', ...EXTRAS];
  const ALL_SERVICES = [...new Set(Object.values(ALL_METHODS).map((m) => m.service))];
  /** virtproxyd forwards everything but admin, virtlogd's and virtlockd's programs. */
  const PROXY = ALL_SERVICES.filter((s) => !['virtd.admin.v1.Admin', LOGD[0], LOCKD[0]].includes(s));

  // A decodable random payload goes only where it cannot change anything:
  // read methods, or any method on the read-only socket. Write methods get
  // payloads no decoder accepts (they must fail before the handler).
  const methodsOf = (services: readonly string[], ro = false): FuzzTarget['methods'] =>
    Object.entries(ALL_METHODS).filter(([, m]) => services.includes(m.service))
      .map(([path, m]) => ({ path, safe: ro || m.access === 'read', stream: m.responseStream || m.requestStream }));
  const foreign = (own: readonly string[]): string[] =>
    Object.entries(ALL_METHODS).filter(([, m]) => !own.includes(m.service)).map(([p]) => p);
  const unixFuzz = (name: string, socket: string, services: readonly string[], o: { ro?: boolean; fdHandoff?: boolean } = {}): FuzzTarget => ({
    name, transport: 'unix', connect: () => net.connect(socket),
    methods: methodsOf(services, o.ro), foreignPaths: foreign(services), ...(o.fdHandoff ? { fdHandoff: true } : {}),
  });

  // ---- good clients --------------------------------------------------------
  interface Probe { readonly label: string; call(c: Connection): Promise<unknown> }
  const DEADLINE = { deadlineMs: 10_000 };
  const health = (c: Connection): Promise<unknown> => c.unary(HealthService, 'Check', {}, DEADLINE);
  const opened = new WeakSet<Connection>();
  const secretProbe = (label: string): Probe => ({
    label,
    call: async (c) => {
      await health(c);
      if (!opened.has(c)) {
        await c.unary(ConnectService, 'Open', { uri: 'secret:///system', flags: 0 }, DEADLINE);
        opened.add(c);
      }
      await c.unary(SecretService, 'ListAll', { flags: 0 }, DEADLINE);
    },
  });
  const adminProbe = (server: string): Probe => ({
    label: 'health check, client limits',
    call: async (c) => { await health(c); await c.unary(AdminService, 'GetClientLimits', { server, flags: 0 }, DEADLINE); },
  });

  // ---- one daemon, all its sockets -----------------------------------------
  interface Role {
    readonly target: FuzzTarget;
    readonly count: number;
    readonly gen: Prng;
    readonly probe: Probe;
    readonly client: () => Connection;
    readonly weights: Partial<Record<FuzzCaseKind, number>>;
    readonly concurrency?: number;
    kept?: Connection;
  }
  interface Fuzzed {
    readonly name: string;
    readonly h: DaemonHandle;
    readonly admin: AdminClient;
    /** Servers whose client counts must come back. */
    readonly servers: readonly string[];
    readonly roles: Role[];
    baseClients: Record<string, number>;
    baseFds: number;
    baseRssKiB: number;
    /** VmRSS once the warm-up batch settled: what later batches are held to. */
    warmRssKiB: number;
  }

  async function connectKept(d: Fuzzed): Promise<void> {
    for (const r of d.roles) {
      r.kept = r.client();
      await r.probe.call(r.kept);
    }
  }

  async function takeBaseline(d: Fuzzed): Promise<void> {
    for (const s of d.servers) d.baseClients[s] = (await d.admin.clientLimits(s)).nclients;
    d.baseFds = openFds(d.h.pid);
    d.baseRssKiB = vmRssKiB(d.h.pid);
  }

  async function fuzzDaemon(t: Test, d: Fuzzed): Promise<void> {
    const started = Date.now();
    const totals = new Map<Role, BatchReport>();
    let fuzzMs = 0;
    let peakRssKiB = 0;
    for (let b = 0; b < BATCHES; b++) {
      const batchStart = Date.now();
      const reports = await Promise.all(d.roles.map((r) => {
        const done = totals.get(r)?.cases ?? 0;
        const n = Math.ceil((r.count - done) / (BATCHES - b));
        return runFuzzBatch(r.gen, r.target, n, { concurrency: r.concurrency ?? CONCURRENCY, weights: r.weights });
      }));
      fuzzMs += Date.now() - batchStart;
      peakRssKiB = Math.max(peakRssKiB, vmRssKiB(d.h.pid));
      const at = `${d.name}, batch ${b + 1}/${BATCHES}`;
      d.roles.forEach((r, i) => {
        const rep = reports[i]!;
        const sum = totals.get(r) ?? { cases: 0, byKind: {}, closedByPeer: 0, refused: 0, statuses: {}, violations: [] };
        sum.cases += rep.cases;
        sum.closedByPeer += rep.closedByPeer;
        sum.refused += rep.refused;
        for (const [k, v] of Object.entries(rep.byKind)) sum.byKind[k] = (sum.byKind[k] ?? 0) + v;
        for (const [k, v] of Object.entries(rep.statuses)) sum.statuses[Number(k)] = (sum.statuses[Number(k)] ?? 0) + v;
        totals.set(r, sum);
        t.same(rep.violations.slice(0, 5), [], `${at}, ${r.target.name}: ${rep.cases} inputs; every answer owed came, and right`);
      });

      t.ok(processAlive(d.h.pid) && d.h.proc.exitCode === null, `${at}: the daemon is alive`);
      for (const r of d.roles) {
        await t.resolves(r.probe.call(r.kept!), `${at}, ${r.target.name}: the client kept through the batch is served (${r.probe.label})`);
        const fresh = r.client();
        await t.resolves(r.probe.call(fresh), `${at}, ${r.target.name}: a new client is served`);
        fresh.close();
      }

      // Closed connections are dropped, nothing stays open, memory comes back.
      const clients: Record<string, number> = {};
      let fds = -1;
      let rss = -1;
      const [ref, slack, refName] = b === 0
        ? [d.baseRssKiB, WARMUP_SLACK_MIB, 'before fuzzing'] : [d.warmRssKiB, MEMORY_SLACK_MIB, 'after the warm-up batch'];
      const settled = async (): Promise<boolean> => {
        for (const s of d.servers) clients[s] = (await d.admin.clientLimits(s)).nclients;
        fds = openFds(d.h.pid);
        rss = vmRssKiB(d.h.pid);
        return d.servers.every((s) => clients[s]! <= d.baseClients[s]!) && fds <= d.baseFds && rss <= ref + slack * 1024;
      };
      await waitFor(settled, SETTLE_MS, 'the daemon to settle').catch(() => {});
      for (const s of d.servers) t.ok(clients[s]! <= d.baseClients[s]!, `${at}: ${clients[s]} clients on server '${s}' (${d.baseClients[s]} before fuzzing)`);
      t.ok(fds <= d.baseFds, `${at}: ${fds} open fds (${d.baseFds} before fuzzing)`);
      t.ok(rss <= ref + slack * 1024, `${at}: VmRSS ${mib(rss)} MiB ≤ ${mib(ref)} MiB ${refName} + ${slack} MiB`);
      if (b === 0) d.warmRssKiB = rss;
    }
    for (const [r, s] of totals) {
      t.comment(`${r.target.name}: ${s.cases} inputs ${JSON.stringify(s.byKind)}; the daemon closed ${s.closedByPeer}, `
        + `the kernel refused ${s.refused}; gRPC statuses ${JSON.stringify(s.statuses)}`);
    }
    t.comment(`${d.name}: VmRSS ${mib(d.baseRssKiB)} MiB before, ${mib(peakRssKiB)} MiB at most after a batch; `
      + `${Math.round(fuzzMs / 1000)} s fuzzing, ${Math.round((Date.now() - started) / 1000)} s with the checks`);
    for (const r of d.roles) r.kept?.close();
  }

  const mib = (kib: number): number => Math.round(kib / 1024);

  // A share of the inputs per socket, each from its own generator forked in
  // a fixed order: a replayed seed gives every socket the same inputs.
  const shares = {
    secretRw: 0.16, secretRo: 0.12, secretAdmin: 0.10, proxyTcp: 0.18, proxyTls: 0.06,
    logdMain: 0.14, logdAdmin: 0.05, lockdMain: 0.14, lockdAdmin: 0.05,
  };
  const gen = Object.fromEntries(Object.keys(shares).map((k) => [k, root.fork()])) as Record<keyof typeof shares, Prng>;
  const count = Object.fromEntries(Object.entries(shares).map(([k, s]) => [k, Math.max(BATCHES, Math.round(total * s))])) as Record<keyof typeof shares, number>;
  t.comment(`inputs per socket: ${JSON.stringify(count)}`);

  const NO_HANDOFF = { 'fd-handoff': 0 };
  const pki = makePki(tempDir('virtd-pki-'));

  t.test('every socket role survives the fuzzer, and keeps serving', async (t) => {
    const tcpPort = await freePort();
    const tlsPort = await freePort();
    const proxy = startDaemon({
      name: 'virtproxyd', mode: 'system',
      config: [
        'listen_tcp = 1', 'listen_tls = 1', `tcp_port = "${tcpPort}"`, `tls_port = "${tlsPort}"`, 'listen_addr = "127.0.0.1"',
        `key_file = "${pki.server.key}"`, `cert_file = "${pki.server.cert}"`, `ca_file = "${pki.ca.cert}"`,
        'tls_allowed_dn_list = ["C=GB,O=virtd test,CN=*"]',
        // Abandoned TLS handshakes count as anonymous clients until they
        // end; libvirt's default of 20 would pause accepting mid-batch.
        'max_clients = 5000', 'max_anonymous_clients = 2000',
      ].join('\n'),
    });
    const logd = startDaemon({ name: 'virtlogd', mode: 'system' });
    const lockd = startDaemon({ name: 'virtlockd', mode: 'system' });
    t.teardown(() => { proxy.kill(); logd.kill(); lockd.kill(); });
    await proxy.ready('/run/libvirt/libvirt-admin-sock');
    // virtsecretd in virtproxyd's namespace: the proxy forwards to it.
    const secretd = proxy.companion('virtsecretd');
    t.teardown(() => secretd.kill());
    await Promise.all([secretd.ready('/run/libvirt/virtsecretd-admin-sock'), logd.ready('/run/libvirt/virtlogd-sock'),
      lockd.ready('/run/libvirt/virtlockd-sock')]);

    const fuzzed = (name: string, h: DaemonHandle, adminSock: string, roles: Role[]): Fuzzed => {
      const admin = AdminClient.open(`${name}:///system?socket=${h.path(adminSock)}`, {}, 0);
      t.teardown(() => admin.close());
      return { name, h, admin, servers: [name, 'admin'], roles, baseClients: {}, baseFds: 0, baseRssKiB: 0, warmRssKiB: 0 };
    };
    const unixRole = (h: DaemonHandle, sock: string, target: FuzzTarget, o: Omit<Role, 'target' | 'client'>): Role =>
      ({ target, client: () => new Connection(unixTarget(h.path(sock))), ...o });
    const run = (p: string): string => `/run/libvirt/${p}`;

    const sd = (s: string): string => secretd.path(run(`virtsecretd-${s}`));
    const secretdF = fuzzed('virtsecretd', secretd, run('virtsecretd-admin-sock'), [
      unixRole(secretd, run('virtsecretd-sock'), unixFuzz('virtsecretd rw', sd('sock'), SECRETD),
        { count: count.secretRw, gen: gen.secretRw, probe: secretProbe('health check, open, secret list'), weights: NO_HANDOFF }),
      unixRole(secretd, run('virtsecretd-sock-ro'), unixFuzz('virtsecretd ro', sd('sock-ro'), SECRETD, { ro: true }),
        { count: count.secretRo, gen: gen.secretRo, probe: secretProbe('health check, open, secret list'), weights: NO_HANDOFF }),
      unixRole(secretd, run('virtsecretd-admin-sock'), unixFuzz('virtsecretd admin', sd('admin-sock'), ADMIN),
        { count: count.secretAdmin, gen: gen.secretAdmin, probe: adminProbe('virtsecretd'), weights: NO_HANDOFF }),
    ]);

    const tlsFuzz: FuzzTarget = {
      name: 'virtproxyd TLS', transport: 'tls',
      connect: () => tls.connect({
        port: tlsPort, host: '127.0.0.1', servername: 'localhost', ALPNProtocols: ['h2'],
        ca: fs.readFileSync(pki.ca.cert), cert: fs.readFileSync(pki.client.cert), key: fs.readFileSync(pki.client.key),
      }),
      connectPlain: () => net.connect(tlsPort, '127.0.0.1'),
      methods: methodsOf(PROXY), foreignPaths: foreign(PROXY),
    };
    const tcpFuzz: FuzzTarget = {
      name: 'virtproxyd TCP', transport: 'tcp', connect: () => net.connect(tcpPort, '127.0.0.1'),
      methods: methodsOf(PROXY), foreignPaths: foreign(PROXY),
    };
    const forwarded = secretProbe('health check, open secret:///system, secret list, forwarded to virtsecretd');
    const proxyF = fuzzed('virtproxyd', proxy, run('libvirt-admin-sock'), [
      { target: tcpFuzz, client: () => new Connection(tcpTarget('127.0.0.1', tcpPort)), count: count.proxyTcp, gen: gen.proxyTcp, probe: forwarded, weights: NO_HANDOFF },
      // TLS handshakes cost far more than anything else here.
      { target: tlsFuzz, client: () => new Connection(tlsTarget('127.0.0.1', tlsPort, pki.ca.cert, pki.client)), count: count.proxyTls, gen: gen.proxyTls,
        probe: forwarded, weights: NO_HANDOFF, concurrency: 6 },
    ]);

    const logdF = fuzzed('virtlogd', logd, run('virtlogd-admin-sock'), [
      unixRole(logd, run('virtlogd-sock'), unixFuzz('virtlogd main', logd.path(run('virtlogd-sock')), LOGD, { fdHandoff: true }), {
        count: count.logdMain, gen: gen.logdMain, weights: { 'fd-handoff': 14 },
        probe: { label: 'health check, log file list', call: async (c) => { await health(c); await c.unary(LogManagerService, 'ListLogFiles', {}, DEADLINE); } },
      }),
      unixRole(logd, run('virtlogd-admin-sock'), unixFuzz('virtlogd admin', logd.path(run('virtlogd-admin-sock')), ADMIN),
        { count: count.logdAdmin, gen: gen.logdAdmin, probe: adminProbe('virtlogd'), weights: NO_HANDOFF }),
    ]);
    const lockdF = fuzzed('virtlockd', lockd, run('virtlockd-admin-sock'), [
      // virtlockd hands over no fds: the same lines must just be dropped.
      unixRole(lockd, run('virtlockd-sock'), unixFuzz('virtlockd main', lockd.path(run('virtlockd-sock')), LOCKD), {
        count: count.lockdMain, gen: gen.lockdMain, weights: { 'fd-handoff': 14 },
        probe: { label: 'health check, lock list', call: async (c) => { await health(c); await c.unary(LockSpaceService, 'List', {}, DEADLINE); } },
      }),
      unixRole(lockd, run('virtlockd-admin-sock'), unixFuzz('virtlockd admin', lockd.path(run('virtlockd-admin-sock')), ADMIN),
        { count: count.lockdAdmin, gen: gen.lockdAdmin, probe: adminProbe('virtlockd'), weights: NO_HANDOFF }),
    ]);

    const all = [secretdF, proxyF, logdF, lockdF];
    // Every kept client first (virtproxyd's opens one to virtsecretd too),
    // then every baseline, then the four daemons are fuzzed side by side.
    for (const d of all) await connectKept(d);
    await sleep(500);
    for (const d of all) await takeBaseline(d);
    await Promise.all(all.map((d) => fuzzDaemon(t, d)));

    // virtlogd's pipe hand-over and virtlockd's locks still work end to end.
    const lc = new LogManagerClient(logd.path(run('virtlogd-sock')));
    t.teardown(() => lc.close());
    const logFile = `${tempDir('virtd-fuzz-logs-')}/after-fuzz.log`;
    const { fd } = await lc.openLogFile('qemu', { uuid: 'c7a5fdbd-edaf-9455-926a-d65c16db1809', name: 'fuzzed' }, logFile);
    fs.writeSync(fd, 'still logging\n');
    fs.closeSync(fd);
    await waitFor(() => fs.existsSync(logFile) && fs.readFileSync(logFile, 'utf8') === 'still logging\n', 5000, 'the log line');
    t.pass('virtlogd still hands over a pipe and logs what comes through it');
    const lk = new LockClient(lockd.path(run('virtlockd-sock')));
    t.teardown(() => lk.close());
    t.same(await lk.list(), [], 'virtlockd holds no lock the fuzzer could have taken');

    // virtproxyd decodes Open's request itself (forward.ts): one that does not
    // decode is the client's error there too, not an internal one.
    for (const d of [secretdF, proxyF, logdF, lockdF]) {
      t.same(await d.h.stop(), { code: 0, signal: null }, `${d.name} stops cleanly after the fuzzing`);
      t.notMatch(d.h.stderr, /unexpected failure|uncaught|call failed unexpectedly|cannot take the connection|cannot serve the connection/i,
        `${d.name} logged no internal error`);
    }
  });
}
