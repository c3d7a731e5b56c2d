// A server in libvirt's sense (virNetServer): a name, its services (the
// listeners of one role each), its clients, its limits and worker pool.
// Each role has its own grpc.Server fed through createConnectionInjector:
// the read-only one refuses write methods, so privilege is the instance a
// connection lands on, never a per-call check of who the caller is.
import * as grpc from '@grpc/grpc-js';
import type net from 'node:net';
import { EventEmitter } from 'node:events';
import { peerCred, userName, groupName } from '@virtd/posix';
import { VirtError } from '@virtd/errors';
import { clientLimitsProblem } from '@virtd/conf';
import type { Logger } from 'pino';
import type { MethodInfo } from '@virtd/protocol';
import { Client, clientForPeer, type ClientIdentity } from './client.js';
import type { Listener } from './listener.js';
import type { Program, CallContext, SurfaceCall } from './program.js';
import { WorkerPool, type PoolLimits } from './workers.js';
import { toStatus, asVirtError, RelayedStatus } from '@virtd/protocol/status';
import type { TlsEndpoint } from './tls.js';

export type Role = 'rw' | 'ro' | 'admin';

const readOnlyDenied = (info: MethodInfo): VirtError =>
  new VirtError('OPERATION_DENIED', 'RPC', `read only access prevents ${info.api ?? `${info.service}.${info.method}`}`);

/** libvirt's limit on one RPC message, payload and framing included. */
export const MESSAGE_MAX_BYTES = 32 * 1024 * 1024;

export interface ClientLimits {
  /** max_clients: connections at once, all services of the server. */
  readonly maxClients: number;
  /** max_anonymous_clients: not yet authenticated (TLS handshake); 0 = no limit. */
  readonly maxAnonymousClients: number;
}

export interface Keepalive {
  /** Seconds between pings to a silent client; -1 never pings. */
  readonly interval: number;
  /** Unanswered pings before the client is dropped. */
  readonly count: number;
}

export interface ServerConfig {
  readonly name: string;
  readonly limits: ClientLimits;
  readonly workers: PoolLimits;
  /** Calls in flight per client; more wait (HTTP/2 stream limit). */
  readonly maxClientRequests: number;
  readonly keepalive: Keepalive;
}

export interface ServiceOptions {
  readonly tls?: TlsEndpoint;
  /** UNIX peers must have this uid (admin sockets, session mode, virtlogd/virtlockd). */
  readonly requiredUid?: number;
}

interface Service {
  readonly role: Role;
  readonly listeners: Listener[];
  readonly opts: ServiceOptions;
}

/** A connection's claim on the limits, released exactly once when it goes. */
interface Slot { anonymous: boolean; released: boolean }

export interface ServerEvents {
  clients: [count: number];
  /** No unary call in flight any more (emitted when the count drops to 0). */
  idle: [];
}

export class Server extends EventEmitter<ServerEvents> {
  readonly name: string;
  readonly workers: WorkerPool;
  private limits: ClientLimits;
  private readonly config: ServerConfig;
  private readonly log: Logger;
  private readonly programs: readonly Program[];
  private readonly services: Service[] = [];
  private readonly grpcServers = new Map<Role, grpc.Server>();
  private readonly injectors = new Map<Role, grpc.ConnectionInjector>();
  private readonly clientsById = new Map<number, Client>();
  /** Raw connections counted against the limits, admitted or not. */
  private nconn = 0;
  private nanon = 0;
  private nextClientId = 1;
  /** Unary calls running or queued for a worker; shutdown waits for them. */
  private inflight = 0;
  /** Set by start(); listeners accept only between start() and close(). */
  private running = false;
  private closing: Promise<void> | undefined;

  constructor(config: ServerConfig, programs: readonly Program[], log: Logger) {
    super();
    const problem = clientLimitsProblem(config.limits.maxClients, config.limits.maxAnonymousClients);
    if (problem) throw new VirtError('INVALID_ARG', 'RPC', problem);
    this.name = config.name;
    this.config = config;
    this.limits = config.limits;
    this.workers = new WorkerPool(config.workers);
    this.programs = programs;
    this.log = log;
  }

  /** Adds the listeners of one role. */
  addService(role: Role, listeners: Listener[], opts: ServiceOptions = {}): void {
    const service: Service = { role, listeners, opts };
    this.services.push(service);
    this.injectorFor(role);
    for (const l of listeners) {
      l.on('connection', (sock) => this.accept(service, l, sock));
      l.on('error', (e) => this.log.error({ err: e, listener: l.address }, 'listener error'));
    }
  }

  /** Every listener, for logs and readiness. */
  boundListeners(): { role: Role; listener: Listener }[] {
    return this.services.flatMap((s) => s.listeners.map((listener) => ({ role: s.role, listener })));
  }

  /** Begins accepting on every listener. */
  start(): void {
    this.running = true;
    this.updateAccepting();
  }

  get clientCount(): number {
    return this.nconn;
  }

  get anonymousCount(): number {
    return this.nanon;
  }

  clients(): Client[] {
    return [...this.clientsById.values()];
  }

  client(id: number): Client | undefined {
    return this.clientsById.get(id);
  }

  clientLimits(): ClientLimits {
    return this.limits;
  }

  /** Changes the limits at once (admin srv-clients-set), with the one cross-field rule. */
  setClientLimits(next: Partial<ClientLimits>): void {
    const merged: ClientLimits = {
      maxClients: next.maxClients ?? this.limits.maxClients,
      maxAnonymousClients: next.maxAnonymousClients ?? this.limits.maxAnonymousClients,
    };
    const problem = clientLimitsProblem(merged.maxClients, merged.maxAnonymousClients);
    if (problem) throw new VirtError('INVALID_ARG', 'RPC', problem);
    this.limits = merged;
    this.updateAccepting();
  }

  /** TLS endpoints of this server, for srv-update-tls. */
  tlsEndpoints(): TlsEndpoint[] {
    return this.services.flatMap((s) => (s.opts.tls ? [s.opts.tls] : []));
  }

  /**
   * Stops accepting, disconnects every client and lets in-flight calls end.
   * Repeat calls share one promise.
   */
  close(graceMs = 0): Promise<void> {
    this.closing ??= this.doClose(graceMs);
    return this.closing;
  }

  private async doClose(graceMs: number): Promise<void> {
    this.running = false;
    for (const s of this.services) for (const l of s.listeners) l.close();
    // GOAWAY: clients start no new calls. Calls already running may finish
    // within the grace period; a silent or stopped peer cannot hold us up,
    // since every client is disconnected after it.
    for (const g of this.grpcServers.values()) g.tryShutdown(() => {});
    if (this.inflight > 0 && graceMs > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, graceMs);
        this.once('idle', () => { clearTimeout(t); resolve(); });
      });
    }
    for (const c of this.clientsById.values()) c.close();
    for (const g of this.grpcServers.values()) g.forceShutdown();
  }

  // ---- connections -------------------------------------------------------

  private accept(service: Service, listener: Listener, sock: net.Socket): void {
    const slot: Slot = { anonymous: !!service.opts.tls, released: false };
    this.nconn++;
    if (slot.anonymous) this.nanon++;
    this.updateAccepting();
    this.emit('clients', this.nconn);
    sock.once('close', () => this.release(slot));
    sock.on('error', (e) => this.log.debug({ err: e }, 'client socket error'));

    let identity: ClientIdentity;
    try {
      identity = this.identify(listener, sock);
    } catch (e) {
      this.log.warn({ err: e, listener: listener.address }, 'cannot identify peer; dropping connection');
      sock.destroy();
      return;
    }
    const required = service.opts.requiredUid;
    if (listener.transport === 'unix' && required !== undefined && identity.uid !== required) {
      this.log.warn({ uid: identity.uid, peerPid: identity.pid, listener: listener.address },
        `connection refused: peer uid ${identity.uid} is not ${required}`);
      sock.destroy();
      return;
    }
    const tlsEndpoint = service.opts.tls;
    if (!tlsEndpoint) {
      this.admit(service, sock, identity);
      return;
    }
    tlsEndpoint.handshake(sock, {
      onSecure: (secure, dn) => {
        this.authenticated(slot);
        this.admit(service, secure, { ...identity, ...(dn ? { x509DName: dn } : {}) }, 'tls');
      },
      onReject: (reason) => {
        this.log.warn({ peer: identity.sockAddr }, `TLS client refused: ${reason}`);
      },
    });
  }

  private identify(listener: Listener, sock: net.Socket): ClientIdentity {
    if (listener.transport === 'unix') {
      const fd = (sock as unknown as { _handle: { fd: number } })._handle.fd;
      const cred = peerCred(fd);
      return {
        uid: cred.uid, gid: cred.gid, pid: cred.pid,
        userName: userName(cred.uid), groupName: groupName(cred.gid),
      };
    }
    return { sockAddr: `${sock.remoteAddress};${sock.remotePort}` };
  }

  private admit(service: Service, sock: net.Socket, identity: ClientIdentity, transport = service.listeners[0]!.transport): void {
    if (!this.running || sock.destroyed) {
      sock.destroy();
      return;
    }
    const client = new Client({
      id: this.nextClientId++,
      serverName: this.name,
      transport,
      readonly: service.role === 'ro',
      identity,
      socket: sock,
    });
    this.clientsById.set(client.id, client);
    sock.once('close', () => {
      this.clientsById.delete(client.id);
      client.forget();
      this.log.debug({ client: client.id }, 'client disconnected');
    });
    this.log.debug({ client: client.id, transport, uid: identity.uid, peerPid: identity.pid, addr: identity.sockAddr }, 'client connected');
    // Accepted paused (nothing read before the peer check); HTTP/2 takes the
    // handle over synchronously inside injectConnection, so no byte is lost.
    sock.resume();
    this.injectorFor(service.role).injectConnection(sock);
  }

  private authenticated(slot: Slot): void {
    if (!slot.anonymous || slot.released) return;
    slot.anonymous = false;
    this.nanon--;
    this.updateAccepting();
  }

  private release(slot: Slot): void {
    if (slot.released) return;
    slot.released = true;
    this.nconn--;
    if (slot.anonymous) this.nanon--;
    this.updateAccepting();
    this.emit('clients', this.nconn);
  }

  /** Pauses every listener at a limit and resumes them below it, like libvirt. */
  private updateAccepting(): void {
    const full = this.nconn >= this.limits.maxClients
      || (this.limits.maxAnonymousClients > 0 && this.nanon >= this.limits.maxAnonymousClients);
    const accept = this.running && !full;
    for (const s of this.services) {
      for (const l of s.listeners) {
        if (accept && !l.accepting) l.resume();
        else if (!accept && l.accepting) l.pause();
      }
    }
  }

  // ---- gRPC --------------------------------------------------------------

  private injectorFor(role: Role): grpc.ConnectionInjector {
    let injector = this.injectors.get(role);
    if (injector) return injector;
    const g = new grpc.Server(this.grpcOptions());
    for (const p of this.programs) g.addService(p.service, this.implementation(p, role));
    injector = g.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    this.grpcServers.set(role, g);
    this.injectors.set(role, injector);
    return injector;
  }

  private grpcOptions(): grpc.ServerOptions {
    const ka = this.config.keepalive;
    const opts: grpc.ServerOptions = {
      'grpc.max_receive_message_length': MESSAGE_MAX_BYTES,
      'grpc.max_send_message_length': MESSAGE_MAX_BYTES,
      'grpc.max_concurrent_streams': Math.max(1, this.config.maxClientRequests),
    };
    if (ka.interval > 0) {
      // libvirt drops a peer after about interval × (count + 1) seconds of silence.
      opts['grpc.keepalive_time_ms'] = ka.interval * 1000;
      opts['grpc.keepalive_timeout_ms'] = Math.max(1, ka.count) * ka.interval * 1000;
    }
    return opts;
  }

  /** grpc-js handlers for one program on one role. */
  private implementation(program: Program, role: Role): grpc.UntypedServiceImplementation {
    const impl: grpc.UntypedServiceImplementation = {};
    for (const [name, def] of Object.entries(program.service)) {
      const info = program.methods[def.path];
      const handler = program.handlers[name];
      if (!info || !handler) continue;
      const denied = role === 'ro' && info.access !== 'read' ? readOnlyDenied(info) : undefined;
      impl[name] = def.responseStream || def.requestStream
        ? this.streamHandler(info, handler as (ctx: CallContext) => unknown, denied)
        : this.unaryHandler(info, handler as (ctx: CallContext) => unknown, denied);
    }
    return impl;
  }

  private context(call: SurfaceCall, info: MethodInfo): CallContext | VirtError {
    const client = clientForPeer(call.getPeer());
    if (!client) return new VirtError('INTERNAL_ERROR', 'RPC', 'call on a connection the server does not know');
    // A client that opened read-only (libvirt's VIR_CONNECT_RO) on a full
    // socket gets the read-only socket's answer.
    if (client.readonly && info.access !== 'read') return readOnlyDenied(info);
    const ac = new AbortController();
    (call as NodeJS.EventEmitter).on('cancelled', () => ac.abort());
    return { request: 'request' in call ? call.request : undefined, client, method: info, call, signal: ac.signal };
  }

  private unaryHandler(info: MethodInfo, handler: (ctx: CallContext) => unknown, denied?: VirtError): grpc.handleUnaryCall<unknown, unknown> {
    return (call, callback) => {
      if (denied) { callback(toStatus(denied)); return; }
      const ctx = this.context(call, info);
      if (ctx instanceof VirtError) { callback(toStatus(ctx)); return; }
      this.inflight++;
      this.workers.run(info.priority, () => handler(ctx)).then(
        (res) => callback(null, res ?? {}),
        (e) => callback(e instanceof RelayedStatus ? e : toStatus(this.failed(e, info))),
      ).finally(() => {
        if (--this.inflight === 0) this.emit('idle');
      });
    };
  }

  /** Streams hold no worker: they are subscriptions, not work. */
  private streamHandler(info: MethodInfo, handler: (ctx: CallContext) => unknown, denied?: VirtError): grpc.handleServerStreamingCall<unknown, unknown> {
    return (call) => {
      const fail = (e: VirtError): void => { call.emit('error', toStatus(e)); };
      if (denied) { fail(denied); return; }
      const ctx = this.context(call, info);
      if (ctx instanceof VirtError) { fail(ctx); return; }
      Promise.resolve()
        .then(() => handler(ctx))
        .then(
          () => { if (info.responseStream && !call.writableEnded) call.end(); },
          (e) => (e instanceof RelayedStatus ? call.emit('error', e) : fail(this.failed(e, info))),
        );
    };
  }

  private failed(e: unknown, info: MethodInfo): VirtError {
    const err = asVirtError(e);
    // Errors a driver raised on purpose are the caller's business; anything
    // else is a bug of ours and is logged as one.
    if (err === e) this.log.debug({ method: info.api ?? `${info.service}.${info.method}`, code: err.code }, err.message);
    else this.log.error({ err: e, method: info.api ?? `${info.service}.${info.method}` }, 'call failed unexpectedly');
    return err;
  }
}
