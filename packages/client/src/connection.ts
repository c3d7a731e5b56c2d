// One client connection: one HTTP/2 connection to one daemon socket, the
// way one libvirt connection is one socket. Calls come back as results or
// as VirtErrors carrying libvirt's code, domain and wording.
import * as grpc from '@grpc/grpc-js';
import { VirtError, CERT_REASON } from '@virtd/errors';
import { fromStatus } from '@virtd/protocol/status';
import { ALL_METHODS } from '@virtd/protocol/methods';

export interface Target {
  /** grpc-js target: unix:///path, or host:port. */
  readonly address: string;
  /** What error messages call the endpoint: the socket path or host:port. */
  readonly description: string;
  readonly credentials: grpc.ChannelCredentials;
  /** TLS: the name the server certificate must carry. */
  readonly serverName?: string;
}

export const unixTarget = (socket: string): Target => ({
  address: `unix://${socket}`,
  description: socket,
  credentials: grpc.credentials.createInsecure(),
});

/** libvirt's message-size limit applies to clients too. */
const MESSAGE_MAX_BYTES = 32 * 1024 * 1024;

const STRERROR: Record<string, string> = {
  ENOENT: 'No such file or directory',
  ECONNREFUSED: 'Connection refused',
  EACCES: 'Permission denied',
  ECONNRESET: 'Connection reset by peer',
  EPIPE: 'Broken pipe',
  ETIMEDOUT: 'Connection timed out',
  EHOSTUNREACH: 'No route to host',
  ENOTSOCK: 'Socket operation on non-socket',
};

/**
 * Why Node refused a server certificate, in libvirt's (GnuTLS's) words, or
 * undefined when the failure was something else. Node's messages are
 * OpenSSL's; the names are the server's as the URI gave it.
 */
function certificateProblem(details: string, target: Target): string | undefined {
  if (/ERR_TLS_CERT_ALTNAME_INVALID|does not match certificate's altnames/.test(details)) {
    return `Certificate [session] owner does not match the hostname ${target.serverName ?? target.description.replace(/:\d+$/, '')}`;
  }
  if (/self[- ]signed certificate|unable to get (local )?issuer certificate|unable to verify the first certificate/.test(details)) {
    return `Certificate failed validation: ${CERT_REASON.UNKNOWN_ISSUER}`;
  }
  if (/certificate revoked/.test(details)) return `Certificate failed validation: ${CERT_REASON.REVOKED}`;
  if (/certificate (has expired|is not yet valid)|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|certificate signature failure/.test(details)) {
    return `Certificate failed validation: ${CERT_REASON.NOT_TRUSTED}`;
  }
  return undefined;
}

/** A transport failure in libvirt's words ("Failed to connect socket to '…': …"). */
export function connectionError(e: grpc.ServiceError, target: Target): VirtError {
  const details = e.details ?? '';
  const problem = certificateProblem(details, target);
  if (problem) {
    return new VirtError('AUTH_FAILED', 'RPC', 'Failed to verify peer\'s certificate', { warnings: [`Certificate check failed ${problem}`] });
  }
  const m = /connect (E[A-Z]+)/.exec(details);
  if (m) {
    const why = STRERROR[m[1]!] ?? m[1]!;
    return VirtError.raw('SYSTEM_ERROR', 'RPC', `Failed to connect socket to '${target.description}': ${why}`);
  }
  return VirtError.raw('SYSTEM_ERROR', 'RPC', `Cannot talk to '${target.description}': ${details || e.message}`);
}

type GenericClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

export class Connection {
  readonly target: Target;
  private readonly clients = new Map<grpc.ServiceDefinition, GenericClient>();
  private readonly channel: grpc.Channel;

  constructor(target: Target, options: grpc.ChannelOptions = {}) {
    this.target = target;
    // One channel shared by every service client: one connection per Connection.
    this.channel = new grpc.Channel(target.address, target.credentials, {
      'grpc.max_receive_message_length': MESSAGE_MAX_BYTES,
      'grpc.max_send_message_length': MESSAGE_MAX_BYTES,
      'grpc.enable_retries': 0,
      // grpc-js shares connections between channels to the same target by
      // default; one Connection must be one transport connection, as one
      // libvirt connection is one socket.
      'grpc.use_local_subchannel_pool': 1,
      ...(target.serverName ? { 'grpc.ssl_target_name_override': target.serverName, 'grpc.default_authority': target.serverName } : {}),
      ...options,
    });
  }

  private client(def: grpc.ServiceDefinition): GenericClient {
    let c = this.clients.get(def);
    if (!c) {
      const Ctor = grpc.makeGenericClientConstructor(def, 'virtd');
      c = new Ctor(this.target.address, this.target.credentials, { channelOverride: this.channel }) as unknown as GenericClient;
      this.clients.set(def, c);
    }
    return c;
  }

  /** A unary call; resolves with the reply or rejects with a VirtError. */
  unary<Req, Res>(def: grpc.ServiceDefinition, method: string, request: Req, opts: { deadlineMs?: number } = {}): Promise<Res> {
    const c = this.client(def);
    const callOpts: grpc.CallOptions = opts.deadlineMs ? { deadline: Date.now() + opts.deadlineMs } : {};
    return new Promise((resolve, reject) => {
      (c[method] as (r: Req, m: grpc.Metadata, o: grpc.CallOptions, cb: grpc.requestCallback<Res>) => void)(
        request, new grpc.Metadata(), callOpts,
        (err, res) => (err ? reject(this.error(err, def[method]?.path)) : resolve(res as Res)),
      );
    });
  }

  /** A server-streaming call. */
  serverStream<Req, Res>(def: grpc.ServiceDefinition, method: string, request: Req): grpc.ClientReadableStream<Res> {
    const c = this.client(def);
    return (c[method] as (r: Req) => grpc.ClientReadableStream<Res>)(request);
  }

  /** A service error as the VirtError the caller should see. */
  error(err: grpc.ServiceError, path?: string): VirtError {
    const carriesVirtError = err.metadata?.get('virt-error-code').length;
    if (!carriesVirtError && err.code === grpc.status.UNAVAILABLE) return connectionError(err, this.target);
    // A daemon that does not serve the API at all (virtqemud asked for secrets):
    // libvirt's words for a driver without the function.
    if (!carriesVirtError && err.code === grpc.status.UNIMPLEMENTED && path) {
      return new VirtError('NO_SUPPORT', 'NONE', ALL_METHODS[path]?.api ?? path);
    }
    return fromStatus(err);
  }

  private rawClient: grpc.Client | undefined;

  /** A generic client on this connection's channel, for calls by path with raw bytes. */
  raw(): grpc.Client {
    return (this.rawClient ??= new grpc.Client(this.target.address, this.target.credentials, { channelOverride: this.channel }));
  }

  /** Whether the channel currently has a live connection. */
  get connected(): boolean {
    return this.channel.getConnectivityState(false) === grpc.connectivityState.READY;
  }

  close(): void {
    this.rawClient?.close();
    for (const c of this.clients.values()) c.close();
    this.channel.close();
  }
}
