// One transport connection is one client. The server creates a Client when
// it admits a connection, before handing the socket to gRPC, and marks the
// socket so every call on that connection finds its Client again: grpc-js
// reports a connection's socket.remoteAddress as the call's peer, so we set
// that to a token of ours.
import type net from 'node:net';
import type { Transport } from './listener.js';

export interface ClientIdentity {
  /** Peer credentials (UNIX sockets, via SO_PEERCRED). */
  readonly uid?: number;
  readonly gid?: number;
  readonly pid?: number;
  readonly userName?: string;
  readonly groupName?: string;
  /** "address;port" of a TCP/TLS peer, libvirt's form. */
  readonly sockAddr?: string;
  /** The verified client certificate's subject DN (TLS). */
  readonly x509DName?: string;
}

export interface TypedValue {
  readonly field: string;
  readonly value: number | string | boolean;
  readonly type: 'int' | 'uint' | 'llong' | 'ullong' | 'boolean' | 'string';
}

const byToken = new Map<string, Client>();
const TOKEN_PREFIX = 'virtd-client:';

/** The client a call belongs to, from grpc-js's call.getPeer(). */
export function clientForPeer(peer: string): Client | undefined {
  return byToken.get(peer);
}

export class Client {
  /** Per-server counter from 1, as libvirt numbers clients. */
  readonly id: number;
  readonly serverName: string;
  readonly transport: Transport;
  /** Set by the socket role, or later by the client itself (Open with the read-only flag). */
  private ro: boolean;
  /** Connect time, seconds since the epoch. */
  readonly connectTime: number;
  readonly identity: ClientIdentity;
  /** The transport socket (the TLSSocket for TLS). */
  readonly socket: net.Socket;
  /** The socket gRPC reads: the transport itself, or a relay's inner end. */
  readonly grpcSocket: net.Socket;
  /** What getPeer() returns for calls on this connection. */
  readonly token: string;
  /** Per-connection state of programs (e.g. the driver a Connect opened). */
  readonly data = new Map<string | symbol, unknown>();
  private closed = false;

  constructor(init: {
    id: number; serverName: string; transport: Transport; readonly: boolean;
    identity: ClientIdentity; socket: net.Socket; grpcSocket?: net.Socket; connectTime?: number;
  }) {
    this.id = init.id;
    this.serverName = init.serverName;
    this.transport = init.transport;
    this.ro = init.readonly;
    this.identity = init.identity;
    this.socket = init.socket;
    this.grpcSocket = init.grpcSocket ?? init.socket;
    this.connectTime = init.connectTime ?? Math.floor(Date.now() / 1000);
    this.token = `${TOKEN_PREFIX}${init.serverName}:${init.id}`;
    Object.defineProperty(this.grpcSocket, 'remoteAddress', { value: this.token, configurable: true });
    Object.defineProperty(this.grpcSocket, 'remotePort', { value: undefined, configurable: true });
    byToken.set(this.token, this);
  }

  get readonly(): boolean {
    return this.ro;
  }

  /** A client may give up write access for the rest of its connection, never regain it. */
  restrictToReadOnly(): void {
    this.ro = true;
  }

  get isLocal(): boolean {
    return this.transport === 'unix';
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Disconnects the client (admin client-disconnect, shutdown). */
  close(): void {
    if (this.closed) return;
    this.socket.destroy();
  }

  /**
   * Reads the connection again if HTTP/2 stopped reading it. Node's http2
   * stops for good once nghttp2 has ended a session (the GOAWAY it sends
   * after a protocol error) and so never sees the peer close: the socket,
   * its fd and the client's slot would stay until keepalive, or forever
   * where keepalive is off (fuzz.test.ts). Reading again lets the EOF
   * through; nghttp2 ignores the bytes before it. A connection being read
   * already is left as it is (libuv answers EALREADY).
   */
  unstall(): void {
    const h = (this.grpcSocket as unknown as { _handle?: { readStart?: () => number } | null })._handle;
    if (!this.grpcSocket.destroyed && h?.readStart) h.readStart();
  }

  /** Runs `fn` once the connection is gone (virtlockd releases the owner's locks). */
  onClose(fn: () => void): void {
    if (this.closed) queueMicrotask(fn);
    else this.closeHandlers.push(fn);
  }

  private closeHandlers: (() => void)[] = [];

  /** Called by the server once the socket is gone. */
  forget(): void {
    if (this.closed) return;
    this.closed = true;
    // Only our own entry: a client restored under the same token may own it now.
    if (byToken.get(this.token) === this) byToken.delete(this.token);
    for (const fn of this.closeHandlers.splice(0)) fn();
  }

  /** libvirt's client-info parameters, as the transport provides them. */
  info(): TypedValue[] {
    const out: TypedValue[] = [{ field: 'readonly', value: this.readonly, type: 'boolean' }];
    const id = this.identity;
    if (!this.isLocal) {
      if (id.sockAddr) out.push({ field: 'sock_addr', value: id.sockAddr, type: 'string' });
      if (id.x509DName) out.push({ field: 'tls_x509_dname', value: id.x509DName, type: 'string' });
      return out;
    }
    if (id.uid !== undefined) out.push({ field: 'unix_user_id', value: id.uid, type: 'int' });
    if (id.userName) out.push({ field: 'unix_user_name', value: id.userName, type: 'string' });
    if (id.gid !== undefined) out.push({ field: 'unix_group_id', value: id.gid, type: 'int' });
    if (id.groupName) out.push({ field: 'unix_group_name', value: id.groupName, type: 'string' });
    if (id.pid !== undefined) out.push({ field: 'unix_process_id', value: id.pid, type: 'int' });
    return out;
  }
}
