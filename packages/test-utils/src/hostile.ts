// Hostile peers for tests: a seeded PRNG, HTTP/2 and gRPC wire builders,
// fuzz case generators that speak to a real daemon socket (UNIX, TCP or
// TLS), and probes of the daemon process (VmRSS, open fds, CPU time, the
// kernel's queue of a listening socket).
//
// Every case is generated from the PRNG alone, so a seed replays the same
// inputs (timing, and so the daemon's exact path, may differ).
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import http2 from 'node:http2';
import { execFileSync } from 'node:child_process';

// ---- PRNG ------------------------------------------------------------------

/** sfc32: small, fast, good enough to pick inputs, fully determined by its seed. */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 16; i++) this.next();
  }

  /** A uniform 32-bit unsigned integer. */
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return n <= 1 ? 0 : Math.floor((this.next() / 0x100000000) * n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** Mostly small, sometimes up to max: lengths that find both edge cases and bulk. */
  size(max: number): number {
    const r = this.int(10);
    if (r < 5) return this.int(Math.min(max, 64) + 1);
    if (r < 8) return this.int(Math.min(max, 1024) + 1);
    return this.int(max + 1);
  }

  chance(p: number): boolean {
    return this.next() / 0x100000000 < p;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }

  /** One of the entries, by weight. */
  weighted<T>(entries: readonly (readonly [number, T])[]): T {
    const total = entries.reduce((s, [w]) => s + w, 0);
    let r = this.int(total);
    for (const [w, v] of entries) {
      if (r < w) return v;
      r -= w;
    }
    return entries[entries.length - 1]![1];
  }

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) b.writeUInt32LE(this.next(), i);
    for (; i < n; i++) b[i] = this.next() & 0xff;
    return b;
  }

  /** A derived generator, e.g. one per target, so adding cases to one leaves the others' inputs alone. */
  fork(): Prng {
    return new Prng(this.next());
  }
}

/** The seed of a fuzz run: VIRTD_FUZZ_SEED (decimal or 0x…) replays one, else a fresh one. */
export function fuzzSeed(env: NodeJS.ProcessEnv = process.env): number {
  const s = env.VIRTD_FUZZ_SEED;
  if (s) {
    const n = Number(s);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`VIRTD_FUZZ_SEED must be a non-negative integer, not '${s}'`);
    return n >>> 0;
  }
  return (Math.random() * 0x100000000) >>> 0;
}

/** VIRTD_FUZZ_COUNT, or the default. */
export function fuzzCount(fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const s = env.VIRTD_FUZZ_COUNT;
  if (!s) return fallback;
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`VIRTD_FUZZ_COUNT must be a positive integer, not '${s}'`);
  return n;
}

// ---- HTTP/2 and gRPC on the wire --------------------------------------------

export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const H2 = {
  DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PUSH_PROMISE: 5, PING: 6, GOAWAY: 7,
  WINDOW_UPDATE: 8, CONTINUATION: 9,
  END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY_FLAG: 0x20,
} as const;

/** One frame; `declaredLength` may lie about the payload (truncated or oversized frames). */
export function h2Frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0), declaredLength = payload.length): Buffer {
  const h = Buffer.allocUnsafe(9);
  h.writeUIntBE(declaredLength & 0xffffff, 0, 3);
  h[3] = type & 0xff;
  h[4] = flags & 0xff;
  h.writeUInt32BE(streamId >>> 0, 5);
  return Buffer.concat([h, payload]);
}

export function settingsPayload(entries: readonly (readonly [number, number])[]): Buffer {
  const p = Buffer.allocUnsafe(6 * entries.length);
  entries.forEach(([id, v], i) => {
    p.writeUInt16BE(id & 0xffff, 6 * i);
    p.writeUInt32BE(v >>> 0, 6 * i + 2);
  });
  return p;
}

/** The preface and an empty SETTINGS: what every HTTP/2 client starts with. */
export const h2Start = (): Buffer => Buffer.concat([H2_PREFACE, h2Frame(H2.SETTINGS, 0, 0)]);

function hpackInt(value: number, prefixBits: number, firstByte: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [firstByte | value];
  const out = [firstByte | max];
  let v = value - max;
  while (v >= 128) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

function hpackString(s: Buffer): Buffer {
  return Buffer.concat([Buffer.from(hpackInt(s.length, 7, 0)), s]);
}

/**
 * An HPACK header block of literals without indexing (new names, no
 * Huffman): valid for any decoder, and it leaves no dynamic table state.
 */
export function hpackBlock(headers: readonly (readonly [string | Buffer, string | Buffer])[]): Buffer {
  const parts: Buffer[] = [];
  for (const [n, v] of headers) {
    parts.push(Buffer.from([0x00]), hpackString(Buffer.from(n)), hpackString(Buffer.from(v)));
  }
  return Buffer.concat(parts);
}

/** The request headers of a gRPC call, in HPACK. */
export function grpcRequestHeaders(path: string | Buffer, extra: readonly (readonly [string, string])[] = []): Buffer {
  return hpackBlock([
    [':method', 'POST'], [':scheme', 'http'], [':path', path], [':authority', 'localhost'],
    ['content-type', 'application/grpc'], ['te', 'trailers'], ...extra,
  ]);
}

/** A gRPC length-prefixed message; the flag and length may lie. */
export function grpcMessage(payload: Buffer, o: { compressed?: boolean; declaredLength?: number } = {}): Buffer {
  const h = Buffer.allocUnsafe(5);
  h[0] = o.compressed ? 1 : 0;
  h.writeUInt32BE((o.declaredLength ?? payload.length) >>> 0, 1);
  return Buffer.concat([h, payload]);
}

// ---- protobuf payloads -------------------------------------------------------

function varint(v: number): Buffer {
  const out: number[] = [];
  let n = v;
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** Bytes that decode as protobuf of some shape (random fields, wire types and values). */
export function randomProtobuf(r: Prng, depth = 0): Buffer {
  const parts: Buffer[] = [];
  const n = r.int(6);
  for (let i = 0; i < n; i++) {
    const field = r.chance(0.8) ? r.range(1, 8) : r.range(1, 536870911);
    const wt = r.pick([0, 0, 1, 2, 2, 2, 5]);
    parts.push(varint(field * 8 + wt));
    if (wt === 0) parts.push(varint(r.chance(0.5) ? r.int(10) : r.next() * 2));
    else if (wt === 1) parts.push(r.bytes(8));
    else if (wt === 5) parts.push(r.bytes(4));
    else {
      const body = depth < 2 && r.chance(0.3) ? randomProtobuf(r, depth + 1)
        : r.chance(0.5) ? Buffer.from(r.pick(['', '/', 'qemu:///system', 'a'.repeat(r.size(300)), '\u0000', 'é☃', '00000000-0000-0000-0000-000000000000']))
          : r.bytes(r.size(512));
      parts.push(varint(body.length), body);
    }
  }
  return Buffer.concat(parts);
}

/**
 * Bytes no protobuf decoder accepts: a reserved wire type, a length running
 * past the end, a truncated varint or tag. Safe to send to methods that
 * would change something if the payload decoded.
 */
export function undecodableProtobuf(r: Prng): Buffer {
  const prefix = r.chance(0.5) ? randomProtobuf(r) : Buffer.alloc(0);
  const tail = r.weighted<() => Buffer>([
    [3, () => Buffer.from([(r.range(1, 15) << 3) | r.pick([6, 7])])],
    [3, () => Buffer.concat([Buffer.from([(r.range(1, 15) << 3) | 2]), varint(r.range(64, 1 << 20)), r.bytes(r.int(32))])],
    [2, () => Buffer.from([(r.range(1, 15) << 3) | 0, 0xff, 0xff, 0xff])],
    [1, () => Buffer.from([0x80 | r.int(128)])],
    [1, () => Buffer.from([(r.range(1, 15) << 3) | 1, ...r.bytes(r.int(7))])],
  ])();
  return Buffer.concat([prefix, tail]);
}

// ---- talking to a socket -------------------------------------------------------

export interface FuzzTarget {
  /** For messages. */
  readonly name: string;
  /** Opens a raw connection: UNIX path, TCP, or TLS (handshake under way). */
  connect(): net.Socket;
  /** UNIX or TCP: bytes go straight to the daemon; TLS: they go inside the TLS session. */
  readonly transport: 'unix' | 'tcp' | 'tls';
  /** For TLS: a raw TCP connection to the same port (to send handshake garbage). */
  connectPlain?(): net.Socket;
  /** Method paths this socket serves, with whether a decodable payload is harmless there. */
  readonly methods: readonly { path: string; safe: boolean; stream: boolean }[];
  /** Paths of real methods this socket does not serve (another role's). */
  readonly foreignPaths: readonly string[];
  /** The socket takes 'VIRTD-FD1 <ticket>\n' fd hand-over lines (unknown tickets must get an ERR line). */
  readonly fdHandoff?: boolean;
}

export interface CaseOutcome {
  readonly kind: string;
  /** The daemon closed the connection (or reset it) before we gave up on it. */
  closedByPeer: boolean;
  /** The connection never got through (refused by the kernel: the daemon's backlog was full). */
  refused?: boolean;
  /** Bytes the daemon sent. */
  received: number;
  /** gRPC statuses seen, by code. */
  statuses: number[];
  /** Something the daemon must never do for this case (a broken invariant), if it did. */
  violation?: string;
}

/** Sockets of the current batch that a case left open on purpose (abandoned mid-handshake). */
export class Abandoned {
  private readonly socks = new Set<net.Socket | http2.ClientHttp2Session>();
  add(s: net.Socket | http2.ClientHttp2Session): void {
    this.socks.add(s);
  }
  get size(): number {
    return this.socks.size;
  }
  /** Closes them all (end of a batch). */
  closeAll(): void {
    for (const s of this.socks) s.destroy();
    this.socks.clear();
  }
}

const quiet = (s: net.Socket): net.Socket => {
  s.on('error', () => {});
  return s;
};

/**
 * Writes `chunks` (with optional pauses), then half-closes unless told not
 * to, and waits up to `waitMs` for the daemon to close; then destroys.
 */
async function exchange(sock: net.Socket, chunks: readonly (Buffer | number)[], o: { end?: boolean; waitMs: number; onData?: (d: Buffer) => void }): Promise<{ closed: boolean; received: number; refused: boolean; errored: boolean }> {
  let received = 0;
  let closed = false;
  let connected = false;
  // A write after the daemon closed fails (EPIPE), and Node then drops what
  // was received but not yet read: the caller cannot judge the answer.
  let errored = false;
  quiet(sock);
  sock.on('error', () => { errored = true; });
  const done = new Promise<void>((resolve) => {
    sock.on('data', (d: Buffer) => { received += d.length; o.onData?.(d); });
    sock.once('close', () => { closed = true; resolve(); });
  });
  await new Promise<void>((resolve) => {
    if (sock.readyState === 'open' && !(sock instanceof tls.TLSSocket)) { resolve(); return; }
    sock.once(sock instanceof tls.TLSSocket ? 'secureConnect' : 'connect', () => { connected = true; resolve(); });
    sock.once('close', () => resolve());
  });
  // The kernel refused (a full backlog while the daemon is busy): nothing reached it.
  if (!connected && sock.destroyed) return { closed, received, refused: true, errored };
  for (const c of chunks) {
    if (sock.destroyed) break;
    if (typeof c === 'number') await sleepMs(c);
    else if (c.length) sock.write(c);
  }
  if (o.end !== false && !sock.destroyed) sock.end();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([done, new Promise<void>((r) => { timer = setTimeout(r, o.waitMs); })]);
  clearTimeout(timer);
  sock.destroy();
  return { closed, received, refused: false, errored };
}

const sleepMs = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- the cases -------------------------------------------------------------------

/** What a case may use besides its inputs: the batch's abandoned sockets, an HTTP/2 session. */
interface CaseContext {
  readonly abandoned: Abandoned;
  /**
   * An HTTP/2 session: the worker's own, kept across its cases while the
   * daemon keeps it (calls on a long-lived connection, and cheaper), or a
   * fresh one. release() closes a fresh one.
   */
  session(fresh: boolean): { s: http2.ClientHttp2Session; release(): void };
}

type CaseFn = (r: Prng, t: FuzzTarget, ctx: CaseContext) => Promise<CaseOutcome>;

const outcome = (kind: string, closed: boolean, received: number, statuses: number[] = [], refused = false): CaseOutcome =>
  ({ kind, closedByPeer: closed && !refused, received, statuses, ...(refused ? { refused } : {}) });

/**
 * One to five calls side by side on one session (shared with earlier cases
 * 30 % of the time), each made by `call`, which says what its answer owed.
 */
async function sessionCalls(kind: string, r: Prng, ctx: CaseContext,
  call: (s: http2.ClientHttp2Session) => Promise<{ status?: number; violation?: string }>): Promise<CaseOutcome> {
  const { s, release } = ctx.session(r.chance(0.3));
  const n = r.range(1, 6);
  const statuses: number[] = [];
  let violation: string | undefined;
  const calls: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    calls.push(call(s).then((c) => {
      if (c.status !== undefined) statuses.push(c.status);
      violation ??= c.violation;
    }));
  }
  await Promise.all(calls);
  const closed = s.destroyed;
  release();
  return { ...outcome(kind, closed, 0, statuses), ...(violation ? { violation } : {}) };
}

/** Random bytes, sometimes after part or all of a valid preface. */
const randomBytes: CaseFn = async (r, t) => {
  const lead = r.weighted<Buffer>([
    [4, Buffer.alloc(0)],
    [2, H2_PREFACE.subarray(0, r.int(H2_PREFACE.length))],
    [2, H2_PREFACE],
    [1, Buffer.from('VIRT')],
    [1, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
  ]);
  const body = r.bytes(r.size(8192));
  const split = r.int(body.length + 1);
  const x = await exchange(t.connect(), [lead, body.subarray(0, split), body.subarray(split)], { end: r.chance(0.8), waitMs: 200 });
  return outcome('random-bytes', x.closed, x.received, [], x.refused);
};

/** One frame a fuzzer might send after a good preface: garbage, truncated, oversized, or a protocol error. */
function badFrame(r: Prng): Buffer {
  const sid = r.pick([0, 1, 3, 2, 0x7fffffff, r.next() >>> 0, r.range(1, 99) | 1]);
  return r.weighted<() => Buffer>([
    [4, () => h2Frame(r.int(256), r.int(256), sid, r.bytes(r.size(2048)))],
    [2, () => { const p = r.bytes(r.size(4096)); return h2Frame(r.int(10), r.int(256), sid, p.subarray(0, r.int(p.length + 1)), p.length + r.range(1, 100)); }],
    [2, () => h2Frame(r.int(10), r.int(256), sid, r.bytes(r.size(1024)), r.range(16385, 0xffffff))],
    [2, () => h2Frame(H2.SETTINGS, r.pick([0, H2.ACK]), r.pick([0, 0, 1]), r.chance(0.5)
      ? settingsPayload(Array.from({ length: r.range(1, 8) }, () => [r.range(0, 10), r.pick([0, 1, 2, 0x7fffffff, 0x80000000, 0xffffffff, 16383, 16777216, r.next()])] as const))
      : r.bytes(r.range(1, 17)))],
    [1, () => h2Frame(H2.WINDOW_UPDATE, 0, r.pick([0, 1, 3]), Buffer.from([r.int(256), r.int(256), r.int(256), r.int(256)]).subarray(0, r.pick([4, 4, 3, 5])))],
    [1, () => h2Frame(H2.PING, r.pick([0, H2.ACK]), r.pick([0, 0, 1]), r.bytes(r.pick([8, 8, 0, 7, 9, 64])))],
    [1, () => { const p = Buffer.alloc(5); p.writeUInt32BE(sid, 0); p[4] = r.int(256); return h2Frame(H2.PRIORITY, 0, sid, p.subarray(0, r.pick([5, 5, 4, 6]))); }],
    [1, () => h2Frame(H2.RST_STREAM, 0, sid, r.bytes(r.pick([4, 4, 0, 8])))],
    [1, () => h2Frame(H2.GOAWAY, 0, r.pick([0, 0, 1]), r.bytes(r.pick([8, 12, 0, 3, 200])))],
    [1, () => h2Frame(H2.CONTINUATION, r.pick([0, H2.END_HEADERS]), sid, r.bytes(r.size(512)))],
    [1, () => h2Frame(H2.PUSH_PROMISE, H2.END_HEADERS, sid, r.bytes(r.size(64)))],
    [1, () => h2Frame(H2.DATA, r.pick([0, H2.END_STREAM, H2.PADDED]), r.pick([0, 1, 3, 5]), r.bytes(r.size(2048)))],
    [2, () => h2Frame(H2.HEADERS, r.int(256), r.pick([1, 3, 2, 0]), r.chance(0.5) ? r.bytes(r.size(512)) : grpcRequestHeaders(r.bytes(r.size(64))))],
    [1, () => h2Frame(H2.HEADERS, H2.END_HEADERS | r.pick([0, H2.PADDED, H2.PRIORITY_FLAG]), 1, Buffer.concat([Buffer.from([r.int(256)]), r.bytes(r.int(8)), grpcRequestHeaders('/grpc.health.v1.Health/Check')]))],
  ])();
}

/** A good preface and SETTINGS, then garbage, truncated, oversized or protocol-breaking frames. */
const badFrames: CaseFn = async (r, t) => {
  const frames: (Buffer | number)[] = [r.chance(0.9) ? h2Start() : Buffer.concat([H2_PREFACE, badFrame(r)])];
  const n = r.range(1, 12);
  for (let i = 0; i < n; i++) {
    frames.push(badFrame(r));
    if (r.chance(0.1)) frames.push(r.range(1, 20));
  }
  const x = await exchange(t.connect(), frames, { end: r.chance(0.7), waitMs: 250 });
  return outcome('bad-frames', x.closed, x.received, [], x.refused);
};

/** A gRPC call over a real HTTP/2 client (HPACK and flow control done right), the payload malformed. */
function http2Session(t: FuzzTarget): http2.ClientHttp2Session {
  const authority = t.transport === 'tls' ? 'https://localhost' : 'http://localhost';
  return http2.connect(authority, {
    createConnection: () => t.connect(),
    maxSendHeaderBlockLength: 4 * 1024 * 1024,
    // Our own limits: the daemon's replies are never the point here.
    maxSessionMemory: 64,
  });
}

interface CallResult { status: number | undefined; reset: boolean; sessionGone: boolean; headers: boolean }

/** One request on a session; resolves when it ended one way or another, or after ms. */
function request(s: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body: Buffer | undefined, ms: number, end = true): Promise<CallResult> {
  return new Promise((resolve) => {
    const res: CallResult = { status: undefined, reset: false, sessionGone: false, headers: false };
    let req: http2.ClientHttp2Stream;
    try {
      req = s.request(headers, { endStream: body === undefined && end });
    } catch {
      res.sessionGone = true;
      resolve(res);
      return;
    }
    const timer = setTimeout(() => { req.close(http2.constants.NGHTTP2_CANCEL); resolve(res); }, ms);
    const finish = (): void => { clearTimeout(timer); resolve(res); };
    const grab = (h: http2.IncomingHttpHeaders): void => {
      res.headers = true;
      if (h['grpc-status'] !== undefined) res.status = Number(h['grpc-status']);
    };
    req.on('response', grab);
    req.on('trailers', grab);
    req.on('data', () => {});
    req.on('error', () => { res.reset = true; });
    req.on('close', () => {
      if (req.rstCode && req.rstCode !== http2.constants.NGHTTP2_NO_ERROR) res.reset = true;
      if (s.destroyed || s.closed) res.sessionGone = true;
      finish();
    });
    if (body !== undefined) {
      req.write(body);
      if (end) req.end();
    }
  });
}

function grpcHeaders(path: string, extra: http2.OutgoingHttpHeaders = {}): http2.OutgoingHttpHeaders {
  return { ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...extra };
}

/** The framing of one request body: honest, lying about its length or compression, several messages, none. */
function requestBody(r: Prng, payload: Buffer): Buffer | undefined {
  return r.weighted<() => Buffer | undefined>([
    [8, () => grpcMessage(payload)],
    [1, () => grpcMessage(payload, { declaredLength: payload.length + r.range(1, 5000) })],
    [1, () => grpcMessage(payload, { declaredLength: r.int(Math.max(1, payload.length)) })],
    [1, () => grpcMessage(payload, { declaredLength: r.pick([0xffffffff, 33 * 1024 * 1024, 0x7fffffff]) })],
    [1, () => grpcMessage(payload, { compressed: true })],
    [1, () => Buffer.concat([grpcMessage(payload), grpcMessage(payload)])],
    [1, () => undefined],
    [1, () => grpcMessage(payload).subarray(0, r.int(5))],
  ])();
}

/** Malformed protobuf (and framing) in otherwise valid calls, several per connection. */
const malformedCalls: CaseFn = (r, t, ctx) => sessionCalls('malformed-calls', r, ctx, async (s) => {
  const m = r.pick(t.methods);
  const payload = m.safe && r.chance(0.6) ? randomProtobuf(r) : undecodableProtobuf(r);
  const body = requestBody(r, payload);
  const extra: http2.OutgoingHttpHeaders = r.chance(0.2) ? { 'grpc-encoding': r.pick(['gzip', 'deflate', 'br', 'identity', 'x-none']) } : {};
  const c = await request(s, grpcHeaders(m.path, extra), body, m.stream ? 300 : 10_000);
  // A unary call answered, reset, or lost with its connection: never left hanging.
  const hanging = !m.stream && c.status === undefined && !c.reset && !c.sessionGone;
  return { status: c.status, ...(hanging ? { violation: `no answer to ${m.path}` } : {}) };
});

/** Unknown and wrong method paths, and requests that break gRPC's rules but not HTTP/2's. */
const wrongPaths: CaseFn = (r, t, ctx) => sessionCalls('wrong-paths', r, ctx, async (s) => {
  const kind = r.int(8);
  let path: string;
  let expectUnimplemented = false;
  let stream = false;
  let headers: http2.OutgoingHttpHeaders;
  if (kind === 0) { path = `/${r.bytes(r.size(80)).toString('base64url')}`; expectUnimplemented = true; }
  else if (kind === 1) { path = `/${r.pick(t.methods).path.split('/')[1]}/NoSuchMethod${r.int(1000)}`; expectUnimplemented = true; }
  else if (kind === 2 && t.foreignPaths.length) { path = r.pick(t.foreignPaths); expectUnimplemented = true; }
  else if (kind === 3) { path = `/${'x'.repeat(r.range(1000, 20000))}/Y`; }
  else if (kind === 4) { path = r.pick(['/', '*', '//', '/a/b/c', '/grpc.health.v1.Health/', 'no-slash', '/%00/%ff']); }
  else {
    const m = r.pick(t.methods);
    path = m.path;
    stream = m.stream;
  }
  if (kind >= 5) {
    // Right path, wrong request: method, content type, te.
    headers = r.weighted<http2.OutgoingHttpHeaders>([
      [1, { ':method': 'GET', ':path': path }],
      [1, { ':method': 'POST', ':path': path, 'content-type': 'text/html' }],
      [1, { ':method': 'POST', ':path': path }],
      [1, { ':method': 'PUT', ':path': path, 'content-type': 'application/grpc', te: 'trailers' }],
      [1, grpcHeaders(path, { 'grpc-timeout': r.pick(['abc', '99999999999H', '0n', '-1S', '1m', '']) })],
      [1, grpcHeaders(path, { 'x-meta-bin': r.pick(['!!!notbase64', '', '====', r.bytes(30).toString('latin1').replace(/[^\x20-\x7e]/g, '.')]) })],
      [1, grpcHeaders(path, { 'content-type': 'application/grpc+json' })],
    ]);
  } else headers = grpcHeaders(path);
  const c = await request(s, headers, grpcMessage(Buffer.alloc(0)), stream ? 300 : 10_000);
  const violation = !expectUnimplemented ? undefined
    : c.status !== undefined ? (c.status !== 12 ? `${path} answered status ${c.status}, not UNIMPLEMENTED` : undefined)
      : !c.reset && !c.sessionGone ? `no answer for unknown path ${path}` : undefined;
  return { status: c.status, ...(violation ? { violation } : {}) };
});

/** Huge metadata: many headers, one enormous one, or an endless header block (CONTINUATION flood). */
const hugeMetadata: CaseFn = async (r, t, ctx) => {
  const kind = r.int(3);
  if (kind < 2) {
    // Fresh: the daemon may well end a session over this.
    const { s, release } = ctx.session(true);
    const extra: http2.OutgoingHttpHeaders = {};
    if (kind === 0) {
      const n = r.range(100, 1000);
      for (let i = 0; i < n; i++) extra[`x-h${i}`] = r.bytes(r.range(1, 40)).toString('hex');
    } else {
      extra['x-huge'] = 'v'.repeat(r.range(16 * 1024, 512 * 1024));
    }
    const m = r.pick(t.methods);
    const c = await request(s, grpcHeaders(m.path, extra), grpcMessage(Buffer.alloc(0)), m.stream ? 500 : 10_000);
    const closed = s.destroyed;
    release();
    return outcome('huge-metadata', closed, 0, c.status === undefined ? [] : [c.status]);
  }
  // Raw: a HEADERS without END_HEADERS and CONTINUATIONs that never end it.
  const frames: Buffer[] = [h2Start(), h2Frame(H2.HEADERS, 0, 1, grpcRequestHeaders('/grpc.health.v1.Health/Check'))];
  const n = r.range(10, 400);
  for (let i = 0; i < n; i++) frames.push(h2Frame(H2.CONTINUATION, 0, 1, hpackBlock([[`x-c${i}`, 'y'.repeat(r.range(1, 4000))]])));
  const x = await exchange(t.connect(), frames, { end: r.chance(0.5), waitMs: 300 });
  return outcome('continuation-flood', x.closed, x.received, [], x.refused);
};

/** Streams opened and reset at once, in a loop (the "rapid reset" pattern), on one connection. */
const rapidReset: CaseFn = async (r, t) => {
  const n = r.range(20, 300);
  const block = grpcRequestHeaders(r.pick(t.methods.filter((m) => m.safe)).path);
  const out: Buffer[] = [h2Start(), h2Frame(H2.SETTINGS, H2.ACK, 0)];
  for (let i = 0; i < n; i++) {
    const sid = 2 * i + 1;
    out.push(h2Frame(H2.HEADERS, H2.END_HEADERS | (r.chance(0.5) ? H2.END_STREAM : 0), sid, block));
    if (r.chance(0.3)) out.push(h2Frame(H2.DATA, 0, sid, grpcMessage(Buffer.alloc(0))));
    const rst = Buffer.alloc(4);
    rst.writeUInt32BE(r.pick([8, 8, 0, 2, 7]), 0);
    out.push(h2Frame(H2.RST_STREAM, 0, sid, rst));
  }
  // Written in a few large chunks, as an attacker would.
  const all = Buffer.concat(out);
  const chunks: Buffer[] = [];
  for (let o = 0; o < all.length; o += 65536) chunks.push(all.subarray(o, o + 65536));
  const x = await exchange(t.connect(), chunks, { end: r.chance(0.5), waitMs: 300 });
  return outcome('rapid-reset', x.closed, x.received, [], x.refused);
};

/** Connections opened and abandoned mid-handshake: at once, after part of the preface, mid-TLS; some left open till the batch ends. */
const abandon: CaseFn = async (r, t, { abandoned }) => {
  const leaveOpen = r.chance(0.3);
  const finish = (s: net.Socket): void => {
    if (leaveOpen) abandoned.add(s);
    else s.destroy();
  };
  if (t.transport === 'tls' && t.connectPlain && r.chance(0.6)) {
    // Part of a real ClientHello, or garbage shaped like a TLS record.
    const raw = quiet(t.connectPlain());
    await new Promise<void>((resolve) => { raw.once('connect', resolve); raw.once('close', resolve); });
    const hello = r.chance(0.5) ? await clientHello() : Buffer.concat([Buffer.from([0x16, 0x03, r.int(5)]), r.bytes(r.size(600))]);
    raw.write(hello.subarray(0, r.int(hello.length + 1)));
    await sleepMs(r.int(30));
    finish(raw);
    return outcome('abandon-tls', raw.destroyed, 0);
  }
  const s = quiet(t.connect());
  const stage = r.int(4);
  if (stage === 0) {
    s.destroy();
    return outcome('abandon-connect', false, 0);
  }
  await new Promise<void>((resolve) => {
    s.once(s instanceof tls.TLSSocket ? 'secureConnect' : 'connect', () => resolve());
    s.once('close', () => resolve());
    if (t.transport === 'tls' && stage === 1) setTimeout(resolve, r.int(5));
  });
  if (stage >= 2 && !s.destroyed) s.write(h2Start().subarray(0, r.int(H2_PREFACE.length + 9 + 1)));
  if (stage === 3 && !s.destroyed) s.write(h2Frame(H2.HEADERS, 0, 1, grpcRequestHeaders('/grpc.health.v1.Health/Check').subarray(0, r.range(1, 30))));
  finish(s);
  return outcome('abandon', false, 0);
};

let helloCache: Buffer | undefined;
/** A real TLS 1.3 ClientHello, captured once from Node's client. */
async function clientHello(): Promise<Buffer> {
  if (helloCache) return helloCache;
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  const got = new Promise<Buffer>((resolve) => srv.once('connection', (c) => c.once('data', (d: Buffer) => { resolve(d); c.destroy(); })));
  const c = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: ['h2'], servername: 'localhost' });
  c.on('error', () => {});
  helloCache = await got;
  c.destroy();
  srv.close();
  return helloCache;
}

/** The fd hand-over line, garbled every way: unknown tickets, bad ones, endless lines, binary, early close. */
const fdHandoff: CaseFn = async (r, t) => {
  const magic = 'VIRTD-FD1 ';
  const kind = r.int(8);
  let wire: Buffer;
  let expectErr = false;
  let expectClose = false;
  if (kind === 0) { wire = Buffer.from(`${magic}${r.bytes(16).toString('hex')}\n`); expectErr = true; }
  else if (kind === 1) {
    // A line within FD_HANDOFF_MAX_LINE whatever its content: refused with a reason.
    const ticket = Array.from({ length: r.int(100) }, () => String.fromCharCode(r.range(0x20, 0x7e))).join('');
    wire = Buffer.from(`${magic}${ticket}\n`);
    expectErr = true;
  }
  else if (kind === 2) wire = Buffer.from(`${magic}${'f'.repeat(r.range(120, 5000))}`);
  else if (kind === 3) wire = Buffer.from(magic.slice(0, r.range(4, magic.length)));
  else if (kind === 4) wire = Buffer.concat([Buffer.from(magic), r.bytes(r.size(400))]);
  else if (kind === 5) {
    // More after the line: answered and closed, but closing with unread
    // bytes resets the connection, which may cost the peer the answer.
    wire = Buffer.from(`${magic}${r.bytes(16).toString('hex')}\n${magic}${r.bytes(16).toString('hex')}\n${r.bytes(r.size(100)).toString('hex')}`);
    expectClose = true;
  }
  else if (kind === 6) { wire = Buffer.from(`${magic}\n`); expectErr = true; }
  else wire = Buffer.concat([Buffer.from(magic.slice(0, 4)), r.bytes(r.size(200))]);
  let text = '';
  const split = r.int(wire.length + 1);
  const pause = r.chance(0.2) ? [r.int(20)] : [];
  const end = r.chance(0.5);
  const x = await exchange(t.connect(), [wire.subarray(0, split), ...pause, wire.subarray(split)],
    // An answer owed may take a while on a busy machine; the rest need not wait.
    { end, waitMs: (expectErr || expectClose) && t.fdHandoff ? 10_000 : 500, onData: (d) => { text += d.toString('latin1'); } });
  const sent = `${JSON.stringify(wire.toString('latin1').slice(0, 60))} (${wire.length} bytes, split at ${split}${pause.length ? `, ${pause[0]} ms pause` : ''}${end ? ', then EOF' : ''})`;
  // A socket without hand-over just has to drop the connection (garbage to HTTP/2).
  if (!t.fdHandoff || x.refused) expectErr = expectClose = false;
  if (x.errored && !text) expectErr = false;
  const violation = (expectErr || expectClose) && !x.closed ? `hand-over line ${sent} left unanswered`
    : expectErr && !/^ERR [^\n]*\n$/.test(text) ? `hand-over line ${sent} got ${JSON.stringify(text.slice(0, 80))}, not ERR` : undefined;
  return { ...outcome('fd-handoff', x.closed, x.received, [], x.refused), ...(violation ? { violation } : {}) };
};

export const FUZZ_CASES = {
  'random-bytes': randomBytes,
  'bad-frames': badFrames,
  'malformed-calls': malformedCalls,
  'wrong-paths': wrongPaths,
  'huge-metadata': hugeMetadata,
  'rapid-reset': rapidReset,
  abandon,
  'fd-handoff': fdHandoff,
} as const;
export type FuzzCaseKind = keyof typeof FUZZ_CASES;

/** How often each case comes up, relative to the others. */
export const DEFAULT_CASE_WEIGHTS: Readonly<Record<FuzzCaseKind, number>> = {
  'random-bytes': 16, 'bad-frames': 20, 'malformed-calls': 20, 'wrong-paths': 10, 'huge-metadata': 4,
  'rapid-reset': 4, abandon: 16, 'fd-handoff': 10,
};

export interface BatchReport {
  cases: number;
  byKind: Record<string, number>;
  /** Cases whose connection the daemon closed before we gave up on it. */
  closedByPeer: number;
  /** Cases whose connection the kernel refused (backlog full). */
  refused: number;
  /** gRPC statuses seen, by code. */
  statuses: Record<number, number>;
  violations: string[];
}

/**
 * Runs `count` generated cases against a target, `concurrency` at a time,
 * then closes whatever was left open on purpose.
 */
export async function runFuzzBatch(r: Prng, t: FuzzTarget, count: number, o: { concurrency: number; weights?: Partial<Record<FuzzCaseKind, number>> }): Promise<BatchReport> {
  const weights = { ...DEFAULT_CASE_WEIGHTS, ...(o.weights ?? {}) };
  const kinds = (Object.keys(FUZZ_CASES) as FuzzCaseKind[])
    .filter((k) => weights[k] > 0)
    .map((k) => [weights[k], k] as const);
  if (!kinds.length) throw new Error('no fuzz case has a weight');
  // Every case draws from its own generator, forked in order: the inputs do
  // not depend on how the cases interleave.
  const plan = Array.from({ length: count }, () => ({ kind: r.weighted(kinds), r: r.fork() }));
  const abandoned = new Abandoned();
  const report: BatchReport = { cases: count, byKind: {}, closedByPeer: 0, refused: 0, statuses: {}, violations: [] };
  let next = 0;
  const sessions: http2.ClientHttp2Session[] = [];
  const open = (): http2.ClientHttp2Session => {
    const s = http2Session(t);
    s.on('error', () => {});
    sessions.push(s);
    return s;
  };
  const worker = async (): Promise<void> => {
    let own: http2.ClientHttp2Session | undefined;
    const ctx: CaseContext = {
      abandoned,
      session: (fresh) => {
        if (fresh) {
          const s = open();
          return { s, release: () => s.destroy() };
        }
        if (!own || own.closed || own.destroyed) own = open();
        return { s: own, release: () => {} };
      },
    };
    while (next < plan.length) {
      const { kind, r: cr } = plan[next++]!;
      const res = await FUZZ_CASES[kind](cr, t, ctx).catch((e: Error): CaseOutcome =>
        ({ ...outcome(kind, true, 0), violation: `the fuzzer itself failed: ${e.stack ?? e.message}` }));
      report.byKind[kind] = (report.byKind[kind] ?? 0) + 1;
      if (res.closedByPeer) report.closedByPeer++;
      if (res.refused) report.refused++;
      for (const s of res.statuses) report.statuses[s] = (report.statuses[s] ?? 0) + 1;
      if (res.violation) report.violations.push(`${t.name} ${kind}: ${res.violation}`);
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  abandoned.closeAll();
  for (const s of sessions) s.destroy();
  return report;
}

// ---- the daemon process ------------------------------------------------------

/** Resident memory of a process, in KiB (VmRSS). */
export function vmRssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'latin1'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/** Open descriptors of a process. */
export function openFds(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** User plus system CPU time of a process, in clock ticks (USER_HZ, 100 a second on Linux). */
export function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

/** Whether a process exists (and is not a zombie). */
export function processAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/**
 * The kernel's accept queue of a process's listening UNIX socket (ss's
 * Recv-Q for a listener): connections waiting for accept().
 */
export function unixAcceptQueue(pid: number, socketPath: string): number | undefined {
  const out = execFileSync('ss', ['-xlpn'], { encoding: 'utf8' });
  for (const line of out.split('\n')) {
    if (!line.includes(`pid=${pid},`)) continue;
    const f = line.trim().split(/\s+/);
    // Netid State Recv-Q Send-Q Local-Address Port Peer ... users:(...)
    if (f[4] === socketPath) return Number(f[2]);
  }
  return undefined;
}

// ---- a raw HTTP/2 client that can stop reading ------------------------------

/**
 * Just enough of an HTTP/2 client to make calls and then misbehave: it
 * ACKs SETTINGS and PINGs while it reads, tells when a stream ended (by
 * frame headers alone, no HPACK), and can stop reading for good, leaving
 * the daemon's replies in the socket.
 */
export class RawH2Client {
  readonly sock: net.Socket;
  private buf: Buffer = Buffer.alloc(0);
  private nextStream = 1;
  private readonly ended = new Set<number>();
  private readonly waiters = new Map<number, () => void>();
  /** Bytes received (while reading). */
  received = 0;
  closed = false;

  /**
   * windowBytes: the flow-control window granted to the daemon, per stream
   * and for the connection (up to 2^31-1: "send me everything").
   */
  constructor(sock: net.Socket, o: { windowBytes?: number } = {}) {
    this.sock = sock;
    sock.on('error', () => {});
    sock.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.values()) w();
    });
    sock.on('data', (d: Buffer) => this.onData(d));
    const win = o.windowBytes ?? 65535;
    const settings = win !== 65535 ? settingsPayload([[4, win]]) : Buffer.alloc(0);
    const out = [H2_PREFACE, h2Frame(H2.SETTINGS, 0, 0, settings)];
    if (win > 65535) {
      const inc = Buffer.alloc(4);
      inc.writeUInt32BE(win - 65535, 0);
      out.push(h2Frame(H2.WINDOW_UPDATE, 0, 0, inc));
    }
    sock.write(Buffer.concat(out));
  }

  /** Starts a gRPC call (headers and one message); resolves to its stream id. */
  call(path: string, payload: Buffer): number {
    const sid = this.nextStream;
    this.nextStream += 2;
    this.sock.write(Buffer.concat([
      h2Frame(H2.HEADERS, H2.END_HEADERS, sid, grpcRequestHeaders(path)),
      h2Frame(H2.DATA, H2.END_STREAM, sid, grpcMessage(payload)),
    ]));
    return sid;
  }

  /** Resolves once the daemon ended the stream (or the connection closed). */
  streamEnded(sid: number): Promise<void> {
    if (this.ended.has(sid) || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.waiters.set(sid, resolve));
  }

  /** Stops reading: from now on the daemon's replies pile up in the socket. */
  stopReading(): void {
    this.sock.removeAllListeners('data');
    this.sock.pause();
  }

  destroy(): void {
    this.sock.destroy();
  }

  private onData(d: Buffer): void {
    this.received += d.length;
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + len) break;
      const type = this.buf[3]!;
      const flags = this.buf[4]!;
      const sid = this.buf.readUInt32BE(5) & 0x7fffffff;
      const payload = this.buf.subarray(9, 9 + len);
      this.buf = this.buf.subarray(9 + len);
      if (type === H2.SETTINGS && !(flags & H2.ACK)) this.sock.write(h2Frame(H2.SETTINGS, H2.ACK, 0));
      else if (type === H2.PING && !(flags & H2.ACK)) this.sock.write(h2Frame(H2.PING, H2.ACK, 0, Buffer.from(payload)));
      else if ((type === H2.HEADERS || type === H2.DATA || type === H2.RST_STREAM) && sid
        && (type === H2.RST_STREAM || flags & H2.END_STREAM)) {
        this.ended.add(sid);
        this.waiters.get(sid)?.();
        this.waiters.delete(sid);
      }
    }
  }
}
