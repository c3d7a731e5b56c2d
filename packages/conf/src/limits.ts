// The one cross-field rule on client limits, shared by config load, server
// construction and the admin set-limits call (libvirt checks the same rule
// in virNetServerNew, its exec-restart loader and virNetServerSetClientLimits).

/**
 * Why a server cannot have these limits, or undefined if it can.
 * 0 anonymous clients means "no separate limit" and is always fine.
 */
export function clientLimitsProblem(maxClients: number, maxAnonymousClients: number): string | undefined {
  if (maxAnonymousClients > maxClients) {
    return 'The overall maximum number of clients must not be less than the number of clients waiting for authentication';
  }
  return undefined;
}
