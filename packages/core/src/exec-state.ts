// The state file of an in-place re-exec (virtlogd, virtlockd on SIGUSR1):
// its JSON shapes, after libvirt's, and reading and writing it. Each layer
// has its own serialiser and restorer pair next to its code (Listener,
// Client, Server, the daemon's module); this file only knows the shapes.
// libvirt's keys are kept as it writes them; keys it does not have are ours
// (a libvirt daemon would not read our file anyway: the magic is the pid).
import fs from 'node:fs';
import type { Transport } from './listener.js';
import type { Role } from './server.js';
import type { ClientIdentity } from './client.js';
import type { TicketState } from './fd-handoff.js';

/** libvirt's SOCK. */
export interface SockState {
  fd: number;
  errfd: number;
  pid: number;
  isClient: boolean;
  unlinkUNIX: boolean;
  // Ours:
  transport?: Transport;
  address?: string;
  path?: string;
  backlog?: number;
  activated?: boolean;
}

/** libvirt's SERVICE. */
export interface ServiceState {
  auth: number;
  readonly: boolean;
  nrequests_client_max: number;
  socks: SockState[];
  // Ours:
  role?: Role;
  requiredUid?: number;
}

/** libvirt's CLIENT. */
export interface ClientState {
  id: number;
  auth: number;
  auth_pending: boolean;
  readonly: boolean;
  nrequests_max: number;
  conn_time?: number;
  sock: SockState;
  privateData: Record<string, unknown>;
  // Ours:
  role?: Role;
  identity?: ClientIdentity;
  /** The HTTP/2 relay's state (see resumable.ts). */
  relay?: unknown;
}

/** libvirt's SERVER. */
export interface ServerState {
  min_workers: number;
  max_workers: number;
  priority_workers: number;
  max_clients: number;
  max_anonymous_clients: number;
  keepaliveInterval: number;
  keepaliveCount: number;
  next_client_id: number;
  services: ServiceState[];
  clients: ClientState[];
}

export interface DaemonState {
  daemon: { servers: Record<string, ServerState> };
  magic: string;
  /** Ours: fds handed out by ticket and not yet redeemed. */
  fdTickets?: TicketState[];
  /** Ours: the pid file's descriptor, whose lock is kept across the exec. */
  pidFd?: number;
  /** Ours: children of the old image, reaped by the new one. */
  children?: number[];
  /** The module's own keys (virtlogd's "handler", virtlockd's lockspaces). */
  [key: string]: unknown;
}

/** libvirt stores keepalive interval −1 as an unsigned 32-bit value. */
export const KEEPALIVE_NEVER = 4294967295;

/** libvirt reads at most this much of the state file. */
export const STATE_MAX_BYTES = 10 * 1024 * 1024;

export class StateFileError extends Error {
  constructor(file: string, why: string) {
    super(`cannot use re-exec state file ${file}: ${why}`);
    this.name = 'StateFileError';
  }
}

export type StateRead =
  | { kind: 'none' }
  | { kind: 'foreign'; magic: string }
  | { kind: 'ours'; state: DaemonState };

/**
 * Reads and at once unlinks the state file, whatever it holds. Absent means
 * a cold start; a magic that is not our pid belongs to some other process
 * (a stale file) and is ignored; unreadable or malformed throws.
 */
export function takeStateFile(file: string, pid: number): StateRead {
  let text: string;
  try {
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      const buf = Buffer.alloc(STATE_MAX_BYTES + 1);
      const n = fs.readSync(fd, buf, 0, buf.length, 0);
      if (n > STATE_MAX_BYTES) throw new StateFileError(file, `larger than ${STATE_MAX_BYTES} bytes`);
      text = buf.subarray(0, n).toString('utf8');
    } finally {
      fs.closeSync(fd);
      fs.rmSync(file, { force: true });
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' };
    if (e instanceof StateFileError) throw e;
    throw new StateFileError(file, (e as Error).message);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new StateFileError(file, `invalid JSON: ${(e as Error).message}`);
  }
  if (!isObject(json) || typeof json.magic !== 'string') throw new StateFileError(file, 'no "magic"');
  if (json.magic !== String(pid)) return { kind: 'foreign', magic: json.magic };
  if (!isObject(json.daemon) || !isObject(json.daemon.servers)) throw new StateFileError(file, 'no "daemon.servers"');
  return { kind: 'ours', state: json as DaemonState };
}

/** Writes the state file: only root (or the user) may read it, as libvirt's 0700. */
export function writeStateFile(file: string, state: DaemonState): void {
  const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o700);
  try {
    fs.writeSync(fd, `${JSON.stringify(state, null, 2)}\n`);
    fs.fchmodSync(fd, 0o700);
  } finally {
    fs.closeSync(fd);
  }
}

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Field readers that throw on a malformed state (the caller exits 3). */
export function num(o: Record<string, unknown>, key: string, fallback?: number): number {
  const v = o[key];
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (v === undefined && fallback !== undefined) return fallback;
  throw new TypeError(`state: "${key}" must be a number`);
}

export function bool(o: Record<string, unknown>, key: string, fallback?: boolean): boolean {
  const v = o[key];
  if (typeof v === 'boolean') return v;
  if (v === undefined && fallback !== undefined) return fallback;
  throw new TypeError(`state: "${key}" must be a boolean`);
}

export function str(o: Record<string, unknown>, key: string, fallback?: string): string {
  const v = o[key];
  if (typeof v === 'string') return v;
  if (v === undefined && fallback !== undefined) return fallback;
  throw new TypeError(`state: "${key}" must be a string`);
}

export function arr(o: Record<string, unknown>, key: string): Record<string, unknown>[] {
  const v = o[key] ?? [];
  if (!Array.isArray(v) || !v.every(isObject)) throw new TypeError(`state: "${key}" must be an array of objects`);
  return v;
}
