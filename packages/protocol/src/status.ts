// The one place errors become gRPC statuses (servers) and gRPC statuses
// become errors again (clients). Every error a client sees
// carries libvirt's code, domain and level in the trailers, so clients (and
// later libvirt's own wire protocol) map them one to one.
import * as grpc from '@grpc/grpc-js';
import { VirtError, Domain, codeName, type CodeName, type DomainName } from '@virtd/errors';

export const META_CODE = 'virt-error-code';
export const META_DOMAIN = 'virt-error-domain';
export const META_LEVEL = 'virt-error-level';

const STATUS: Partial<Record<CodeName, grpc.status>> = {
  OPERATION_DENIED: grpc.status.PERMISSION_DENIED,
  ACCESS_DENIED: grpc.status.PERMISSION_DENIED,
  AUTH_FAILED: grpc.status.UNAUTHENTICATED,
  AUTH_UNAVAILABLE: grpc.status.UNAUTHENTICATED,
  NO_SERVER: grpc.status.NOT_FOUND,
  NO_CLIENT: grpc.status.NOT_FOUND,
  NO_SECRET: grpc.status.NOT_FOUND,
  INVALID_ARG: grpc.status.INVALID_ARGUMENT,
  INVALID_SECRET: grpc.status.INVALID_ARGUMENT,
  XML_ERROR: grpc.status.INVALID_ARGUMENT,
  ARGUMENT_UNSUPPORTED: grpc.status.INVALID_ARGUMENT,
  OVERFLOW: grpc.status.OUT_OF_RANGE,
  OPERATION_INVALID: grpc.status.FAILED_PRECONDITION,
  INVALID_CONN: grpc.status.FAILED_PRECONDITION,
  RESOURCE_BUSY: grpc.status.ABORTED,
  NO_SUPPORT: grpc.status.UNIMPLEMENTED,
  OPERATION_UNSUPPORTED: grpc.status.UNIMPLEMENTED,
  NO_CONNECT: grpc.status.UNAVAILABLE,
  OPERATION_TIMEOUT: grpc.status.DEADLINE_EXCEEDED,
  CONFIG_UNSUPPORTED: grpc.status.FAILED_PRECONDITION,
};

/** A grpc-js ServiceError-shaped status object for a VirtError. */
export function toStatus(err: VirtError): grpc.StatusObject & { code: grpc.status } {
  const metadata = new grpc.Metadata();
  metadata.set(META_CODE, String(err.number));
  metadata.set(META_DOMAIN, String(err.domainNumber));
  metadata.set(META_LEVEL, String(err.level));
  return { code: STATUS[err.code] ?? grpc.status.INTERNAL, details: err.message, metadata };
}

/** Anything thrown by a handler, as the VirtError the client will see. */
export function asVirtError(e: unknown): VirtError {
  if (e instanceof VirtError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new VirtError('INTERNAL_ERROR', 'NONE', msg, { cause: e });
}

/**
 * The client side of the mapping: a gRPC error back into a VirtError,
 * using the trailers when present and the gRPC code otherwise.
 */
export function fromStatus(e: { code?: number; details?: string; message?: string; metadata?: grpc.Metadata }): VirtError {
  const num = Number(e.metadata?.get(META_CODE)[0]);
  const dom = Number(e.metadata?.get(META_DOMAIN)[0]);
  const name = Number.isFinite(num) ? codeName(num) : undefined;
  const domain = (Object.entries(Domain).find(([, v]) => v === dom)?.[0] ?? 'RPC') as DomainName;
  const message = e.details ?? e.message ?? 'unknown error';
  if (name) return VirtError.raw(name, domain, message);
  // No trailers: a transport-level failure, reported as libvirt's RPC error.
  return VirtError.raw(e.code === grpc.status.PERMISSION_DENIED ? 'OPERATION_DENIED' : 'RPC', 'RPC', message);
}


/**
 * A status relayed unchanged from another daemon (virtproxyd): code,
 * details and trailers go back to the caller exactly as received.
 */
export class RelayedStatus extends Error {
  readonly code: grpc.status;
  readonly details: string;
  readonly metadata: grpc.Metadata;
  constructor(e: { code: grpc.status; details?: string; metadata?: grpc.Metadata }) {
    super(e.details ?? '');
    this.name = 'RelayedStatus';
    this.code = e.code;
    this.details = e.details ?? '';
    this.metadata = e.metadata ?? new grpc.Metadata();
  }
}
