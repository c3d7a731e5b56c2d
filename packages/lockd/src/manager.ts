// virtlockd's state over its lock spaces: the default one (resources named
// by full path) and one per directory, the owner each connection registers,
// and what happens when an owner's connection goes (libvirt's
// virLockDaemonClientFree): its locks are released and, if it held any,
// the owner process is stopped — a guest that lost its disk locks must not
// keep writing.
import type { Logger } from 'pino';
import { setCloexec } from '@virtd/posix';
import { VirtError } from '@virtd/errors';
import type { Client } from '@virtd/core';
import { LockSpace, ACQUIRE, type LockSpaceState } from './lockspace.js';

export interface Owner {
  readonly uuid: string;
  readonly name: string;
  readonly id: number;
  readonly pid: number;
}

/** A connection's privateData in libvirt's state file. */
export interface ClientPrivate {
  restricted: boolean;
  ownerPid: number;
  ownerId: number;
  ownerName: string;
  ownerUUID: string;
}

export interface HeldResource {
  readonly lockspace: string;
  readonly name: string;
  readonly path: string;
  readonly shared: boolean;
  readonly owners: readonly number[];
}

/** libvirt's owner-death schedule: SIGTERM, poll every 200 ms, SIGKILL at step 9, give up after 15. */
export const KILL_POLL_MS = 200;
export const KILL_SIGKILL_STEP = 9;
export const KILL_GIVE_UP_STEP = 15;

const KEY = Symbol('lockd.client');

const invalid = (msg: string): VirtError => new VirtError('OPERATION_INVALID', 'LOCKING', msg);

export class LockManager {
  private defaultSpace = LockSpace.default();
  private readonly spaces = new Map<string, LockSpace>();
  private readonly log: Logger;

  constructor(log: Logger) {
    this.log = log;
  }

  private state(c: Client): ClientPrivate {
    let s = c.data.get(KEY) as ClientPrivate | undefined;
    if (!s) {
      s = { restricted: false, ownerPid: 0, ownerId: 0, ownerName: '', ownerUUID: '' };
      c.data.set(KEY, s);
      c.onClose(() => this.clientGone(c, s!));
    }
    return s;
  }

  /** Every call first: a restricted connection may do nothing more. */
  private open(c: Client, needOwner: boolean): ClientPrivate {
    const s = this.state(c);
    if (s.restricted) throw new VirtError('OPERATION_DENIED', 'LOCKING', 'lock manager connection has been restricted');
    if (needOwner && !s.ownerPid) throw invalid('lock owner details have not been registered');
    return s;
  }

  register(c: Client, o: Owner, flags: number): void {
    noFlags(flags);
    const s = this.open(c, false);
    if (s.ownerPid) throw invalid('lock owner details have already been registered');
    if (!o.id) throw new VirtError('INVALID_ARG', 'LOCKING', 'lock owner id must be non-zero');
    if (!o.pid) throw new VirtError('INVALID_ARG', 'LOCKING', 'lock owner pid must be non-zero');
    Object.assign(s, { ownerPid: o.pid, ownerId: o.id, ownerName: o.name, ownerUUID: o.uuid });
    this.log.debug({ client: c.id, owner: o }, 'lock owner registered');
  }

  restrict(c: Client, flags: number): void {
    noFlags(flags);
    this.open(c, true).restricted = true;
  }

  newLockSpace(c: Client, path: string, flags: number): void {
    noFlags(flags);
    this.open(c, true);
    if (!path) throw invalid('the default lockspace already exists');
    if (this.spaces.has(path)) throw invalid(`Lockspace for path ${path} already exists`);
    this.spaces.set(path, LockSpace.create(path));
  }

  createLockSpace(c: Client, path: string): void {
    this.open(c, false);
    if (!path || this.spaces.has(path)) return;
    this.spaces.set(path, LockSpace.create(path));
  }

  createResource(c: Client, path: string, name: string, flags: number): void {
    noFlags(flags);
    this.open(c, true);
    this.space(path).createResource(name);
  }

  deleteResource(c: Client, path: string, name: string, flags: number): void {
    noFlags(flags);
    this.open(c, true);
    this.space(path).deleteResource(name);
  }

  acquire(c: Client, path: string, name: string, flags: number): void {
    const unknown = flags & ~(ACQUIRE.SHARED | ACQUIRE.AUTOCREATE);
    if (unknown) throw new VirtError('INVALID_ARG', 'LOCKING', `unsupported flags (0x${unknown.toString(16)})`);
    const s = this.open(c, true);
    this.space(path).acquire(name, s.ownerPid, flags);
    this.log.debug({ lockspace: path, resource: name, owner: s.ownerPid, shared: (flags & ACQUIRE.SHARED) !== 0 }, 'resource acquired');
  }

  release(c: Client, path: string, name: string, flags: number): void {
    noFlags(flags);
    const s = this.open(c, true);
    this.space(path).release(name, s.ownerPid);
  }

  list(c: Client): HeldResource[] {
    this.open(c, false);
    const out: HeldResource[] = [];
    for (const [key, ls] of [['', this.defaultSpace] as const, ...this.spaces]) {
      for (const r of ls.resources.values()) {
        out.push({ lockspace: key, name: r.name, path: r.path, shared: r.shared, owners: [...r.owners] });
      }
    }
    return out;
  }

  private space(path: string): LockSpace {
    if (!path) return this.defaultSpace;
    const ls = this.spaces.get(path);
    if (!ls) throw invalid(`Lockspace for path ${path} does not exist`);
    return ls;
  }

  /** The owner's connection closed: if it was the owner itself, its locks go. */
  private clientGone(c: Client, s: ClientPrivate): void {
    if (!s.ownerPid || c.identity.pid !== s.ownerPid) return;
    let held = 0;
    let failed = false;
    for (const ls of [this.defaultSpace, ...this.spaces.values()]) {
      try {
        held += ls.releaseOwner(s.ownerPid);
      } catch (e) {
        failed = true;
        this.log.error({ err: e, owner: s.ownerPid }, 'failed to release the locks of a dead owner');
      }
    }
    if (held || failed) {
      this.log.info({ owner: s.ownerPid, name: s.ownerName, released: held }, 'owner connection closed while holding locks; stopping the owner');
      killOwner(s.ownerPid, this.log);
    }
  }

  // ---- re-exec -------------------------------------------------------------

  fds(): number[] {
    return [this.defaultSpace, ...this.spaces.values()].flatMap((ls) => ls.fds());
  }

  /** libvirt's "defaultLockspace" and "lockspaces" keys. */
  toState(): { defaultLockspace: LockSpaceState; lockspaces: LockSpaceState[] } {
    return { defaultLockspace: this.defaultSpace.toState(), lockspaces: [...this.spaces.values()].map((ls) => ls.toState()) };
  }

  restore(st: { defaultLockspace?: LockSpaceState; lockspaces?: LockSpaceState[] }): void {
    const adopt = (s: LockSpaceState): LockSpace => {
      for (const r of s.resources) setCloexec(r.fd, true);
      return LockSpace.fromState(s);
    };
    if (st.defaultLockspace) this.defaultSpace = adopt(st.defaultLockspace);
    for (const s of st.lockspaces ?? []) {
      if (s.directory) this.spaces.set(s.directory, adopt(s));
    }
  }

  clientData(c: Client): Record<string, unknown> {
    const s = c.data.get(KEY) as ClientPrivate | undefined;
    return { ...(s ?? { restricted: false, ownerPid: 0, ownerId: 0, ownerName: '', ownerUUID: '' }) };
  }

  restoreClient(c: Client, d: Readonly<Record<string, unknown>>): void {
    const s = this.state(c);
    s.restricted = d.restricted === true;
    s.ownerPid = typeof d.ownerPid === 'number' ? d.ownerPid : 0;
    s.ownerId = typeof d.ownerId === 'number' ? d.ownerId : 0;
    s.ownerName = typeof d.ownerName === 'string' ? d.ownerName : '';
    s.ownerUUID = typeof d.ownerUUID === 'string' ? d.ownerUUID : '';
  }
}

function noFlags(flags: number): void {
  if (flags) throw new VirtError('INVALID_ARG', 'LOCKING', `unsupported flags (0x${flags.toString(16)})`);
}

/** SIGTERM, then SIGKILL if it lingers; stops when the process is gone. */
function killOwner(pid: number, log: Logger): void {
  const send = (sig: NodeJS.Signals | 0): boolean => {
    try {
      process.kill(pid, sig);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') log.warn({ err: e, pid }, `cannot signal lock owner`);
      return false;
    }
  };
  if (!send('SIGTERM')) return;
  let step = 0;
  const t = setInterval(() => {
    step++;
    if (!send(0) || step >= KILL_GIVE_UP_STEP) {
      clearInterval(t);
      if (step >= KILL_GIVE_UP_STEP) log.warn({ pid }, 'lock owner did not exit');
      return;
    }
    if (step === KILL_SIGKILL_STEP) send('SIGKILL');
  }, KILL_POLL_MS);
  t.unref();
}
