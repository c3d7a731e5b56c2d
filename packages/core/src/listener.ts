// One listening socket. We own its fd outright and accept through a
// net.Server made from a duplicate of it: pausing closes only that server
// (and the duplicate), so the socket itself keeps listening and new
// connections wait in the kernel backlog, as libvirt's "stop accepting at
// the limit" does, instead of Node's accept-then-close.
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

export class Listener extends EventEmitter<{ connection: [net.Socket]; error: [Error] }> {
  readonly fd: number;
  readonly transport: Transport;
  readonly address: string;
  readonly backlog: number;
  readonly activated: boolean;
  private readonly unlinkPath: string | undefined;
  /** Present while accepting; replaced at each resume. */
  private server: net.Server | undefined;
  private closed = false;

  constructor(init: ListenerInit) {
    super();
    this.fd = init.fd;
    this.transport = init.transport;
    this.address = init.address;
    this.backlog = init.backlog || DEFAULT_BACKLOG;
    this.activated = init.activated;
    this.unlinkPath = init.unlinkPath;
  }

  get accepting(): boolean {
    return this.server !== undefined;
  }

  /** Starts (or resumes) accepting. */
  resume(): void {
    if (this.server || this.closed) return;
    // pauseOnConnect: nothing is read before the server has checked the peer.
    const server = net.createServer({ pauseOnConnect: true });
    server.on('connection', (sock) => this.emit('connection', sock));
    server.on('error', (e) => this.emit('error', e));
    // The backlog must be positional: Node ignores options.backlog for fds.
    server.listen({ fd: dupCloexec(this.fd) }, this.backlog);
    this.server = server;
  }

  /** Stops accepting; the socket stays open and connections queue. */
  pause(): void {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    s.close();
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
    closeFd(this.fd);
    if (this.unlinkPath) {
      try { fs.unlinkSync(this.unlinkPath); } catch { /* already gone */ }
    }
  }
}

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
