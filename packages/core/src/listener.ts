// One listening socket. We own its fd outright and accept through a
// net.Server made from a duplicate of it: pausing closes only that server
// (and the duplicate), so the socket itself keeps listening and new
// connections wait in the kernel backlog, as libvirt's "stop accepting at
// the limit" does, instead of Node's accept-then-close.
//
// Running out of file descriptors is handled the same way, by pausing.
// accept() failing with EMFILE never reaches Node: libuv keeps a spare fd
// for that case, closes it, accepts every waiting connection and closes it
// at once ("the EMFILE trick"), then reports nothing. Waiting clients would
// be dropped, each new one too, for as long as we are out of fds. libvirt
// instead stops listening and tries again later. So every listener of the
// process checks the descriptor budget after each accept and stops while
// fewer than FD_RESERVE are left (hostile.test.ts pins this down).
import fs from 'node:fs';
import net from 'node:net';
import dns from 'node:dns/promises';
import { EventEmitter } from 'node:events';
import { dupCloexec, closeFd, listenUnix, groupId, setCloexec } from '@virtd/posix';
import { VirtError } from '@virtd/errors';
import type { SockState } from './exec-state.js';

export type Transport = 'unix' | 'tcp' | 'tls';

export interface ListenerInit {
  /** The listening socket; owned by the Listener from now on. */
  readonly fd: number;
  readonly transport: Transport;
  /** Socket path, or host:port, for logs and the admin API. */
  readonly address: string;
  readonly backlog: number;
  /** Path to unlink at close: set only for sockets we bound ourselves. */
  readonly unlinkPath?: string;
  /** Passed by systemd (never unlinked, never re-bound). */
  readonly activated: boolean;
}

/** Backlog when a configured queue length is 0, as libvirt. */
export const DEFAULT_BACKLOG = 30;

/** Descriptors left free when we stop accepting: a relayed connection takes three, the daemon's own work a few. */
export const FD_RESERVE = 16;
/** While out of descriptors, how often we look again (libvirt waits 5 s; a client leaving also triggers a look). */
export const FD_RETRY_MS = 1000;
/** After another accept failure (ENOBUFS, ENOMEM…), when that listener tries again. */
export const ACCEPT_RETRY_MS = 1000;
/** Counting /proc/self/fd is skipped while more than this many are free... */
const FD_COUNT_NEAR = 1024;
/** ...for at most this many accepts. */
const FD_COUNT_EVERY = 64;
/** Descriptors one accepted connection may take (socket, relay socketpair). */
const FD_PER_CONNECTION = 3;

export interface FdUsage { readonly used: number; readonly limit: number }

function fdLimit(): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(fs.readFileSync('/proc/self/limits', 'latin1'));
    if (m) return m[1] === 'unlimited' ? Infinity : Number(m[1]);
  } catch { /* no /proc, or out of fds: assume the worst below */ }
  return NaN;
}

function fdsInUse(): number {
  // The directory's own descriptor is among the entries.
  return fs.readdirSync('/proc/self/fd').length - 1;
}

/**
 * The process's descriptors, as far as accepting goes: every listener asks
 * it after an accept whether to go on, and all of them stop together when
 * it says no, until a client leaves or the retry timer finds room again.
 * One shortage is reported once ('exhausted'), however often accepting
 * stops and starts while it lasts, and its end once ('recovered', when
 * twice the reserve is free again).
 */
export class FdBudget extends EventEmitter<{ exhausted: [FdUsage]; recovered: [FdUsage] }> {
  /** Set when we stopped accepting for lack of fds; cleared when room is found again. */
  private out = false;
  /** Set with the first stop of a shortage, cleared at its end (the log's view). */
  private short = false;
  /** From the last count. */
  private used = 0;
  private limit = Infinity;
  /** Accepts since the last count. */
  private sinceCount = FD_COUNT_EVERY;
  private retry: NodeJS.Timeout | undefined;
  /** Listeners that want to accept and are held back by this budget. */
  private readonly held = new Set<Listener>();

  get exhausted(): boolean {
    return this.out;
  }

  /** After an accept: false (and every listener stopped) once too few fds are left. */
  afterAccept(): boolean {
    if (this.out) return false;
    this.sinceCount++;
    const guess = this.limit - this.used - this.sinceCount * FD_PER_CONNECTION;
    if (!this.short && this.sinceCount < FD_COUNT_EVERY && guess > FD_COUNT_NEAR) return true;
    if (this.room(FD_RESERVE)) return true;
    this.runOut();
    return false;
  }

  /** Something (accept, dup, socketpair) failed with EMFILE/ENFILE: stop accepting now. */
  shortage(): void {
    if (!this.out) this.runOut();
  }

  /**
   * A client left, or the timer fired: accept again if there is room for
   * the listener's duplicate and one more connection besides the reserve.
   */
  recheck(): void {
    if (!this.short) return;
    if (!this.out) {
      this.room(FD_RESERVE);
      return;
    }
    if (!this.room(FD_RESERVE + 1 + FD_PER_CONNECTION)) return;
    this.out = false;
    clearInterval(this.retry);
    this.retry = undefined;
    const waiting = [...this.held];
    this.held.clear();
    for (const l of waiting) l.budgetAllows();
  }

  /** A listener that wants to accept while we are out: started again on recovery. */
  hold(l: Listener): void {
    this.held.add(l);
  }

  release(l: Listener): void {
    this.held.delete(l);
  }

  /** No listener left (the daemon is stopping): nothing to retry for. */
  forget(): void {
    clearInterval(this.retry);
    this.retry = undefined;
    this.held.clear();
    this.out = false;
    this.short = false;
  }

  /** Counts, and tells whether `need` descriptors are free. */
  private room(need: number): boolean {
    this.sinceCount = 0;
    try {
      this.limit = fdLimit();
      this.used = fdsInUse();
    } catch {
      // Counting itself needs a descriptor: none left.
      return false;
    }
    if (Number.isNaN(this.limit)) return false;
    const free = this.limit - this.used;
    if (this.short && !this.out && free >= 2 * FD_RESERVE) {
      this.short = false;
      this.emit('recovered', { used: this.used, limit: this.limit });
    }
    return free >= need;
  }

  private runOut(): void {
    this.out = true;
    if (!this.short) {
      this.short = true;
      this.emit('exhausted', { used: this.used, limit: this.limit });
    }
    for (const l of listeners) l.budgetForbids();
    this.retry = setInterval(() => this.recheck(), FD_RETRY_MS);
  }
}

/** One budget per process: descriptors are a per-process limit. */
export const fdBudget = new FdBudget();
/** Listeners not closed, for stopping them all at once. */
const listeners = new Set<Listener>();

export class Listener extends EventEmitter<{ connection: [net.Socket]; error: [Error] }> {
  readonly fd: number;
  readonly transport: Transport;
  readonly address: string;
  readonly backlog: number;
  readonly activated: boolean;
  private readonly unlinkPath: string | undefined;
  /** Set by resume(), cleared by pause(): whether the server wants this listener accepting. */
  private wanted = false;
  /** Present while actually accepting; replaced at each start. */
  private server: net.Server | undefined;
  /** An accept failure other than EMFILE: the time to try again. */
  private retry: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(init: ListenerInit) {
    super();
    this.fd = init.fd;
    this.transport = init.transport;
    this.address = init.address;
    this.backlog = init.backlog || DEFAULT_BACKLOG;
    this.activated = init.activated;
    this.unlinkPath = init.unlinkPath;
    listeners.add(this);
  }

  /** Whether the server wants this listener accepting (it may still be held back for lack of fds). */
  get accepting(): boolean {
    return this.wanted;
  }

  /** Whether connections are being accepted right now. */
  get listening(): boolean {
    return this.server !== undefined;
  }

  /** Starts (or resumes) accepting. */
  resume(): void {
    if (this.wanted || this.closed) return;
    this.wanted = true;
    this.start();
  }

  /** Stops accepting; the socket stays open and connections queue. */
  pause(): void {
    this.wanted = false;
    fdBudget.release(this);
    clearTimeout(this.retry);
    this.retry = undefined;
    this.stop();
  }

  /** Called by the budget: out of fds, stop for now. */
  budgetForbids(): void {
    this.stop();
    if (this.wanted && !this.closed) fdBudget.hold(this);
  }

  /** Called by the budget: fds again. */
  budgetAllows(): void {
    this.start();
  }

  private start(): void {
    if (this.server || !this.wanted || this.closed || this.retry) return;
    if (fdBudget.exhausted) {
      fdBudget.hold(this);
      return;
    }
    let fd: number;
    try {
      fd = dupCloexec(this.fd);
    } catch (e) {
      // The duplicate needs a descriptor too.
      if (isFdShortage(e)) {
        fdBudget.shortage();
        fdBudget.hold(this);
      } else {
        this.failed(e as Error);
      }
      return;
    }
    // pauseOnConnect: nothing is read before the server has checked the peer.
    const server = net.createServer({ pauseOnConnect: true });
    server.on('connection', (sock) => {
      this.emit('connection', sock);
      // Synchronous, so libuv's accept loop ends here when we stop.
      fdBudget.afterAccept();
    });
    server.on('error', (e: NodeJS.ErrnoException) => {
      // After a failed accept() libuv tries again at once, in a loop: stop
      // first, synchronously, which ends that loop.
      if (this.server === server) this.stop();
      if (isFdShortage(e)) {
        fdBudget.shortage();
        if (this.wanted && !this.closed) fdBudget.hold(this);
      } else if (e.syscall === 'accept') {
        this.failed(e);
      } else {
        this.emit('error', e);
      }
    });
    // The backlog must be positional: Node ignores options.backlog for fds.
    server.listen({ fd }, this.backlog);
    this.server = server;
  }

  private stop(): void {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    s.close();
  }

  /** Reports an accept failure and tries again later, as libvirt does after EMFILE. */
  private failed(e: Error): void {
    this.emit('error', e);
    if (this.closed || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.start();
    }, ACCEPT_RETRY_MS);
  }

  /** The re-exec state of this socket: the fd stays open across the exec. */
  toState(): SockState {
    return {
      fd: this.fd, errfd: -1, pid: 0, isClient: false, unlinkUNIX: this.unlinkPath !== undefined,
      transport: this.transport, address: this.address, backlog: this.backlog, activated: this.activated,
      ...(this.unlinkPath ? { path: this.unlinkPath } : {}),
    };
  }

  /** The listener again, after the exec (its fd marked close-on-exec once more). */
  static fromState(s: SockState): Listener {
    setCloexec(s.fd, true);
    const transport = s.transport ?? 'unix';
    return new Listener({
      fd: s.fd, transport, address: s.address ?? `fd ${s.fd}`, backlog: s.backlog ?? DEFAULT_BACKLOG,
      activated: s.activated ?? false,
      ...(s.unlinkUNIX && s.path ? { unlinkPath: s.path } : {}),
    });
  }

  /** Stops for good: closes the socket and unlinks a path we created. */
  close(): void {
    if (this.closed) return;
    this.pause();
    this.closed = true;
    listeners.delete(this);
    if (!listeners.size) fdBudget.forget();
    closeFd(this.fd);
    if (this.unlinkPath) {
      try { fs.unlinkSync(this.unlinkPath); } catch { /* already gone */ }
    }
  }
}

/** Out of descriptors, for the process (EMFILE) or the system (ENFILE). */
export const isFdShortage = (e: unknown): boolean => {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EMFILE' || code === 'ENFILE';
};

export interface UnixBindOptions {
  readonly mode: number;
  readonly backlog: number;
  /** Group name, or '+gid' for a numeric id (libvirt's unix_sock_group). */
  readonly group?: string;
}

/** Binds a UNIX socket the way libvirt does: exact mode, optional group. */
export function bindUnix(path: string, opts: UnixBindOptions): Listener {
  const backlog = opts.backlog || DEFAULT_BACKLOG;
  const fd = listenUnix(path, { backlog, mode: opts.mode });
  try {
    if (opts.group !== undefined) fs.chownSync(path, -1, resolveGroup(opts.group));
  } catch (e) {
    closeFd(fd);
    fs.rmSync(path, { force: true });
    throw e;
  }
  return new Listener({ fd, transport: 'unix', address: path, backlog, unlinkPath: path, activated: false });
}

export function resolveGroup(group: string): number {
  if (group.startsWith('+')) {
    const n = Number(group.slice(1));
    if (!Number.isInteger(n) || n < 0) throw new VirtError('INVALID_ARG', 'CONF', `Invalid unix_sock_group '${group}'`);
    return n;
  }
  const gid = groupId(group);
  if (gid === undefined) throw new VirtError('INVALID_ARG', 'CONF', `Failed to find group '${group}'`);
  return gid;
}

/**
 * Binds TCP: one socket per address listen_addr resolves to, or IPv4 and
 * IPv6 wildcards (v6 only) when it is unset. A family the host lacks is
 * tolerated if another bound, like libvirt.
 */
export async function bindTcp(host: string | undefined, port: string, backlog: number, transport: 'tcp' | 'tls'): Promise<Listener[]> {
  const portNum = await resolvePort(port);
  const targets: { host: string; v6: boolean }[] = host
    ? (await dns.lookup(host, { all: true })).map((a) => ({ host: a.address, v6: a.family === 6 }))
    : [{ host: '::', v6: true }, { host: '0.0.0.0', v6: false }];
  const out: Listener[] = [];
  let lastError: Error | undefined;
  let boundPort = portNum;
  for (const t of targets) {
    try {
      // With port 0 every family shares the first port the kernel picked.
      out.push(await bindTcpOne(t.host, boundPort, t.v6, backlog || DEFAULT_BACKLOG, transport));
      if (boundPort === 0) boundPort = Number(out[0]!.address.split(':').pop());
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      lastError = e as Error;
      if (code !== 'EADDRNOTAVAIL' && code !== 'EAFNOSUPPORT' && code !== 'EADDRINUSE') {
        for (const l of out) l.close();
        throw e;
      }
    }
  }
  if (!out.length) throw lastError ?? new Error(`nothing to bind for ${host ?? '*'}:${port}`);
  return out;
}

async function bindTcpOne(host: string, port: number, v6: boolean, backlog: number, transport: 'tcp' | 'tls'): Promise<Listener> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, backlog, ipv6Only: v6, exclusive: true }, () => resolve());
  });
  const handle = (server as unknown as { _handle: { fd: number } })._handle;
  const fd = dupCloexec(handle.fd);
  const addr = server.address();
  const bound = addr && typeof addr === 'object' ? addr.port : port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const shown = v6 ? `[${host}]:${bound}` : `${host}:${bound}`;
  return new Listener({ fd, transport, address: shown, backlog, activated: false });
}

async function resolvePort(port: string): Promise<number> {
  if (/^\d+$/.test(port)) return Number(port);
  // A service name (libvirt accepts them): look it up in /etc/services.
  try {
    const text = fs.readFileSync('/etc/services', 'utf8');
    const m = new RegExp(`^${port.replace(/[^\w-]/g, '')}\\s+(\\d+)/tcp`, 'm').exec(text);
    if (m) return Number(m[1]);
  } catch { /* no services file */ }
  throw new VirtError('INVALID_ARG', 'CONF', `Unable to resolve port '${port}'`);
}

/** A Listener over an fd passed by systemd. */
export function fromActivation(fd: number, transport: Transport, name: string, backlog: number): Listener {
  return new Listener({ fd, transport, address: `${name} (fd ${fd})`, backlog, activated: true });
}
