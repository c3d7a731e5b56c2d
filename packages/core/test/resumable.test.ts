// The HTTP/2 relay of resumable connections (src/resumable.ts), over real
// sockets: unmodified grpc-js clients keep one connection while the daemon
// side throws its gRPC server away and builds a new one from the relay's
// JSON state, as virtlogd and virtlockd do across execve. The re-exec is
// emulated in process: the client socket's fd is dup'd, the old net.Socket
// destroyed (closing one of two fds does not shut the connection) and a new
// one built on the dup, next to a brand-new grpc.Server.
import t, { type Test } from 'tap';
import * as grpc from '@grpc/grpc-js';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Duplex } from 'node:stream';
import { dupCloexec, getCloexec, socketPair } from '@virtd/posix';
import { H2Relay, CLIENT_PREFACE, type RelayState } from '../src/resumable.js';

const FIXTURES = path.resolve(__dirname, '../../test/fixtures');
const UPDATE_GOLDEN = process.env.VIRTD_UPDATE_GOLDEN === '1';
const CYCLES = 100;
const QUIESCE_TIMEOUT_MS = 5000;
const MIB = 1024 * 1024;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const fdOf = (s: net.Socket): number => (s as unknown as { _handle: { fd: number } })._handle.fd;
const socketOn = (fd: number): net.Socket => new net.Socket({ fd, readable: true, writable: true });

function tempDir(t: Test): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'virtd-relay-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

// ---- the test service --------------------------------------------------
//
// One unary method on raw bytes. Request: u32 response size, u32 delay (ms),
// then filler. Response: u32 generation of the server that answered, u32
// request size, sha1 of the request, then PATTERN up to the size asked.

const METHOD = '/virtd.test.Relay/Call';
const same = (b: Buffer): Buffer => b;
const SERVICE: grpc.ServiceDefinition = {
  call: {
    path: METHOD, requestStream: false, responseStream: false,
    requestSerialize: same, requestDeserialize: same, responseSerialize: same, responseDeserialize: same,
  },
};
const RESPONSE_HEAD = 28;
const PATTERN = Buffer.alloc(4 * MIB, 'virtd-relay-pattern:');

/** A relay host listening in a temp dir, closed with the test. */
async function listeningHost(t: Test): Promise<Host> {
  const host = new Host(tempDir(t));
  await host.listen();
  t.teardown(() => host.close());
  return host;
}

/** A plain gRPC client of `host`, closed with the test. */
function clientOf(t: Test, host: Host): grpc.Client {
  const client = new grpc.Client(`unix:${host.path}`, grpc.credentials.createInsecure(), CLIENT_OPTIONS);
  t.teardown(() => client.close());
  return client;
}

function request(responseBytes: number, delayMs = 0, extraBytes = 0): Buffer {
  const b = Buffer.alloc(8 + extraBytes, 0x5a);
  b.writeUInt32BE(Math.max(RESPONSE_HEAD, responseBytes), 0);
  b.writeUInt32BE(delayMs, 4);
  return b;
}

interface Answer { gen: number; ok: boolean }

function checkResponse(req: Buffer, res: Buffer): Answer {
  const size = req.readUInt32BE(0);
  const ok = res.length === size
    && res.readUInt32BE(4) === req.length
    && res.subarray(8, 28).equals(crypto.createHash('sha1').update(req).digest())
    && res.subarray(RESPONSE_HEAD).equals(PATTERN.subarray(0, size - RESPONSE_HEAD));
  return { gen: res.readUInt32BE(0), ok };
}

function callOn(client: grpc.Client, req: Buffer, meta = new grpc.Metadata()): Promise<Answer> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(METHOD, same, same, req, meta, { deadline: Date.now() + 20_000 }, (err, res) => {
      if (err) reject(err);
      else resolve(checkResponse(req, res!));
    });
  });
}

/** Metadata too big for one HEADERS frame: the request goes as HEADERS + CONTINUATION. */
function bigMetadata(): grpc.Metadata {
  const m = new grpc.Metadata();
  m.set('x-virtd-filler', 'h'.repeat(40_000));
  return m;
}

type Settled = { answer: Answer } | { error: unknown };
const settled = (p: Promise<Answer>): Promise<Settled> => p.then((answer) => ({ answer }), (error: unknown) => ({ error }));

/** Every connectivity state the client's channel went through. */
function channelStates(client: grpc.Client): grpc.connectivityState[] {
  const ch = client.getChannel();
  const seen = [ch.getConnectivityState(false)];
  const watch = (): void => {
    ch.watchConnectivityState(seen.at(-1)!, Infinity, (err) => {
      if (err) return;
      seen.push(ch.getConnectivityState(false));
      if (seen.at(-1) !== grpc.connectivityState.SHUTDOWN) watch();
    });
  };
  watch();
  return seen;
}

const CLIENT_OPTIONS: grpc.ChannelOptions = {
  'grpc.keepalive_time_ms': 200,
  'grpc.keepalive_timeout_ms': 1000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.max_receive_message_length': 8 * MIB,
  'grpc.max_send_message_length': 8 * MIB,
};

// ---- the daemon side ---------------------------------------------------

interface Conn { raw: net.Socket; inner: net.Socket; grpcSide: net.Socket; relay: H2Relay }

/** A listener and one grpc.Server behind relays, re-exec'able in process. */
class Host {
  readonly path: string;
  /** Connections accepted on the listening socket; a reconnecting client shows here. */
  accepts = 0;
  /** Bumped by every restart; answers carry it. */
  gen = 1;
  /** Calls that reached a handler, all generations. */
  handled = 0;
  readonly conns = new Set<Conn>();
  private readonly listener: net.Server;
  private server!: grpc.Server;
  private injector!: grpc.ConnectionInjector;

  constructor(dir: string, private readonly serverOptions: grpc.ServerOptions = {}) {
    this.path = path.join(dir, 'sock');
    this.listener = net.createServer({ pauseOnConnect: true }, (raw) => {
      this.accepts++;
      this.attach(raw);
    });
    this.newServer();
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.listener.listen(this.path, resolve));
  }

  private newServer(): void {
    this.server = new grpc.Server({ 'grpc.max_receive_message_length': 8 * MIB, ...this.serverOptions });
    const gen = this.gen;
    this.server.addService(SERVICE, {
      call: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        this.handled++;
        const req = call.request;
        const res = Buffer.allocUnsafe(req.readUInt32BE(0));
        res.writeUInt32BE(gen, 0);
        res.writeUInt32BE(req.length, 4);
        crypto.createHash('sha1').update(req).digest().copy(res, 8);
        PATTERN.copy(res, RESPONSE_HEAD, 0, res.length - RESPONSE_HEAD);
        setTimeout(() => cb(null, res), req.readUInt32BE(4));
      },
    });
    this.injector = this.server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  }

  /** What the daemon does with a client socket: socketpair, relay, inject. */
  attach(raw: net.Socket, state?: RelayState): Conn {
    const [a, b] = socketPair();
    const inner = socketOn(a);
    const grpcSide = socketOn(b);
    for (const s of [raw, inner, grpcSide]) s.on('error', () => {});
    const relay = new H2Relay(raw, inner, state);
    const conn: Conn = { raw, inner, grpcSide, relay };
    this.conns.add(conn);
    relay.on('close', () => { this.conns.delete(conn); grpcSide.destroy(); });
    this.injector.injectConnection(grpcSide);
    relay.start();
    return conn;
  }

  quiesce(timeoutMs = QUIESCE_TIMEOUT_MS): Promise<void> {
    return Promise.all([...this.conns].map((c) => c.relay.quiesce(timeoutMs))).then(() => {});
  }

  unquiesce(): void {
    for (const c of this.conns) c.relay.unquiesce();
  }

  /** The exec: state through JSON, old server and sockets gone, new ones from the state. */
  restart(): RelayState[] {
    const saved = [...this.conns].map((c) => ({
      fd: dupCloexec(fdOf(c.raw)),
      state: JSON.parse(JSON.stringify(c.relay.snapshot())) as RelayState,
    }));
    for (const c of this.conns) {
      c.relay.detach();
      c.raw.destroy();
      c.inner.destroy();
      c.grpcSide.destroy();
    }
    this.conns.clear();
    this.server.forceShutdown();
    this.gen++;
    this.newServer();
    for (const s of saved) {
      const raw = socketOn(s.fd);
      raw.pause();
      this.attach(raw, s.state);
    }
    return saved.map((s) => s.state);
  }

  /** The gRPC server alone goes (its sessions close their connections); a new one serves new clients. */
  restartServerOnly(): void {
    this.server.forceShutdown();
    this.gen++;
    this.newServer();
  }

  async reexec(): Promise<RelayState[]> {
    await this.quiesce();
    return this.restart();
  }

  close(): void {
    this.listener.close();
    for (const c of this.conns) c.raw.destroy();
    this.server.forceShutdown();
  }
}

// ---- raw HTTP/2 for the scripted peers ---------------------------------

interface Frame { type: number; flags: number; sid: number; payload: Buffer }
const DATA = 0, HEADERS = 1, RST_STREAM = 3, SETTINGS = 4, PING = 6, WINDOW_UPDATE = 8, CONTINUATION = 9;
const ACK = 1, END_STREAM = 1, END_HEADERS = 4;

function frame(type: number, flags: number, sid: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(sid, 5);
  return Buffer.concat([h, payload]);
}

function settings(entries: [number, number][], flags = 0): Buffer {
  const p = Buffer.alloc(6 * entries.length);
  entries.forEach(([id, v], i) => { p.writeUInt16BE(id, 6 * i); p.writeUInt32BE(v, 6 * i + 2); });
  return frame(SETTINGS, flags, 0, p);
}

function windowUpdate(sid: number, inc: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(inc);
  return frame(WINDOW_UPDATE, 0, sid, p);
}

const settingsOf = (f: Frame): [number, number][] =>
  Array.from({ length: f.payload.length / 6 }, (_, i) => [f.payload.readUInt16BE(6 * i), f.payload.readUInt32BE(6 * i + 2)]);

/** Frames as a peer of the relay receives them. */
class FrameReader {
  private buf = Buffer.alloc(0);
  private readonly frames: Frame[] = [];
  private wake: (() => void) | undefined;
  /** The client preface, once it came (server side only). */
  preface = false;

  constructor(sock: net.Socket, private readonly expectPreface = false) {
    sock.on('data', (d: Buffer) => { this.buf = Buffer.concat([this.buf, d]); this.parse(); });
  }

  private parse(): void {
    if (this.expectPreface && !this.preface) {
      if (this.buf.length < 24) return;
      if (!this.buf.subarray(0, 24).equals(CLIENT_PREFACE)) throw new Error('bad preface');
      this.buf = this.buf.subarray(24);
      this.preface = true;
    }
    while (this.buf.length >= 9 && this.buf.length >= 9 + this.buf.readUIntBE(0, 3)) {
      const len = this.buf.readUIntBE(0, 3);
      this.frames.push({ type: this.buf[3]!, flags: this.buf[4]!, sid: this.buf.readUInt32BE(5), payload: this.buf.subarray(9, 9 + len) });
      this.buf = this.buf.subarray(9 + len);
    }
    this.wake?.();
  }

  async next(ms = 2000): Promise<Frame> {
    const end = Date.now() + ms;
    while (this.frames.length === 0) {
      if (Date.now() > end) throw new Error('no frame came');
      await new Promise<void>((r) => { this.wake = r; setTimeout(r, 20); });
    }
    return this.frames.shift()!;
  }

  /** Nothing more within ms. */
  async none(ms = 50): Promise<Frame[]> {
    await sleep(ms);
    return this.frames.splice(0);
  }
}

/** Types of the whole frames in `b`. */
function frameTypes(b: Buffer): number[] {
  const types: number[] = [];
  for (let p = 0; p + 9 <= b.length; p += 9 + b.readUIntBE(p, 3)) types.push(b[p + 3]!);
  return types;
}

const head = (f: Frame): { type: number; flags: number; sid: number; len: number } =>
  ({ type: f.type, flags: f.flags, sid: f.sid, len: f.payload.length });

// ---- the tests ---------------------------------------------------------

t.test('socketPair gives two connected close-on-exec stream sockets', async (t) => {
  const [a, b] = socketPair();
  t.ok(getCloexec(a) && getCloexec(b));
  const sa = socketOn(a);
  const sb = socketOn(b);
  const got = new Promise<Buffer>((r) => sb.once('data', r));
  sa.write('ping');
  t.equal((await got).toString(), 'ping');
  sa.destroy();
  sb.destroy();
});

t.test(`gRPC clients keep their connection through ${CYCLES} re-execs`, async (t) => {
  const host = new Host(tempDir(t), { 'grpc.keepalive_time_ms': 300, 'grpc.keepalive_timeout_ms': 1000 });
  await host.listen();
  t.teardown(() => host.close());
  // Two clients: Node's default windows, and a 4 MiB window (the client
  // then has more receive window than a fresh server session assumes).
  const plain = new grpc.Client(`unix:${host.path}`, grpc.credentials.createInsecure(), CLIENT_OPTIONS);
  const wide = new grpc.Client(`unix:${host.path}`, grpc.credentials.createInsecure(),
    { ...CLIENT_OPTIONS, 'grpc-node.flow_control_window': 4 * MIB });
  t.teardown(() => { plain.close(); wide.close(); });
  const states = [channelStates(plain), channelStates(wide)];
  const clients = [plain, wide];
  for (const c of clients) t.equal((await callOn(c, request(64))).gen, 1);
  t.equal(host.accepts, 2);

  let bad = 0;
  let failed = 0;
  let heldServedByNew = 0;
  let heldServedByOld = 0;
  let heldIssued = 0;
  let unquiesced = 0;
  let statesWithHeldBytes = 0;
  const heldTypes = new Set<number>();
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    const gen = host.gen;
    const c = clients[cycle % 2]!;
    const other = clients[(cycle + 1) % 2]!;
    // In flight when quiesce starts: a slow one, and a 1 MiB answer or a 1 MiB request.
    const before = host.handled;
    const inflight = [
      callOn(c, request(100, 5 + (cycle % 7) * 3)),
      cycle % 2 ? callOn(other, request(MIB + 4096, cycle % 3)) : callOn(c, request(64, 2, MIB)),
    ];
    if (cycle % 3 === 0) inflight.push(callOn(other, request(MIB, 0, 256 * 1024), bigMetadata()));
    const inflightResults = inflight.map(settled);
    await waitFor('calls to reach the server', () => host.handled - before === inflight.length);
    const quiesced = host.quiesce();
    // Issued while quiescing: held, then served by the next session.
    const during = [callOn(c, request(200)), callOn(other, request(300_000, 0, 70_000))];
    if (cycle % 4 === 1) during.push(callOn(c, request(64), bigMetadata()));
    const duringResults = during.map(settled);
    heldIssued += during.length;
    await quiesced;
    if (cycle % 10 === 9) {
      // A failed exec: everything goes on with the same server.
      host.unquiesce();
      unquiesced++;
    } else {
      for (const st of host.restart()) {
        if (st.clientPending === '') continue;
        statesWithHeldBytes++;
        for (const type of frameTypes(Buffer.from(st.clientPending, 'base64'))) heldTypes.add(type);
      }
    }
    const results = await Promise.all([...inflightResults, ...duringResults]);
    for (const [i, r] of results.entries()) {
      if ('error' in r) { failed++; t.fail(`cycle ${cycle} call ${i}: ${String(r.error)}`); continue; }
      if (!r.answer.ok) bad++;
      if (i < inflight.length) {
        if (r.answer.gen !== gen) t.fail(`cycle ${cycle}: in-flight call ${i} answered by gen ${r.answer.gen}, not ${gen}`);
      } else if (r.answer.gen === host.gen) {
        if (host.gen !== gen) heldServedByNew++;
        else heldServedByOld++;
      } else {
        t.fail(`cycle ${cycle}: held call answered by gen ${r.answer.gen}`);
      }
    }
    // Let keepalive PINGs (client every 200 ms, server every 300 ms) cross some re-execs.
    if (cycle % 20 === 5) await sleep(250);
  }
  t.equal(failed, 0, 'no call failed');
  t.equal(bad, 0, 'every answer intact');
  const restarts = CYCLES - unquiesced;
  t.ok(heldServedByOld >= unquiesced * 2, 'calls made while quiescing were served by the same server after a failed exec');
  t.equal(heldServedByNew + heldServedByOld, heldIssued, 'and by the new one after an exec');
  t.ok(statesWithHeldBytes >= restarts, 'held calls were in the state');
  t.ok(heldTypes.has(CONTINUATION), 'held header blocks included CONTINUATION frames');
  // Longer than the keepalive timeouts: a PING answered wrongly or never would drop a connection.
  await sleep(1200);
  for (const c of clients) t.equal((await callOn(c, request(64))).gen, host.gen, 'still served');
  t.equal(host.accepts, 2, 'no client ever reconnected');
  for (const s of states) {
    t.same(s.slice(s.indexOf(grpc.connectivityState.READY)), [grpc.connectivityState.READY], 'channels stayed READY');
  }
  t.equal(host.conns.size, 2);
});

t.test('quiesce times out while a call runs; unquiesce() carries on', async (t) => {
  const host = await listeningHost(t);
  const client = clientOf(t, host);
  await callOn(client, request(64));
  const slow = callOn(client, request(64, 400));
  await waitFor('the slow call', () => host.handled === 2);
  const conn = [...host.conns][0]!;
  t.equal(conn.relay.openStreams, 1);
  const q = host.quiesce(100);
  const held = callOn(client, request(64));
  await t.rejects(q, /not quiescent after 100 ms/);
  t.throws(() => conn.relay.snapshot(), /snapshot while holding/);
  host.unquiesce();
  t.same(await Promise.all([slow, held]), [{ gen: 1, ok: true }, { gen: 1, ok: true }]);
  // And a later quiesce works.
  await host.reexec();
  t.same(await callOn(client, request(64)), { gen: 2, ok: true });
  t.equal(host.accepts, 1);
});

/**
 * A client-side stream that lets through only the first `allow` bytes the
 * HTTP/2 client writes until open(): a client that connected and has sent
 * nothing (or half its preface) yet.
 */
class Gate extends Duplex {
  private held: Buffer[] = [];
  /** Bytes the client received. */
  bytesIn = 0;
  constructor(private readonly sock: net.Socket, private allow: number) {
    super();
    sock.on('data', (d: Buffer) => { this.bytesIn += d.length; this.push(d); });
    sock.on('end', () => this.push(null));
    sock.on('close', () => this.destroy());
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.held.length === 0 && chunk.length <= this.allow) {
      this.allow -= chunk.length;
      this.sock.write(chunk, cb);
      return;
    }
    const pass = this.held.length ? 0 : this.allow;
    if (pass) this.sock.write(chunk.subarray(0, pass));
    this.allow = 0;
    this.held.push(chunk.subarray(pass));
    cb();
  }

  override _read(): void {}

  override _destroy(e: Error | null, cb: (e: Error | null) => void): void {
    this.sock.destroy();
    cb(e);
  }

  open(): void {
    this.allow = Infinity;
    for (const b of this.held.splice(0)) this.sock.write(b);
  }
}

function grpcOverHttp2(session: http2.ClientHttp2Session, req: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const s = session.request({ ':method': 'POST', ':path': METHOD, 'content-type': 'application/grpc', te: 'trailers' });
    const msg = Buffer.alloc(5 + req.length);
    msg.writeUInt32BE(req.length, 1);
    req.copy(msg, 5);
    s.end(msg);
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('trailers', (tr) => {
      if (tr['grpc-status'] !== '0') reject(new Error(`grpc-status ${String(tr['grpc-status'])}`));
    });
    s.on('error', reject);
    s.on('end', () => {
      const body = Buffer.concat(parts);
      resolve(checkResponse(req, body.subarray(5, 5 + body.readUInt32BE(1))));
    });
  });
}

for (const [name, allow] of [['nothing', 0], ['half its preface', 10]] as const) {
  t.test(`a client that has sent ${name} yet resumes`, async (t) => {
    const host = await listeningHost(t);
    const sock = net.connect(host.path);
    sock.on('error', () => {});
    await new Promise((r) => sock.once('connect', r));
    const gate = new Gate(sock, allow);
    const session = http2.connect('http://localhost', { createConnection: () => gate });
    session.on('error', () => {});
    t.teardown(() => session.destroy());
    await waitFor('the relay', () => host.conns.size === 1);
    const states: RelayState[] = [];
    for (let i = 0; i < 3; i++) {
      // Each server's SETTINGS reaches the client, which answers into the gate.
      const seen = gate.bytesIn;
      await waitFor('the server SETTINGS', () => gate.bytesIn > seen);
      states.push(...(await host.reexec()));
    }
    t.same(states.map((s) => [s.prefaceSeen, Buffer.from(s.clientPending, 'base64').length]), [[false, allow], [false, allow], [false, allow]]);
    t.equal(states[2]!.staleSettingsAcks, 3, 'three servers sent SETTINGS the client has not ACKed');
    gate.open();
    t.same(await grpcOverHttp2(session, request(100_000)), { gen: 4, ok: true });
    await host.reexec();
    t.same(await grpcOverHttp2(session, request(100_000, 0, 100_000)), { gen: 5, ok: true });
    t.equal(host.accepts, 1);
    t.equal(session.closed || session.destroyed, false);
  });
}

t.test('garbage from a client drops that connection only', async (t) => {
  const host = await listeningHost(t);
  const client = clientOf(t, host);
  await callOn(client, request(64));
  const garbage = [
    Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
    // A valid start, then a frame longer than the server's MAX_FRAME_SIZE.
    Buffer.concat([CLIENT_PREFACE, settings([]), frame(DATA, 0, 1, Buffer.alloc(0)).subarray(0, 9).fill(0xff, 0, 3)]),
    // The first frame is not SETTINGS.
    Buffer.concat([CLIENT_PREFACE, frame(PING, 0, 0, Buffer.alloc(8))]),
  ];
  for (const bytes of garbage) {
    const s = net.connect(host.path);
    s.on('error', () => {});
    s.resume();
    s.write(bytes);
    await new Promise((r) => s.once('close', r));
  }
  await waitFor('the relays of bad connections to go', () => host.conns.size === 1);
  t.same(await callOn(client, request(64)), { gen: 1, ok: true });
  await host.reexec();
  t.same(await callOn(client, request(64)), { gen: 2, ok: true });
  t.equal(host.accepts, 4, 'one good client, three bad ones, no reconnect');
});

t.test('the client or gRPC going away ends the other side', async (t) => {
  const host = await listeningHost(t);
  // The client hangs up while quiescing: quiesce() resolves, the relay closes.
  const s = net.connect(host.path);
  s.on('error', () => {});
  s.write(Buffer.concat([CLIENT_PREFACE, settings([]), frame(HEADERS, END_HEADERS, 1, Buffer.from('not even HPACK'))]));
  await waitFor('the stream to open', () => [...host.conns][0]?.relay.openStreams === 1);
  const conn = [...host.conns][0]!;
  const closed = new Promise<void>((r) => conn.relay.once('close', () => r()));
  const q = conn.relay.quiesce(5000);
  s.destroy();
  await q;
  await closed;
  t.throws(() => conn.relay.snapshot(), /client went away/);
  t.equal(host.conns.size, 0);

  // gRPC drops the connection (server shutdown): the client sees it closed.
  const client = clientOf(t, host);
  await callOn(client, request(64));
  const gone = new Promise((r) => [...host.conns][0]!.raw.once('close', r));
  host.restartServerOnly();
  await gone;
  t.equal((await callOn(client, request(64))).gen, 2, 'the client reconnected to the new server');
  t.equal(host.accepts, 3);
});

t.test('a state that is not from snapshot() is refused', async (t) => {
  const state = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'relay-state.json'), 'utf8')) as RelayState;
  const [a, b] = socketPair();
  const raw = socketOn(a);
  const inner = socketOn(b);
  t.teardown(() => { raw.destroy(); inner.destroy(); });
  t.throws(() => new H2Relay(raw, inner, { ...state, v: 2 as 1 }), /bad version/);
  t.throws(() => new H2Relay(raw, inner, { ...state, clientSendWindow: '1' as unknown as number }), /bad clientSendWindow/);
  t.throws(() => new H2Relay(raw, inner, { ...state, clientSettings: { x: 1 } }), /bad clientSettings.x/);
  t.doesNotThrow(() => new H2Relay(raw, inner, state));
});

t.test('scripted peers: what a resume rewrites, drops and holds, and the state it starts from', async (t) => {
  // Both peers are played here frame by frame, so every edit is visible.
  const [ra, rb] = socketPair();
  const [ia, ib] = socketPair();
  const raw = socketOn(ra);
  const client = socketOn(rb);
  const server = socketOn(ib);
  const relay = new H2Relay(raw, socketOn(ia));
  relay.start();
  const atClient = new FrameReader(client);
  let sent = 0;
  const send = (b: Buffer): void => { sent += b.length; client.write(b); };
  const atServer = new FrameReader(server, true);
  t.teardown(() => { for (const s of [raw, client, server]) s.destroy(); });

  // SETTINGS both ways: HEADER_TABLE_SIZE 0 appended or replaced.
  server.write(settings([[3, 100], [4, 65535]]));
  t.same(settingsOf(await atClient.next()), [[3, 100], [4, 65535], [1, 0]]);
  send(Buffer.concat([CLIENT_PREFACE, settings([[1, 4096], [2, 0], [4, MIB]])]));
  t.same(settingsOf(await atServer.next()), [[1, 0], [2, 0], [4, MIB]]);
  t.ok(atServer.preface);
  server.write(settings([], ACK));
  t.same(head(await atClient.next()), { type: SETTINGS, flags: ACK, sid: 0, len: 0 });
  send(settings([], ACK));
  t.same(head(await atServer.next()), { type: SETTINGS, flags: ACK, sid: 0, len: 0 });

  // Stream 1: a request of 30000 bytes, 10000 of connection window given back, an answer of 20000.
  send(Buffer.concat([
    frame(HEADERS, END_HEADERS, 1, Buffer.from('request headers')),
    frame(DATA, 0, 1, Buffer.alloc(16384)), frame(DATA, END_STREAM, 1, Buffer.alloc(13616)),
  ]));
  for (const len of [15, 16384, 13616]) t.equal((await atServer.next()).payload.length, len);
  t.equal(relay.openStreams, 1);
  server.write(Buffer.concat([windowUpdate(0, 10000), ping('srvping1')]));
  t.same(head(await atClient.next()), { type: WINDOW_UPDATE, flags: 0, sid: 0, len: 4 });
  t.same(head(await atClient.next()), { type: PING, flags: 0, sid: 0, len: 8 });
  // New client SETTINGS the server will not have ACKed.
  send(settings([[4, 2 * MIB]]));
  t.same(settingsOf(await atServer.next()), [[4, 2 * MIB], [1, 0]]);

  // Quiesce with stream 1 open: stream 3 comes and is held.
  const quiesced = relay.quiesce(2000);
  const held = Buffer.concat([frame(HEADERS, END_HEADERS, 3, Buffer.from('held headers')), frame(DATA, END_STREAM, 3, Buffer.alloc(100))]);
  send(held);
  await waitFor('the relay to read stream 3', () => raw.bytesRead === sent);
  t.same(await atServer.none(), [], 'stream 3 held');
  server.write(Buffer.concat([
    frame(HEADERS, END_HEADERS, 1, Buffer.from('response headers')),
    frame(DATA, 0, 1, Buffer.alloc(16384)), frame(DATA, 0, 1, Buffer.alloc(3616)),
    frame(HEADERS, END_HEADERS | END_STREAM, 1, Buffer.from('trailers')),
  ]));
  for (let i = 0; i < 4; i++) await atClient.next();
  // The relay's own PING, answered by the server and never seen by the client.
  const ours = await atServer.next();
  t.same(head(ours), { type: PING, flags: 0, sid: 0, len: 8 });
  server.write(frame(PING, ACK, 0, ours.payload));
  await quiesced;
  t.equal(relay.openStreams, 0);
  // Quiesced means not reading: what the client sends now stays in the kernel for the next image.
  const readBefore = raw.bytesRead;
  send(ping('afterqsc'));
  await sleep(50);
  t.equal(raw.bytesRead, readBefore, 'nothing read once quiesced');
  const state = JSON.parse(JSON.stringify(relay.snapshot())) as RelayState;
  expectGolden(t, 'relay-state.json', state);
  t.same(await atClient.none(), [], 'the PING ACK was not forwarded');

  // The exec: a new server on a new socketpair, the client socket re-wrapped.
  const [ia2, ib2] = socketPair();
  const server2 = socketOn(ib2);
  const atServer2 = new FrameReader(server2, true);
  const dup = dupCloexec(ra);
  relay.detach();
  raw.destroy();
  const raw2 = socketOn(dup);
  t.teardown(() => { raw2.destroy(); server2.destroy(); });
  raw2.pause();
  const relay2 = new H2Relay(raw2, socketOn(ia2), state);
  relay2.start();
  // The new server: preface, the client's settings once (one was unACKed), then what was held.
  t.same(settingsOf(await atServer2.next()), [[1, 0], [2, 0], [4, 2 * MIB]]);
  t.same(head(await atServer2.next()), { type: HEADERS, flags: END_HEADERS, sid: 3, len: 12 });
  t.same(head(await atServer2.next()), { type: DATA, flags: END_STREAM, sid: 3, len: 100 });
  t.equal((await atServer2.next()).payload.toString(), 'afterqsc', 'then what the kernel kept');
  t.equal(relay2.openStreams, 1);
  // The client thought it could send 45535 more bytes; the new server allows 65535.
  const wu = await atClient.next();
  t.same([head(wu), wu.payload.readUInt32BE()], [{ type: WINDOW_UPDATE, flags: 0, sid: 0, len: 4 }, 20000]);

  // The new server's SETTINGS reach the client; its ACK of the replay too (the client waits for one).
  server2.write(Buffer.concat([settings([[3, 100]]), settings([], ACK)]));
  t.same(settingsOf(await atClient.next()), [[3, 100], [1, 0]]);
  t.same(head(await atClient.next()), { type: SETTINGS, flags: ACK, sid: 0, len: 0 });
  // Dropped: the ACK of the old server's PING, frames of stream 1. Passed: the ACK of the new SETTINGS, a PING.
  send(Buffer.concat([
    frame(PING, ACK, 0, Buffer.from('srvping1')), windowUpdate(1, 100), frame(RST_STREAM, 0, 1, Buffer.alloc(4)),
    frame(DATA, 0, 1, Buffer.alloc(500)), settings([], ACK), ping('clping01'),
  ]));
  t.same(head(await atServer2.next()), { type: SETTINGS, flags: ACK, sid: 0, len: 0 });
  const p = await atServer2.next();
  t.same([head(p), p.payload.toString()], [{ type: PING, flags: 0, sid: 0, len: 8 }, 'clping01']);
  const refund = await atClient.next();
  t.same([head(refund), refund.payload.readUInt32BE()], [{ type: WINDOW_UPDATE, flags: 0, sid: 0, len: 4 }, 500], 'dropped DATA refunded');

  // The client can take 45535 bytes; the new server believes 65535: the third frame waits.
  server2.write(Buffer.concat([
    frame(HEADERS, END_HEADERS, 3, Buffer.from('response headers')),
    frame(DATA, 0, 3, Buffer.alloc(16384)), frame(DATA, 0, 3, Buffer.alloc(16384)), frame(DATA, 0, 3, Buffer.alloc(16384)),
    frame(HEADERS, END_HEADERS | END_STREAM, 3, Buffer.from('trailers')),
  ]));
  for (let i = 0; i < 3; i++) await atClient.next();
  t.same(await atClient.none(), [], 'held back by the client window');
  t.equal(relay2.openStreams, 1);
  send(windowUpdate(0, 20000));
  t.same(head(await atClient.next()), { type: DATA, flags: 0, sid: 3, len: 16384 });
  t.same(head(await atClient.next()), { type: HEADERS, flags: END_HEADERS | END_STREAM, sid: 3, len: 8 });
  t.same(head(await atServer2.next()), { type: WINDOW_UPDATE, flags: 0, sid: 0, len: 4 });
  t.equal(relay2.openStreams, 0);

  // A second quiesce: the client's view of its windows carries on.
  const q2 = relay2.quiesce(2000);
  const ours2 = await atServer2.next();
  server2.write(frame(PING, ACK, 0, ours2.payload));
  await q2;
  t.match(relay2.snapshot(), {
    prefaceSeen: true, clientPending: '', clientSettingsUnacked: 0, staleSettingsAcks: 0, stalePingAcks: 0,
    maxClientStreamId: 3, clientSendWindow: 65535 - 100 - 500 + 500, clientRecvWindow: 45535 - 49152 + 20000,
  });
});

function ping(payload: string): Buffer {
  return frame(PING, 0, 0, Buffer.from(payload));
}

function expectGolden(t: Test, name: string, value: unknown): void {
  const file = path.join(FIXTURES, name);
  const text = `${JSON.stringify(value, null, 2)}\n`;
  if (UPDATE_GOLDEN) fs.writeFileSync(file, text);
  t.equal(text, fs.readFileSync(file, 'utf8'), `matches ${name} (VIRTD_UPDATE_GOLDEN=1 rewrites it)`);
}
