// A program is one gRPC service a server offers (libvirt calls them
// programs: REMOTE, ADMIN, LOG, LOCK). The server wraps every handler with
// client lookup, role access, the worker pool and error mapping; a handler
// only sees a CallContext.
import type * as grpc from '@grpc/grpc-js';
import type { MethodInfo } from '@virtd/protocol';
import type { Client } from './client.js';

/** Any grpc-js server call (unary, streaming or bidi). */
export type SurfaceCall =
  | grpc.ServerUnaryCall<unknown, unknown>
  | grpc.ServerWritableStream<unknown, unknown>
  | grpc.ServerReadableStream<unknown, unknown>
  | grpc.ServerDuplexStream<unknown, unknown>;

export interface CallContext<Req = unknown> {
  /** The decoded request; undefined for client-streaming calls. */
  readonly request: Req;
  readonly client: Client;
  readonly method: MethodInfo;
  /** The grpc-js call, for streaming handlers and metadata. */
  readonly call: SurfaceCall;
  /** Aborted when the client cancels or disconnects. */
  readonly signal: AbortSignal;
}

/**
 * Unary handlers return the response. Server-streaming handlers write to
 * `call` and resolve when the stream is complete; the wrapper ends it.
 * Bidi handlers drive `call` themselves and resolve when done.
 */
export type Handler = (ctx: CallContext<never>) => unknown;

export interface Program {
  /** Short name used in logs and the admin API, e.g. 'admin', 'secret'. */
  readonly name: string;
  readonly service: grpc.ServiceDefinition;
  /** Access and priority per method path, generated from the .proto. */
  readonly methods: Readonly<Record<string, MethodInfo>>;
  /** Handlers by the method names of `service`. */
  readonly handlers: Readonly<Record<string, Handler>>;
}
