// An HTTP/2 relay that lets a client connection outlive the gRPC session
// serving it (virtlogd and virtlockd re-exec in place and keep their
// clients). The client's socket survives execve; nghttp2's session state
// does not. So gRPC never sees the client socket: it serves one end of a
// socketpair, and this relay forwards frame by frame between the client and
// the other end, editing just enough that a fresh server session can take
// over the same connection at a quiescent point:
//
// - HPACK is made stateless: every SETTINGS, either way, says
//   HEADER_TABLE_SIZE 0, so neither encoder keeps a dynamic table that a new
//   decoder would lack.
// - The client's settings, the SETTINGS and PINGs still awaiting an ACK, the
//   highest stream id and the connection flow-control windows are counted,
//   so after a resume the new session is told the client's settings again,
//   ACKs meant for the old session are dropped, frames of old streams are
//   dropped and windows are evened out with WINDOW_UPDATEs.
// - quiesce() lets calls in flight finish and holds the frames of new
//   streams (only those: the calls in flight may need the client's window
//   updates and PINGs that come after), flushes both directions (a PING
//   round trip with the server, a drained write buffer to the client) and
//   stops reading; snapshot() then writes it all as JSON.
//
// Node's http2 treats an unsolicited PING or SETTINGS ACK as a connection
// error, which is why the counting has to be exact (test/resumable.test.ts).
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import type net from 'node:net';

/** The 24 bytes a client sends before its first SETTINGS (RFC 9113 §3.4). */
export const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

const HEADER_BYTES = 9;
/** Initial connection window of both sides, whatever the settings say. */
const DEFAULT_WINDOW = 65535;
const DEFAULT_MAX_FRAME_SIZE = 16384;
/** Stop reading a side whose unforwarded bytes pass this (held by quiesce or flow control). */
const READ_AHEAD_BYTES = 1024 * 1024;

const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PING = 0x6;
const WINDOW_UPDATE = 0x8;
const CONTINUATION = 0x9;

const FLAG_ACK = 0x1;
const FLAG_END_STREAM = 0x1;
const FLAG_END_HEADERS = 0x4;

const SETTINGS_HEADER_TABLE_SIZE = 1;
const SETTINGS_MAX_FRAME_SIZE = 5;

/** What a relay writes into the re-exec state file; plain JSON. */
export interface RelayState {
  /** Format of this object; a restore refuses any other. */
  v: 1;
  /** Set once the client's preface and first SETTINGS went to the server; until then a resume just waits for them. */
  prefaceSeen: boolean;
  /** Client bytes read but not forwarded (held frames, a partial frame, part of the preface), base64; replayed first. */
  clientPending: string;
  /** Bytes of the old server not forwarded when it was frozen, base64; kept for the record, never replayed. */
  serverUnsent: string;
  /** Every setting the client sent, merged by id (HEADER_TABLE_SIZE as the client sent it); replayed to the new server. */
  clientSettings: Record<string, number>;
  /** Client SETTINGS the server had not ACKed; the new server's ACKs for as many replays reach the client. */
  clientSettingsUnacked: number;
  /** SETTINGS ACKs the client still owes a previous server; dropped when they come. */
  staleSettingsAcks: number;
  /** PING ACKs the client still owes a previous server; dropped when they come. */
  stalePingAcks: number;
  /** Highest stream id the client opened so far; frames on streams up to it are dropped after a resume. */
  maxClientStreamId: number;
  /** The client's connection send window as the client sees it (RFC 9113 §6.9). */
  clientSendWindow: number;
  /** The client's connection receive window as the client sees it. */
  clientRecvWindow: number;
  /** The client ACKed a SETTINGS with HEADER_TABLE_SIZE 0: its HPACK encoder keeps no dynamic table. */
  clientTableZero: boolean;
  /** Largest MAX_FRAME_SIZE a server announced; a longer client frame is garbage. */
  serverMaxFrameSize: number;
}

type Phase =
  /** Forwarding both ways. */
  | 'running'
  /** quiesce(): new streams held, waiting for open ones to end. */
  | 'holding'
  /** Client reads stopped; forwarding what Node had already read. */
  | 'draining'
  /** Client side frozen; waiting for the ACK of our PING to the server. */
  | 'pinging'
  /** Both sides frozen; waiting for the client's write buffer to empty. */
  | 'flushing'
  /** Nothing moves; snapshot() may be called. */
  | 'quiesced';

/** What becomes of a frame: passed on, rewritten, dropped, set aside (held stream) or waited on. */
type Verdict = 'forward' | 'drop' | 'hold' | 'block' | Buffer;

/** Bytes received and not yet handled, kept as the chunks they came in. */
class ByteQueue {
  private chunks: Buffer[] = [];
  /** Offset of the first unread byte in chunks[0]. */
  private head = 0;
  length = 0;

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.length += b.length;
  }

  /** Puts all of `q` in front of what this queue holds, emptying `q`. */
  prepend(q: ByteQueue): void {
    if (q.length === 0) return;
    if (q.head) q.chunks[0] = q.chunks[0]!.subarray(q.head);
    if (this.head) this.chunks[0] = this.chunks[0]!.subarray(this.head);
    this.chunks = [...q.chunks, ...this.chunks];
    this.head = 0;
    this.length += q.length;
    q.chunks = [];
    q.head = 0;
    q.length = 0;
  }

  /** The first n bytes (n ≤ length), copied only when they span chunks. */
  peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length - this.head >= n) return first.subarray(this.head, this.head + n);
    const out = Buffer.allocUnsafe(n);
    let o = 0;
    let off = this.head;
    for (let i = 0; o < n; i++) {
      const c = this.chunks[i]!;
      const k = Math.min(c.length - off, n - o);
      c.copy(out, o, off, off + k);
      o += k;
      off = 0;
    }
    return out;
  }

  skip(n: number): void {
    this.length -= n;
    while (n > 0) {
      const avail = this.chunks[0]!.length - this.head;
      if (avail > n) {
        this.head += n;
        return;
      }
      n -= avail;
      this.chunks.shift();
      this.head = 0;
    }
  }

  /** Everything, as one buffer. */
  all(): Buffer {
    return this.length === 0 ? Buffer.alloc(0) : this.peek(this.length);
  }
}

const frameHeader = (len: number, type: number, flags: number, sid: number): Buffer => {
  const h = Buffer.allocUnsafe(HEADER_BYTES);
  h.writeUIntBE(len, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(sid, 5);
  return h;
};

const windowUpdate = (increment: number): Buffer => {
  const f = Buffer.allocUnsafe(HEADER_BYTES + 4);
  frameHeader(4, WINDOW_UPDATE, 0, 0).copy(f);
  f.writeUInt32BE(increment, HEADER_BYTES);
  return f;
};

/** One SETTINGS frame carrying `settings` (ids ascending), HEADER_TABLE_SIZE forced to 0. */
function settingsFrame(settings: ReadonlyMap<number, number>): Buffer {
  const entries = new Map(settings);
  entries.set(SETTINGS_HEADER_TABLE_SIZE, 0);
  const ids = [...entries.keys()].sort((a, b) => a - b);
  const f = Buffer.allocUnsafe(HEADER_BYTES + 6 * ids.length);
  frameHeader(6 * ids.length, SETTINGS, 0, 0).copy(f);
  ids.forEach((id, i) => {
    f.writeUInt16BE(id, HEADER_BYTES + 6 * i);
    f.writeUInt32BE(entries.get(id)!, HEADER_BYTES + 6 * i + 2);
  });
  return f;
}

/**
 * A non-ACK SETTINGS frame with HEADER_TABLE_SIZE 0: the value replaced
 * where present, else an entry appended. Returns the frame itself if it
 * already says 0.
 */
function zeroHeaderTable(frame: Buffer): Buffer {
  let present = false;
  let zero = true;
  for (let p = HEADER_BYTES; p + 6 <= frame.length; p += 6) {
    if (frame.readUInt16BE(p) !== SETTINGS_HEADER_TABLE_SIZE) continue;
    present = true;
    if (frame.readUInt32BE(p + 2) !== 0) zero = false;
  }
  if (present && zero) return frame;
  if (present) {
    const out = Buffer.from(frame);
    for (let p = HEADER_BYTES; p + 6 <= out.length; p += 6) {
      if (out.readUInt16BE(p) === SETTINGS_HEADER_TABLE_SIZE) out.writeUInt32BE(0, p + 2);
    }
    return out;
  }
  const out = Buffer.alloc(frame.length + 6);
  frame.copy(out);
  out.writeUIntBE(frame.length - HEADER_BYTES + 6, 0, 3);
  out.writeUInt16BE(SETTINGS_HEADER_TABLE_SIZE, frame.length);
  return out;
}

// ---- stopping a socket's reads for real ----------------------------------
//
// pause() only stops 'data' events: libuv reads on until highWaterMark, and
// Readable's read-ahead restarts it after every chunk. Bytes read then would
// exist only in this process and be lost at execve, so a quiesced relay
// stops the handle itself and keeps Readable from restarting it.

interface ReadHandle { reading?: boolean; readStop?: () => number }
interface SocketInternals { _handle?: ReadHandle | null; _read: (n: number) => void }
const noRead = (): void => {};

function haltReads(sock: net.Socket): void {
  sock.pause();
  const s = sock as unknown as SocketInternals;
  s._read = noRead;
  const h = s._handle;
  if (h?.reading && h.readStop) {
    h.reading = false;
    h.readStop();
  }
}

function unhaltReads(sock: net.Socket): void {
  const s = sock as unknown as SocketInternals;
  if (s._read !== noRead) return;
  delete (s as Partial<SocketInternals>)._read;
  // Readable may believe a read is under way (it called our no-op), so it
  // would never call _read again: start the handle ourselves.
  if (!sock.destroyed && s._handle && !s._handle.reading) s._read(sock.readableHighWaterMark);
}

/** Refuses a state that is not what snapshot() writes (a corrupt or foreign state file). */
function checkState(st: RelayState): void {
  const bad = (field: string): never => { throw new TypeError(`HTTP/2 relay state: bad ${field}`); };
  if (st.v !== 1) bad('version');
  const counts = ['clientSettingsUnacked', 'staleSettingsAcks', 'stalePingAcks', 'maxClientStreamId',
    'clientSendWindow', 'clientRecvWindow', 'serverMaxFrameSize'] as const;
  for (const k of counts) if (!Number.isSafeInteger(st[k])) bad(k);
  for (const k of ['prefaceSeen', 'clientTableZero'] as const) if (typeof st[k] !== 'boolean') bad(k);
  for (const k of ['clientPending', 'serverUnsent'] as const) if (typeof st[k] !== 'string') bad(k);
  if (typeof st.clientSettings !== 'object' || st.clientSettings === null) bad('clientSettings');
  for (const [id, v] of Object.entries(st.clientSettings)) {
    if (!/^\d+$/.test(id) || !Number.isSafeInteger(v)) bad(`clientSettings.${id}`);
  }
}

interface Deferred { resolve: () => void; reject: (e: Error) => void; promise: Promise<void>; timer: NodeJS.Timeout }

export interface H2RelayEvents {
  /** The client's socket closed. */
  close: [];
}

export class H2Relay extends EventEmitter<H2RelayEvents> {
  private readonly raw: net.Socket;
  private readonly inner: net.Socket;
  /** Client bytes not yet looked at. */
  private readonly cin = new ByteQueue();
  /** Client frames of streams quiesce() holds back, in order; they go before cin to whichever server comes next. */
  private readonly held = new ByteQueue();
  /** Server bytes not yet forwarded. */
  private readonly sin = new ByteQueue();

  // Carried across a re-exec (see RelayState).
  private prefaceSeen = false;
  private readonly clientSettings = new Map<number, number>();
  private clientSettingsUnacked = 0;
  private staleSettingsAcks = 0;
  private stalePingAcks = 0;
  private maxClientStreamId = 0;
  private clientSendWindow = DEFAULT_WINDOW;
  private clientRecvWindow = DEFAULT_WINDOW;
  private clientTableZero = false;
  private serverMaxFrameSize = DEFAULT_MAX_FRAME_SIZE;

  // This session only.
  /** Set from the state: streams up to it belong to a previous session. */
  private readonly oldStreamsUpTo: number;
  /** The state this relay resumes, until start() has replayed it. */
  private resumeFrom: RelayState | undefined;
  /** Server SETTINGS forwarded that the client has not ACKed yet. */
  private serverSettingsUnacked = 0;
  /** Server PINGs forwarded that the client has not ACKed yet. */
  private serverPingsUnacked = 0;
  /** ACKs of the replayed SETTINGS that the client must not see (it never sent them). */
  private replayAcksToDrop = 0;
  /** The server's connection receive window as the server sees it. */
  private serverRecvWindow = DEFAULT_WINDOW;
  /** Streams the client opened that the server has not ended (END_STREAM) and nobody reset. */
  private readonly streams = new Set<number>();
  /** A client header block was forwarded to this server (it may have filled the HPACK table). */
  private headersForwarded = false;
  private clientInHeaderBlock = false;
  private serverInHeaderBlock = false;
  /** Payloads (hex) of our PINGs to the server whose ACK has not come back. */
  private readonly ourPings = new Set<string>();
  /** The payload of the PING quiesce() waits for. */
  private quiescePing: string | undefined;

  private phase: Phase = 'running';
  private quiescing: Deferred | undefined;
  private clientFrozen = false;
  private serverFrozen = false;
  private rawHalted = false;
  private rawPaused = false;
  private innerPaused = false;
  private innerEnded = false;
  private started = false;
  /** Set by detach() and when the client's socket closes: the relay does nothing more. */
  private detached = false;
  private closed = false;
  private pumping = false;
  private pumpAgain = false;
  /** An empty write is queued to tell when the client's write buffer is flushed. */
  private flushWaiting = false;

  private readonly onRawData = (d: Buffer): void => { this.cin.push(d); this.pump(); };
  private readonly onInnerData = (d: Buffer): void => { this.sin.push(d); this.pump(); };
  private readonly onDrain = (): void => this.pump();
  private readonly onRawClose = (): void => this.rawClosed();
  private readonly onInnerEnd = (): void => { this.innerEnded = true; this.pump(); };
  private readonly onError = (): void => {};

  /**
   * raw: the client's socket (maybe paused, maybe restored from an fd).
   * inner: our end of the socketpair whose other end gRPC serves.
   * state: what snapshot() returned before the re-exec, when resuming.
   */
  constructor(raw: net.Socket, inner: net.Socket, state?: RelayState) {
    super();
    this.raw = raw;
    this.inner = inner;
    if (state) {
      checkState(state);
      this.prefaceSeen = state.prefaceSeen;
      for (const [id, value] of Object.entries(state.clientSettings)) this.clientSettings.set(Number(id), value);
      this.clientSettingsUnacked = state.clientSettingsUnacked;
      this.staleSettingsAcks = state.staleSettingsAcks;
      this.stalePingAcks = state.stalePingAcks;
      this.maxClientStreamId = state.maxClientStreamId;
      this.clientSendWindow = state.clientSendWindow;
      this.clientRecvWindow = state.clientRecvWindow;
      this.clientTableZero = state.clientTableZero;
      this.serverMaxFrameSize = state.serverMaxFrameSize;
      this.resumeFrom = state;
    }
    this.oldStreamsUpTo = this.maxClientStreamId;
  }

  /** Streams in flight: opened by the client, not yet ended by the server. */
  get openStreams(): number {
    return this.streams.size;
  }

  /**
   * Starts relaying. When resuming, first tells the new server what the old
   * one knew (preface, the client's settings) and evens out the windows, then
   * replays the bytes held at the snapshot.
   */
  start(): void {
    if (this.started) return;
    this.started = true;
    for (const s of [this.raw, this.inner]) s.on('error', this.onError);
    this.raw.on('data', this.onRawData);
    this.raw.on('drain', this.onDrain);
    this.raw.on('close', this.onRawClose);
    this.inner.on('data', this.onInnerData);
    this.inner.on('drain', this.onDrain);
    this.inner.on('end', this.onInnerEnd);
    this.inner.on('close', this.onInnerEnd);
    const st = this.resumeFrom;
    this.resumeFrom = undefined;
    if (st) this.replay(st);
    if (this.raw.destroyed) {
      queueMicrotask(this.onRawClose);
      return;
    }
    this.raw.resume();
    this.inner.resume();
    this.pump();
  }

  private replay(st: RelayState): void {
    if (this.prefaceSeen) {
      // One SETTINGS per one the old server had not ACKed, so the client gets
      // exactly the ACKs it waits for; at least one, for the new session.
      const n = Math.max(1, this.clientSettingsUnacked);
      this.replayAcksToDrop = n - this.clientSettingsUnacked;
      const frame = settingsFrame(this.clientSettings);
      const out: Buffer[] = [CLIENT_PREFACE];
      for (let i = 0; i < n; i++) out.push(frame);
      // The new server believes the client can take 65535 bytes; if it can
      // take more, say so, or the server could wait for an update that never comes.
      if (this.clientRecvWindow > DEFAULT_WINDOW) out.push(windowUpdate(this.clientRecvWindow - DEFAULT_WINDOW));
      this.inner.write(Buffer.concat(out));
    }
    // The new server accepts 65535 bytes; a client that thinks it may send
    // fewer would wait for an update the server sees no reason to send.
    if (this.clientSendWindow < DEFAULT_WINDOW) {
      this.raw.write(windowUpdate(DEFAULT_WINDOW - this.clientSendWindow));
      this.clientSendWindow = DEFAULT_WINDOW;
    }
    this.cin.push(Buffer.from(st.clientPending, 'base64'));
  }

  /**
   * Brings the connection to a point where it can be written down: calls in
   * flight finish, new ones are held, the server has answered everything
   * forwarded to it and the client has been sent everything; then nothing is
   * read or written any more. Rejects after timeoutMs (the caller then calls
   * unquiesce()); resolves at once if the client has gone ('close').
   */
  quiesce(timeoutMs: number): Promise<void> {
    if (!this.started) return Promise.reject(new Error('HTTP/2 relay quiesced before start()'));
    if (this.phase === 'quiesced' || this.closed) return Promise.resolve();
    if (this.quiescing) return this.quiescing.promise;
    let resolve!: () => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
    const timer = setTimeout(() => {
      this.settleQuiesce(new Error(`HTTP/2 relay not quiescent after ${timeoutMs} ms (${this.phase}, ${this.streams.size} open streams)`));
    }, timeoutMs);
    this.quiescing = { resolve, reject, promise, timer };
    this.phase = 'holding';
    this.advance();
    return promise;
  }

  /** Back to plain relaying: the re-exec did not happen. Held calls go to the server now. */
  unquiesce(): void {
    this.settleQuiesce(new Error('quiesce cancelled'));
    this.phase = 'running';
    this.quiescePing = undefined;
    this.clientFrozen = false;
    this.serverFrozen = false;
    this.cin.prepend(this.held);
    if (this.rawHalted) {
      this.rawHalted = false;
      this.rawPaused = true;
      unhaltReads(this.raw);
    }
    this.pump();
  }

  /** The relay's state for the re-exec state file; only once quiesce() has resolved. */
  snapshot(): RelayState {
    if (this.closed) throw new Error('HTTP/2 relay snapshot after the client went away');
    if (this.phase !== 'quiesced') throw new Error(`HTTP/2 relay snapshot while ${this.phase}`);
    this.drainRaw();
    const settings: Record<string, number> = {};
    for (const [id, value] of [...this.clientSettings].sort((a, b) => a[0] - b[0])) settings[String(id)] = value;
    return {
      v: 1,
      prefaceSeen: this.prefaceSeen,
      clientPending: Buffer.concat([this.held.all(), this.cin.all()]).toString('base64'),
      serverUnsent: this.sin.all().toString('base64'),
      clientSettings: settings,
      clientSettingsUnacked: this.clientSettingsUnacked,
      staleSettingsAcks: this.staleSettingsAcks + this.serverSettingsUnacked,
      stalePingAcks: this.stalePingAcks + this.serverPingsUnacked,
      maxClientStreamId: this.maxClientStreamId,
      clientSendWindow: this.clientSendWindow,
      clientRecvWindow: this.clientRecvWindow,
      clientTableZero: this.clientTableZero,
      serverMaxFrameSize: this.serverMaxFrameSize,
    };
  }

  /**
   * Stops relaying and lets go of both sockets without closing them: after
   * snapshot(), before the caller closes or hands on their fds. Emits nothing more.
   */
  detach(): void {
    this.detached = true;
    this.settleQuiesce(new Error('relay detached'));
    this.raw.off('data', this.onRawData);
    this.raw.off('drain', this.onDrain);
    this.raw.off('close', this.onRawClose);
    this.inner.off('data', this.onInnerData);
    this.inner.off('drain', this.onDrain);
    this.inner.off('end', this.onInnerEnd);
    this.inner.off('close', this.onInnerEnd);
    this.inner.pause();
  }

  // ---- moving bytes ------------------------------------------------------

  private pump(): void {
    if (this.detached) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    this.raw.cork();
    this.inner.cork();
    try {
      do {
        this.pumpAgain = false;
        this.pumpClient();
        this.pumpServer();
      } while (this.pumpAgain && !this.raw.destroyed);
    } catch {
      // A bug of ours must not become an exception in a socket handler: the
      // connection is lost, the daemon is not.
      this.raw.destroy();
    } finally {
      this.pumping = false;
      this.raw.uncork();
      this.inner.uncork();
    }
    // gRPC closed the connection: the client sees it closed once it has everything.
    if (this.innerEnded && !this.serverFrozen && this.sin.length === 0 && !this.raw.destroyed && !this.raw.writableEnded) this.raw.end();
    this.updateReading();
    this.advance();
  }

  private pumpClient(): void {
    while (!this.clientFrozen && !this.raw.destroyed) {
      if (!this.prefaceSeen) {
        if (!this.takePreface()) return;
        continue;
      }
      if (this.cin.length < HEADER_BYTES) return;
      const h = this.cin.peek(HEADER_BYTES);
      const len = h.readUIntBE(0, 3);
      if (len > this.serverMaxFrameSize) {
        this.garbage();
        return;
      }
      if (this.cin.length < HEADER_BYTES + len) return;
      const type = h[3]!;
      const flags = h[4]!;
      const sid = h.readUInt32BE(5) & 0x7fffffff;
      const verdict = this.clientFrame(type, flags, sid, len);
      if (verdict === 'block') return;
      if (verdict === 'hold') this.held.push(this.cin.peek(HEADER_BYTES + len));
      else if (verdict !== 'drop') this.inner.write(verdict === 'forward' ? this.cin.peek(HEADER_BYTES + len) : verdict);
      this.cin.skip(HEADER_BYTES + len);
    }
  }

  /** The preface and the first frame, a SETTINGS, go to the server together. */
  private takePreface(): boolean {
    const have = Math.min(this.cin.length, CLIENT_PREFACE.length);
    if (have > 0 && !this.cin.peek(have).equals(CLIENT_PREFACE.subarray(0, have))) {
      this.garbage();
      return false;
    }
    const n = CLIENT_PREFACE.length;
    if (this.cin.length < n + HEADER_BYTES) return false;
    const h = this.cin.peek(n + HEADER_BYTES).subarray(n);
    const len = h.readUIntBE(0, 3);
    if (h[3] !== SETTINGS || (h[4]! & FLAG_ACK) || len % 6 !== 0 || len > DEFAULT_MAX_FRAME_SIZE) {
      this.garbage();
      return false;
    }
    if (this.cin.length < n + HEADER_BYTES + len) return false;
    const frame = this.cin.peek(n + HEADER_BYTES + len).subarray(n);
    this.inner.write(CLIENT_PREFACE);
    this.inner.write(this.clientSettingsFrame(frame));
    this.cin.skip(n + HEADER_BYTES + len);
    this.prefaceSeen = true;
    return true;
  }

  private clientSettingsFrame(frame: Buffer): Buffer {
    for (let p = HEADER_BYTES; p + 6 <= frame.length; p += 6) {
      this.clientSettings.set(frame.readUInt16BE(p), frame.readUInt32BE(p + 2));
    }
    this.clientSettingsUnacked++;
    return zeroHeaderTable(frame);
  }

  private clientFrame(type: number, flags: number, sid: number, len: number): Verdict {
    if (sid !== 0 && sid <= this.oldStreamsUpTo) {
      // A stream of the previous session; the new one would call it idle.
      if (type === DATA && len > 0) this.refundClient(len);
      return 'drop';
    }
    // While quiescing, new streams wait for the next server. Everything else
    // goes on (window updates, PINGs, DATA of calls in flight): the calls
    // being waited for may need it to end.
    if (sid > this.maxClientStreamId && this.phase !== 'running' && (this.held.length > 0 || this.canHold())) return 'hold';
    switch (type) {
      case DATA:
        if (len > this.serverRecvWindow) return 'block';
        this.serverRecvWindow -= len;
        this.clientSendWindow -= len;
        return 'forward';
      case HEADERS:
        if (sid > this.maxClientStreamId) {
          this.maxClientStreamId = sid;
          this.streams.add(sid);
        }
        this.headersForwarded = true;
        this.clientInHeaderBlock = (flags & FLAG_END_HEADERS) === 0;
        return 'forward';
      case CONTINUATION:
        if (flags & FLAG_END_HEADERS) this.clientInHeaderBlock = false;
        return 'forward';
      case RST_STREAM:
        this.streams.delete(sid);
        return 'forward';
      case SETTINGS:
        if (flags & FLAG_ACK) {
          // Every SETTINGS the client sees says HEADER_TABLE_SIZE 0.
          this.clientTableZero = true;
          if (this.staleSettingsAcks > 0) {
            this.staleSettingsAcks--;
            return 'drop';
          }
          this.serverSettingsUnacked = Math.max(0, this.serverSettingsUnacked - 1);
          return 'forward';
        }
        if (len % 6 !== 0) {
          this.garbage();
          return 'drop';
        }
        return this.clientSettingsFrame(this.cin.peek(HEADER_BYTES + len));
      case PING:
        if (flags & FLAG_ACK) {
          if (this.stalePingAcks > 0) {
            this.stalePingAcks--;
            return 'drop';
          }
          this.serverPingsUnacked = Math.max(0, this.serverPingsUnacked - 1);
        }
        return 'forward';
      case WINDOW_UPDATE:
        if (sid === 0 && len === 4) {
          // Server DATA waiting for the client's window may go now.
          this.clientRecvWindow += this.cin.peek(HEADER_BYTES + 4).readUInt32BE(HEADER_BYTES) & 0x7fffffff;
          this.pumpAgain = true;
        }
        return 'forward';
      default:
        return 'forward';
    }
  }

  /**
   * New streams may be held only once the client's header blocks cannot
   * refer to entries of its HPACK table that the server has (they would be
   * missing in a new session).
   */
  private canHold(): boolean {
    return this.clientTableZero || !this.headersForwarded;
  }

  /** Gives the client back connection window spent on a frame nobody will see. */
  private refundClient(len: number): void {
    this.raw.write(windowUpdate(len));
  }

  private pumpServer(): void {
    while (!this.serverFrozen && !this.raw.destroyed) {
      if (this.sin.length < HEADER_BYTES) return;
      const h = this.sin.peek(HEADER_BYTES);
      const len = h.readUIntBE(0, 3);
      if (this.sin.length < HEADER_BYTES + len) return;
      const verdict = this.serverFrame(h[3]!, h[4]!, h.readUInt32BE(5) & 0x7fffffff, len);
      if (verdict === 'block') return;
      if (verdict !== 'drop') this.raw.write(verdict === 'forward' ? this.sin.peek(HEADER_BYTES + len) : verdict);
      this.sin.skip(HEADER_BYTES + len);
    }
  }

  private serverFrame(type: number, flags: number, sid: number, len: number): Verdict {
    switch (type) {
      case DATA:
        // The new server may believe the client has more window than it has.
        if (len > this.clientRecvWindow) return 'block';
        this.clientRecvWindow -= len;
        if (flags & FLAG_END_STREAM) this.streams.delete(sid);
        return 'forward';
      case HEADERS:
        if (flags & FLAG_END_STREAM) this.streams.delete(sid);
        this.serverInHeaderBlock = (flags & FLAG_END_HEADERS) === 0;
        return 'forward';
      case CONTINUATION:
        if (flags & FLAG_END_HEADERS) this.serverInHeaderBlock = false;
        return 'forward';
      case RST_STREAM:
        this.streams.delete(sid);
        return 'forward';
      case SETTINGS: {
        if (flags & FLAG_ACK) {
          if (this.replayAcksToDrop > 0) {
            this.replayAcksToDrop--;
            return 'drop';
          }
          this.clientSettingsUnacked = Math.max(0, this.clientSettingsUnacked - 1);
          return 'forward';
        }
        const frame = this.sin.peek(HEADER_BYTES + len);
        for (let p = HEADER_BYTES; p + 6 <= frame.length; p += 6) {
          if (frame.readUInt16BE(p) === SETTINGS_MAX_FRAME_SIZE) {
            this.serverMaxFrameSize = Math.max(this.serverMaxFrameSize, frame.readUInt32BE(p + 2));
          }
        }
        this.serverSettingsUnacked++;
        return zeroHeaderTable(frame);
      }
      case PING: {
        if (!(flags & FLAG_ACK)) {
          this.serverPingsUnacked++;
          return 'forward';
        }
        const payload = this.sin.peek(HEADER_BYTES + len).subarray(HEADER_BYTES).toString('hex');
        if (!this.ourPings.delete(payload)) return 'forward';
        if (payload === this.quiescePing) {
          // Everything we forwarded before the PING has been answered.
          this.quiescePing = undefined;
          this.serverFrozen = true;
          this.phase = 'flushing';
        }
        return 'drop';
      }
      case WINDOW_UPDATE: {
        if (sid !== 0 || len !== 4) return 'forward';
        const inc = this.sin.peek(HEADER_BYTES + 4).readUInt32BE(HEADER_BYTES) & 0x7fffffff;
        this.serverRecvWindow += inc;
        this.pumpAgain = true;
        // After a resume the client may believe it has more window than the
        // new server gave: keep back what it already has.
        const give = Math.min(inc, this.serverRecvWindow - this.clientSendWindow);
        if (give <= 0) return 'drop';
        this.clientSendWindow += give;
        return give === inc ? 'forward' : windowUpdate(give);
      }
      default:
        return 'forward';
    }
  }

  /** Pauses a side whose bytes cannot go on, resumes it when they can. */
  private updateReading(): void {
    if (this.detached || this.raw.destroyed) return;
    if (!this.rawHalted) {
      const pause = this.inner.writableNeedDrain || this.cin.length > READ_AHEAD_BYTES;
      if (pause !== this.rawPaused) {
        this.rawPaused = pause;
        if (pause) this.raw.pause();
        else this.raw.resume();
      }
    }
    const pause = this.serverFrozen || this.raw.writableNeedDrain || this.sin.length > READ_AHEAD_BYTES;
    if (pause !== this.innerPaused) {
      this.innerPaused = pause;
      if (pause) this.inner.pause();
      else this.inner.resume();
    }
  }

  /** Moves all Node has already read from the client into cin. */
  private drainRaw(): void {
    // read() on a paused stream emits 'data' (onRawData), never restarting the halted handle.
    while (this.raw.readableLength > 0 && this.raw.read() !== null);
  }

  // ---- quiescing ---------------------------------------------------------

  private advance(): void {
    if (this.detached || this.pumping) return;
    try {
      this.advanceQuiesce();
    } catch (e) {
      this.settleQuiesce(e as Error);
      this.raw.destroy();
    }
  }

  private advanceQuiesce(): void {
    if (this.phase === 'holding') {
      if (this.streams.size > 0 || this.clientInHeaderBlock || this.serverInHeaderBlock || !this.canHold()) return;
      // Stop reading the client for good and forward what came before.
      this.phase = 'draining';
      this.rawHalted = true;
      haltReads(this.raw);
      this.drainRaw();
      this.pump();
      if (this.phase !== 'draining') return;
      if (this.streams.size > 0 || this.clientInHeaderBlock) {
        // Something in the last bytes read still needs the server.
        this.phase = 'holding';
        this.rawHalted = false;
        unhaltReads(this.raw);
        this.rawPaused = true;
        this.pump();
        return;
      }
      this.clientFrozen = true;
      if (this.prefaceSeen) {
        const payload = crypto.randomBytes(8);
        this.quiescePing = payload.toString('hex');
        this.ourPings.add(this.quiescePing);
        this.inner.write(Buffer.concat([frameHeader(8, PING, 0, 0), payload]));
        this.phase = 'pinging';
      } else {
        // Nothing was ever forwarded: nothing to wait for from the server.
        this.serverFrozen = true;
        this.phase = 'flushing';
      }
      this.updateReading();
    }
    if (this.phase === 'flushing') {
      this.updateReading();
      if (this.raw.writableLength === 0) {
        this.phase = 'quiesced';
        this.settleQuiesce();
      } else if (!this.flushWaiting) {
        // Called back once everything before it has reached the kernel.
        this.flushWaiting = true;
        this.raw.write(Buffer.alloc(0), () => { this.flushWaiting = false; this.advance(); });
      }
    }
  }

  private settleQuiesce(err?: Error): void {
    const q = this.quiescing;
    if (!q) return;
    this.quiescing = undefined;
    clearTimeout(q.timer);
    if (err) q.reject(err);
    else q.resolve();
  }

  // ---- endings -----------------------------------------------------------

  /** Not HTTP/2, or a frame no server would take: drop this connection only. */
  private garbage(): void {
    this.raw.destroy();
    this.inner.destroy();
  }

  private rawClosed(): void {
    if (this.detached) return;
    this.detached = true;
    this.closed = true;
    // Nothing left to write down: a re-exec goes on without this client.
    this.settleQuiesce();
    this.inner.destroy();
    this.emit('close');
  }
}
