// A server in libvirt's sense (virNetServer): a name, its services (the
// listeners of one role each), its clients, its limits and worker pool.
// Each role has its own grpc.Server fed through createConnectionInjector:
// the read-only one refuses write methods, so privilege is the instance a
// connection lands on, never a per-call check of who the caller is.
// Servers of daemons that re-exec in place (virtlogd, virtlockd) put an
// HTTP/2 relay between each client socket and gRPC, so a connection can be
// quiesced, written into the state file and resumed by the new image.
import * as grpc from '@grpc/grpc-js';
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { peerCred, userName, groupName, socketPair, setCloexec, closeFd } from '@virtd/posix';
import { VirtError } from '@virtd/errors';
import { clientLimitsProblem } from '@virtd/conf';
import type { Logger } from 'pino';
import type { MethodInfo } from '@virtd/protocol';
import { Client, clientForPeer, type ClientIdentity } from './client.js';
import { fdBudget, isFdShortage, type Listener } from './listener.js';
import type { Program, CallContext, SurfaceCall } from './program.js';
import { WorkerPool, type PoolLimits } from './workers.js';
import { toStatus, asVirtError, RelayedStatus } from '@virtd/protocol/status';
import type { TlsEndpoint } from './tls.js';
import { H2Relay, type RelayState } from './resumable.js';
import { sniffConnection, type FdHandoff } from './fd-handoff.js';
import { Listener as ListenerClass } from './listener.js';
import { KEEPALIVE_NEVER, type ServerState, type ServiceState, type ClientState } from './exec-state.js';

export type Role = 'rw' | 'ro' | 'admin';

const readOnlyDenied = (info: MethodInfo): VirtError =>
  new VirtError('OPERATION_DENIED', 'RPC', `read only access prevents ${info.api ?? `${info.service}.${info.method}`}`);

/** How often connections HTTP/2 gave up reading are read again, to see their peer go. */
const UNSTALL_INTERVAL_MS = 1000;

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
  /** Connections survive an in-place re-exec (through an HTTP/2 relay each). */
  readonly resumable?: boolean;
}

export interface ServiceOptions {
  readonly tls?: TlsEndpoint;
  /** UNIX peers must have this uid (admin sockets, session mode, virtlogd/virtlockd). */
  readonly requiredUid?: number;
  /** Connections may also redeem fd tickets (see fd-handoff.ts). */
  readonly fdHandoff?: FdHandoff;
}

interface Service {
  readonly role: Role;
  readonly listeners: Listener[];
  readonly opts: ServiceOptions;
}

/** The fd budget is per process; its log lines come once, from the first server. */
let fdBudgetLogged = false;
function logFdBudget(log: Logger): void {
  if (fdBudgetLogged) return;
  fdBudgetLogged = true;
  fdBudget.on('exhausted', (u) => log.warn({ fdsInUse: u.used, fdLimit: u.limit },
    `too many open files (${u.used} of ${u.limit}): stopped accepting connections until some are closed`));
  fdBudget.on('recovered', (u) => log.info({ fdsInUse: u.used, fdLimit: u.limit }, 'file descriptors available again: accepting connections'));
}

/** A connection's claim on the limits, released exactly once when it goes. */
interface Slot { anonymous: boolean; released: boolean }

export interface ServerEvents {
  clients: [count: number];
  /** A client was admitted (or restored after a re-exec). */
  client: [client: Client];
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
  /** Accepting paused for a re-exec. */
  private quiesced = false;
  /** Set by close(): nothing more is admitted. */
  private stopped = false;
  private closing: Promise<void> | undefined;
  /** The role (service) each client came in through, by client id. */
  private readonly roles = new Map<number, Role>();
  /** Relays of resumable connections, by client id. */
  private readonly relays = new Map<number, H2Relay>();
  /** Connections still being told apart (fd hand-over or HTTP/2), with their cancel. */
  private readonly sniffing = new Map<net.Socket, () => void>();
  /** Set by start(): looks for connections HTTP/2 stopped reading (Client.unstall). */
  private unstaller: NodeJS.Timeout | undefined;

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
    logFdBudget(log);
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
    this.unstaller ??= setInterval(() => {
      for (const c of this.clientsById.values()) c.unstall();
    }, UNSTALL_INTERVAL_MS);
    this.unstaller.unref();
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
    this.stopped = true;
    clearInterval(this.unstaller);
    for (const cancel of this.sniffing.values()) cancel();
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
    try {
      this.acceptUnchecked(service, listener, sock);
    } catch (e) {
      // A bug or a resource shortage costs this connection, never the daemon.
      this.log.error({ err: e, listener: listener.address }, 'cannot take the connection; dropping it');
      sock.destroy();
    }
  }

  private acceptUnchecked(service: Service, listener: Listener, sock: net.Socket): void {
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
    if (service.opts.fdHandoff) {
      this.sniff(service, service.opts.fdHandoff, sock, identity);
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

  /** Hand-over connections are served at once; HTTP/2 ones are admitted. */
  private sniff(service: Service, handoff: FdHandoff, sock: net.Socket, identity: ClientIdentity): void {
    // A hand-over client may half-close once its line is sent and still
    // wait for the answer; Node would shut our side at its EOF, before we
    // answered (EPIPE: fuzz.test.ts). So our side stays open until the
    // answer is out, and an EOF that leaves nothing to answer (an
    // undecided or unfinished line) drops the connection.
    sock.allowHalfOpen = true;
    let http2 = false;
    sock.once('end', () => setImmediate(() => { if (!http2 && !sock.destroyed) sock.destroy(); }));
    const s = sniffConnection(sock);
    this.sniffing.set(sock, s.cancel);
    void s.result.then((r) => {
      this.sniffing.delete(sock);
      try {
        if (r.kind === 'fd-handoff') handoff.serve(sock, r.head, identity.uid);
        else if (r.kind === 'other') {
          // HTTP/2 closes at the peer's EOF, as any client does.
          http2 = true;
          sock.allowHalfOpen = false;
          if (sock.readableEnded) sock.end();
          this.admit(service, sock, identity);
        }
      } catch (e) {
        this.log.error({ err: e }, 'cannot serve the connection; dropping it');
        sock.destroy();
      }
    });
  }

  private identify(listener: Listener, sock: net.Socket): ClientIdentity {
    if (listener.transport === 'unix') return unixIdentity(socketFd(sock));
    return { sockAddr: `${sock.remoteAddress};${sock.remotePort}` };
  }

  private admit(service: Service, sock: net.Socket, identity: ClientIdentity, transport = service.listeners[0]!.transport): void {
    if (this.stopped || sock.destroyed) {
      sock.destroy();
      return;
    }
    try {
      this.attach(service.role, sock, {
        id: this.nextClientId++, transport, readonly: service.role === 'ro', identity,
      });
    } catch (e) {
      // The relay's socketpair needs two more descriptors than the accept did.
      if (isFdShortage(e)) fdBudget.shortage();
      this.log.warn({ err: e }, 'cannot serve the connection; dropping it');
      sock.destroy();
    }
  }

  /** Makes a Client of a connection and hands it to gRPC (through a relay when resumable). */
  private attach(role: Role, sock: net.Socket, o: {
    id: number; transport: Listener['transport']; readonly: boolean; identity: ClientIdentity;
    connectTime?: number; relay?: RelayState;
  }): Client {
    let grpcSocket = sock;
    let relay: H2Relay | undefined;
    if (this.config.resumable) ({ relay, grpcSocket } = this.relayFor(sock, o.relay));
    const client = new Client({
      id: o.id, serverName: this.name, transport: o.transport, readonly: o.readonly, identity: o.identity,
      socket: sock, grpcSocket, ...(o.connectTime !== undefined ? { connectTime: o.connectTime } : {}),
    });
    this.clientsById.set(client.id, client);
    this.roles.set(client.id, role);
    if (relay) this.relays.set(client.id, relay);
    sock.once('close', () => {
      this.clientsById.delete(client.id);
      this.roles.delete(client.id);
      this.relays.delete(client.id);
      client.forget();
      this.log.debug({ client: client.id }, 'client disconnected');
    });
    const id = o.identity;
    this.log.debug({ client: client.id, transport: o.transport, uid: id.uid, peerPid: id.pid, addr: id.sockAddr }, 'client connected');
    this.emit('client', client);
    // Accepted paused (nothing read before the peer check); HTTP/2 takes the
    // handle over synchronously inside injectConnection, so no byte is lost.
    this.injectorFor(role).injectConnection(grpcSocket);
    if (relay) relay.start();
    else sock.resume();
    return client;
  }

  /** A socketpair between the client's relay and gRPC. */
  private relayFor(raw: net.Socket, state: RelayState | undefined): { relay: H2Relay; grpcSocket: net.Socket } {
    const [a, b] = socketPair();
    let inner: net.Socket;
    let grpcSocket: net.Socket;
    try {
      inner = new net.Socket({ fd: a, readable: true, writable: true });
      grpcSocket = new net.Socket({ fd: b, readable: true, writable: true });
    } catch (e) {
      for (const fd of [a, b]) try { closeFd(fd); } catch { /* taken over by a socket */ }
      throw e;
    }
    for (const s of [inner, grpcSocket]) s.on('error', (e) => this.log.debug({ err: e }, 'relay socket error'));
    const relay = new H2Relay(raw, inner, state);
    raw.once('close', () => { inner.destroy(); grpcSocket.destroy(); });
    // gRPC dropping the connection (shutdown, client-disconnect) drops the client.
    grpcSocket.once('close', () => raw.destroy());
    return { relay, grpcSocket };
  }

  // ---- re-exec -----------------------------------------------------------

  /**
   * Stops accepting and brings every connection to a point where it can be
   * written down: no call in flight, nothing half-sent. Rejects after
   * timeoutMs (the caller then unquiesce()s and carries on).
   */
  async quiesce(timeoutMs: number): Promise<void> {
    this.quiesced = true;
    this.updateAccepting();
    // Undecided connections become relayed clients; the relay keeps what they sent.
    for (const cancel of this.sniffing.values()) cancel();
    await new Promise((resolve) => setImmediate(resolve));
    await Promise.all([...this.relays.values()].map((r) => r.quiesce(timeoutMs)));
  }

  unquiesce(): void {
    this.quiesced = false;
    for (const r of this.relays.values()) r.unquiesce();
    this.updateAccepting();
  }

  /** The fds a re-exec keeps for this server: listeners and client sockets. */
  fds(): number[] {
    return [
      ...this.services.flatMap((s) => s.listeners.map((l) => l.fd)),
      ...[...this.clientsById.values()].map((c) => socketFd(c.socket)),
    ];
  }

  /** libvirt's SERVER object for the state file (after quiesce()). */
  toState(privateData: (c: Client) => Record<string, unknown> = () => ({})): ServerState {
    const w = this.workers.params();
    const ka = this.config.keepalive;
    const clients: ClientState[] = [];
    for (const c of this.clientsById.values()) {
      const relay = this.relays.get(c.id);
      clients.push({
        id: c.id, auth: 0, auth_pending: false, readonly: c.readonly, nrequests_max: this.config.maxClientRequests,
        conn_time: c.connectTime,
        sock: { fd: socketFd(c.socket), errfd: -1, pid: 0, isClient: true, unlinkUNIX: false, transport: c.transport },
        privateData: privateData(c),
        role: this.roleOf(c), identity: c.identity,
        ...(relay ? { relay: relay.snapshot() } : {}),
      });
    }
    return {
      min_workers: w.minWorkers, max_workers: w.maxWorkers, priority_workers: w.prioWorkers,
      max_clients: this.limits.maxClients, max_anonymous_clients: this.limits.maxAnonymousClients,
      keepaliveInterval: ka.interval < 0 ? KEEPALIVE_NEVER : ka.interval, keepaliveCount: ka.count,
      next_client_id: this.nextClientId,
      services: this.services.map((s): ServiceState => ({
        auth: 0, readonly: s.role === 'ro', nrequests_client_max: this.config.maxClientRequests,
        socks: s.listeners.map((l) => l.toState()), role: s.role,
        ...(s.opts.requiredUid !== undefined ? { requiredUid: s.opts.requiredUid } : {}),
      })),
      clients,
    };
  }

  /**
   * Takes back what toState() wrote, in the new image: limits, listeners
   * and every client, whose next call then simply works.
   */
  restore(st: ServerState, hooks: {
    serviceOptions?: (role: Role) => ServiceOptions;
    restoreClient?: (c: Client, privateData: Record<string, unknown>) => void;
  } = {}): void {
    this.setClientLimits({ maxClients: st.max_clients, maxAnonymousClients: st.max_anonymous_clients ?? st.max_clients });
    try {
      this.workers.setLimits({ minWorkers: st.min_workers, maxWorkers: st.max_workers, prioWorkers: st.priority_workers });
    } catch (e) {
      this.log.warn({ err: e }, 'keeping the configured worker limits');
    }
    this.nextClientId = st.next_client_id || 1;
    for (const svc of st.services) {
      const role: Role = svc.role ?? (svc.readonly ? 'ro' : 'rw');
      this.addService(role, svc.socks.map((k) => ListenerClass.fromState(k)), {
        ...(hooks.serviceOptions?.(role) ?? {}),
        ...(svc.requiredUid !== undefined ? { requiredUid: svc.requiredUid } : {}),
      });
    }
    for (const c of st.clients) {
      const fd = c.sock.fd;
      setCloexec(fd, true);
      const sock = new net.Socket({ fd, readable: true, writable: true });
      sock.pause();
      const slot: Slot = { anonymous: false, released: false };
      this.nconn++;
      sock.once('close', () => this.release(slot));
      sock.on('error', (e) => this.log.debug({ err: e }, 'client socket error'));
      let identity: ClientIdentity = c.identity ?? {};
      try { identity = unixIdentity(fd); } catch { /* keep what the state says */ }
      const client = this.attach(c.role ?? (c.readonly ? 'ro' : 'rw'), sock, {
        id: c.id, transport: c.sock.transport ?? 'unix', readonly: c.readonly, identity,
        ...(c.conn_time !== undefined ? { connectTime: c.conn_time } : {}),
        ...(c.relay !== undefined ? { relay: c.relay as RelayState } : {}),
      });
      hooks.restoreClient?.(client, c.privateData ?? {});
    }
    this.emit('clients', this.nconn);
  }

  private roleOf(c: Client): Role {
    return this.roles.get(c.id) ?? 'rw';
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
    // Its descriptor is free now: accepting may go on if we had run out.
    fdBudget.recheck();
    this.emit('clients', this.nconn);
  }

  /** Pauses every listener at a limit and resumes them below it, like libvirt. */
  private updateAccepting(): void {
    const full = this.nconn >= this.limits.maxClients
      || (this.limits.maxAnonymousClients > 0 && this.nanon >= this.limits.maxAnonymousClients);
    const accept = this.running && !this.quiesced && !full;
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
      // Nothing reads channelz; left on, grpc-js counts and timestamps every call for it.
      'grpc.enable_channelz': 0,
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
    return new Context(call, info, client);
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

/**
 * A call's context. Its AbortSignal is made only when a handler asks for
 * it: grpc-js (≥1.10) reports every call as 'cancelled' once its stream
 * closes, finished or not, and an AbortController made and aborted per
 * call (a DOMException with a stack, an event dispatch) was about a fifth
 * of the daemon's CPU per unary call. Unary handlers never look at it.
 */
class Context implements CallContext {
  readonly request: unknown;
  private ac: AbortController | undefined;
  private cancelled = false;

  constructor(readonly call: SurfaceCall, readonly method: MethodInfo, readonly client: Client) {
    this.request = 'request' in call ? call.request : undefined;
    (call as NodeJS.EventEmitter).once('cancelled', () => {
      this.cancelled = true;
      this.ac?.abort();
    });
  }

  get signal(): AbortSignal {
    if (!this.ac) {
      this.ac = new AbortController();
      if (this.cancelled) this.ac.abort();
    }
    return this.ac.signal;
  }
}

const socketFd = (sock: net.Socket): number => (sock as unknown as { _handle: { fd: number } })._handle.fd;

/** Who is on the other end of a UNIX socket (SO_PEERCRED). */
function unixIdentity(fd: number): ClientIdentity {
  const cred = peerCred(fd);
  return {
    uid: cred.uid, gid: cred.gid, pid: cred.pid,
    userName: userName(cred.uid), groupName: groupName(cred.gid),
  };
}
