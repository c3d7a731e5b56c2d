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
    // Never through a symlink, nor from a FIFO or a file someone else made.
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    try {
      const st = fs.fstatSync(fd);
      const euid = process.geteuid?.() ?? st.uid;
      if (!st.isFile()) throw new StateFileError(file, 'not a regular file');
      if (st.uid !== euid) throw new StateFileError(file, `it belongs to uid ${st.uid}, not to us (uid ${euid})`);
      const buf = Buffer.alloc(STATE_MAX_BYTES + 1);
      const n = fs.readSync(fd, buf, 0, buf.length, 0);
      if (n > STATE_MAX_BYTES) throw new StateFileError(file, `larger than ${STATE_MAX_BYTES} bytes`);
      text = buf.subarray(0, n).toString('utf8');
    } finally {
      fs.closeSync(fd);
      fs.rmSync(file, { force: true });
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { kind: 'none' };
    if (code === 'ELOOP') throw new StateFileError(file, 'it is a symbolic link; refusing to follow it');
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

/**
 * Writes the state file: only root (or the user) may read it, as libvirt's
 * 0700. Written beside and renamed into place, so a kill mid-write never
 * leaves a torn file, and a symlink or hard link planted at the path is
 * replaced, never written through.
 */
export function writeStateFile(file: string, state: DaemonState): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.rmSync(tmp, { force: true });
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o700);
  try {
    fs.writeSync(fd, `${JSON.stringify(state, null, 2)}\n`);
    fs.fchmodSync(fd, 0o700);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/** Set in the new image's environment by a re-exec: the pid file's kept fd, or -1. */
export const REEXEC_ENV = 'VIRTD_REEXEC';

/**
 * Whether this image was started by our own re-exec (and the pid file
 * descriptor it kept), read from and removed from `env`.
 */
export function takeReexecMarker(env: Record<string, string | undefined>): { pidFd: number | undefined } | undefined {
  const v = env[REEXEC_ENV];
  if (v === undefined) return undefined;
  delete env[REEXEC_ENV];
  const fd = Number(v);
  return { pidFd: Number.isInteger(fd) && fd >= 0 ? fd : undefined };
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
