// Client limits, keepalive, message size and hostile peers, against a real
// daemon: at max_clients the daemon stops accepting (connections wait in
// the backlog) and resumes below it; dead peers are dropped by keepalive;
// an oversized message fails that call only; garbage, half-open and stopped
// clients affect only themselves.
import t, { type Test } from 'tap';
import net from 'node:net';
import { spawn } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { HealthService } from '@virtd/protocol/health';
import { AdminClient, Connection, unixTarget } from '@virtd/client';
import { VirtError } from '@virtd/errors';
import { startDaemon, isRoot, rawCall, sleep, waitFor, type DaemonHandle } from '@virtd/test-utils';

if (!isRoot()) {
  t.pass('skipped: needs root');
} else {
  const check = (c: Connection, ms = 3000): Promise<unknown> => c.unary(HealthService, 'Check', {}, { deadlineMs: ms });

  async function daemon(t: Test, config: string): Promise<{ h: DaemonHandle; sock: string; admin: AdminClient }> {
    const h = startDaemon({ name: 'virtqemud', mode: 'system', config });
    t.teardown(() => h.kill());
    await h.ready('/run/libvirt/virtqemud-admin-sock');
    const admin = AdminClient.open(`virtqemud:///system?socket=${h.path('/run/libvirt/virtqemud-admin-sock')}`, {}, 0);
    t.teardown(() => admin.close());
    return { h, sock: h.path('/run/libvirt/virtqemud-sock'), admin };
  }

  t.test('max_clients: stop accepting at the limit, resume below it', async (t) => {
    const { h, sock, admin } = await daemon(t, 'max_clients = 2\nmax_anonymous_clients = 2\n');
    const a = new Connection(unixTarget(sock));
    const b = new Connection(unixTarget(sock));
    t.teardown(() => { a.close(); b.close(); });
    await check(a);
    await check(b);
    t.match(await admin.clientLimits('virtqemud'), { nclientsMax: 2, nclients: 2 });
    // The third connects (the kernel queues it) but is not served...
    const c = new Connection(unixTarget(sock));
    t.teardown(() => c.close());
    let served = false;
    const third = check(c, 20_000).then(() => { served = true; });
    await sleep(1000);
    t.equal(served, false, 'not accepted while at the limit');
    t.match(await admin.clientLimits('virtqemud'), { nclients: 2 }, 'still two clients');
    // ...until one leaves.
    a.close();
    await third;
    t.equal(served, true, 'accepted once below the limit');
    // Raised at run time through the admin API: accepting resumes at once.
    await admin.setClientLimits('virtqemud', { nclientsMax: 3 });
    const d = new Connection(unixTarget(sock));
    t.teardown(() => d.close());
    await check(d);
    t.match(await admin.clientLimits('virtqemud'), { nclientsMax: 3, nclients: 3 });
    await t.rejects(admin.setClientLimits('virtqemud', { nclientsMax: 1 }), /maximum number of clients/,
      'the cross-field rule holds at run time');
    t.same(await h.stop(), { code: 0, signal: null });
  });

  t.test('keepalive drops a peer that stopped answering', async (t) => {
    const { h, sock, admin } = await daemon(t, 'keepalive_interval = 1\nkeepalive_count = 1\n');
    // A separate process holds a connection, then is stopped: it can no
    // longer answer the server's pings.
    const child = spawn(process.execPath, ['-e', `
      const { Connection, unixTarget } = require(${JSON.stringify(require.resolve('@virtd/client'))});
      const { HealthService } = require(${JSON.stringify(require.resolve('@virtd/protocol/health'))});
      const c = new Connection(unixTarget(${JSON.stringify(sock)}));
      c.unary(HealthService, 'Check', {}).then(() => console.log('connected'));
      setInterval(() => {}, 1000);
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.teardown(() => child.kill('SIGKILL'));
    await new Promise((r) => child.stdout.once('data', r));
    t.equal((await admin.listClients('virtqemud')).length, 1, 'the peer is connected');
    child.kill('SIGSTOP');
    await waitFor(async () => (await admin.listClients('virtqemud')).length === 0, 10_000, 'keepalive drop');
    t.pass('dropped after its pings went unanswered');
    child.kill('SIGCONT');
    const live = new Connection(unixTarget(sock));
    t.teardown(() => live.close());
    await check(live);
    await sleep(2500);
    t.equal((await admin.listClients('virtqemud')).length, 1, 'a live client answering pings is kept');
    await h.stop();
  });

  t.test('an oversized message fails that call only', async (t) => {
    const { h, sock } = await daemon(t, '');
    // HealthCheckRequest{ service = 33 MiB } : field 1, length-delimited.
    const big = Buffer.alloc(33 * 1024 * 1024, 0x61);
    const len = big.length;
    const varint = [];
    for (let v = len; ; v >>>= 7) { if (v < 0x80) { varint.push(v); break; } varint.push((v & 0x7f) | 0x80); }
    const payload = Buffer.concat([Buffer.from([0x0a, ...varint]), big]);
    const target = { address: `unix://${sock}`, description: sock, credentials: grpc.credentials.createInsecure() };
    const r = await rawCall(target, '/grpc.health.v1.Health/Check', { requestStream: false, responseStream: false }, payload);
    t.equal(r.code, grpc.status.RESOURCE_EXHAUSTED, `refused: ${r.details}`);
    const ok = new Connection(unixTarget(sock));
    t.teardown(() => ok.close());
    t.same(await check(ok), { status: 1 }, 'the daemon serves on');
    await h.stop();
  });

  t.test('garbage, half-open and stopped clients affect only themselves', async (t) => {
    const { h, sock, admin } = await daemon(t, '');
    const good = new Connection(unixTarget(sock));
    t.teardown(() => good.close());
    await check(good);

    // Garbage bytes: that connection is dropped.
    const garbage = net.connect(sock);
    const closed = new Promise((r) => garbage.on('close', r));
    garbage.on('error', () => {});
    garbage.resume();
    garbage.write(Buffer.from('GET / HTTP/1.1\r\n\r\n\x00\xff\xfe garbage garbage'));
    await closed;
    t.pass('garbage client disconnected by the daemon');

    // Half-open: connects, says nothing, stays.
    const silent = net.connect(sock);
    silent.on('error', () => {});
    t.teardown(() => silent.destroy());
    await new Promise((r) => silent.once('connect', r));

    // A client process that starts a call and is then stopped, never reading.
    const stopped = spawn(process.execPath, ['-e', `
      const { Connection, unixTarget } = require(${JSON.stringify(require.resolve('@virtd/client'))});
      const { HealthService } = require(${JSON.stringify(require.resolve('@virtd/protocol/health'))});
      const c = new Connection(unixTarget(${JSON.stringify(sock)}));
      const s = c.serverStream(HealthService, 'Watch', {});
      s.once('data', () => console.log('watching'));
      setInterval(() => {}, 1000);
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.teardown(() => stopped.kill('SIGKILL'));
    await new Promise((r) => stopped.stdout.once('data', r));
    stopped.kill('SIGSTOP');

    for (let i = 0; i < 20; i++) t.same(await check(good), { status: 1 }, `good client call ${i} served`);
    const fresh = new Connection(unixTarget(sock));
    t.teardown(() => fresh.close());
    t.same(await check(fresh), { status: 1 }, 'new clients are served');
    t.ok((await admin.listClients('virtqemud')).length >= 3, 'the silent and the stopped clients are still counted');
    stopped.kill('SIGKILL');
    t.same(await h.stop(), { code: 0, signal: null }, 'and shutdown is clean');
  });

  t.test('errors come back as libvirt errors', async (t) => {
    const { h, admin } = await daemon(t, '');
    const e = await admin.clientInfo('nope', 1).catch((x: unknown) => x);
    t.ok(e instanceof VirtError);
    t.match(e, { code: 'NO_SERVER', domain: 'ADMIN', message: "Server not found: No server named 'nope'" });
    t.equal((e as VirtError).number, 95);
    await h.stop();
  });
}
