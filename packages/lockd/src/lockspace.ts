// Lock spaces (libvirt's virLockSpace): named resources locked with fcntl
// on byte 0 of a file, exclusive or shared, on behalf of owner pids. The
// locks belong to this process, so they survive execve and vanish if it
// dies. Never open a locked file a second time in this process: closing any
// fd of a file drops every fcntl lock the process holds on it.
import fs from 'node:fs';
import path from 'node:path';
import { tryLockByte0, closeFd } from '@virtd/posix';
import { VirtError } from '@virtd/errors';

/** libvirt's VIR_LOCK_SPACE_ACQUIRE_* flags. */
export const ACQUIRE = { SHARED: 1, AUTOCREATE: 2 } as const;

export interface Resource {
  readonly name: string;
  readonly path: string;
  /** The locked fd, kept open (and across re-exec) while held. */
  readonly fd: number;
  readonly shared: boolean;
  readonly autocreate: boolean;
  /** Owner pids holding it; several only when shared. */
  readonly owners: number[];
}

/** What a lock space serialises for re-exec (facts §7.2's LOCKSPACE). */
export interface LockSpaceState {
  directory?: string;
  resources: { name: string; path: string; fd: number; lockHeld: boolean; flags: number; owners: number[] }[];
}

const busy = (name: string): VirtError => new VirtError('RESOURCE_BUSY', 'LOCKSPACE', `Lockspace resource '${name}' is locked`);

export class LockSpace {
  /** Undefined for the default lock space, whose resource names are full paths. */
  readonly dir: string | undefined;
  readonly resources = new Map<string, Resource>();

  private constructor(dir: string | undefined) {
    this.dir = dir;
  }

  static default(): LockSpace {
    return new LockSpace(undefined);
  }

  /** A directory lock space, created 0700 when missing. */
  static create(dir: string): LockSpace {
    try {
      const st = fs.statSync(dir);
      if (!st.isDirectory()) throw new VirtError('SYSTEM_ERROR', 'LOCKSPACE', undefined, { message: `Lockspace location ${dir} exists, but is not a directory` });
    } catch (e) {
      if (e instanceof VirtError) throw e;
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    }
    return new LockSpace(dir);
  }

  resourcePath(name: string): string {
    return this.dir ? path.join(this.dir, name) : name;
  }

  createResource(name: string): void {
    if (this.resources.has(name)) throw busy(name);
    const p = this.resourcePath(name);
    try {
      fs.closeSync(fs.openSync(p, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600));
    } catch (e) {
      throw new VirtError('SYSTEM_ERROR', 'LOCKSPACE', undefined, { message: `Unable to create lockspace resource ${p}: ${(e as Error).message}` });
    }
  }

  deleteResource(name: string): void {
    if (this.resources.has(name)) throw busy(name);
    try { fs.unlinkSync(this.resourcePath(name)); } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new VirtError('SYSTEM_ERROR', 'LOCKSPACE', undefined, { message: `Unable to delete lockspace resource ${name}: ${(e as Error).message}` });
      }
    }
  }

  acquire(name: string, ownerPid: number, flags: number): void {
    const shared = (flags & ACQUIRE.SHARED) !== 0;
    const autocreate = (flags & ACQUIRE.AUTOCREATE) !== 0;
    const held = this.resources.get(name);
    if (held) {
      // A shared request joins a shared holder; anything else is busy.
      if (!(shared && held.shared)) throw busy(name);
      if (!held.owners.includes(ownerPid)) held.owners.push(ownerPid);
      return;
    }
    const p = this.resourcePath(name);
    const fd = this.openLocked(p, name, shared, autocreate);
    this.resources.set(name, { name, path: p, fd, shared, autocreate, owners: [ownerPid] });
  }

  private openLocked(p: string, name: string, shared: boolean, autocreate: boolean): number {
    for (let attempt = 0; ; attempt++) {
      let fd: number;
      try {
        fd = fs.openSync(p, fs.constants.O_RDWR | fs.constants.O_NOFOLLOW | (autocreate ? fs.constants.O_CREAT : 0), 0o600);
      } catch (e) {
        throw new VirtError('SYSTEM_ERROR', 'LOCKSPACE', undefined, { message: `Unable to open/create resource ${p}: ${(e as Error).message}` });
      }
      if (!tryLockByte0(fd, { shared })) {
        closeFd(fd);
        throw busy(name);
      }
      // With autocreate, another holder may have unlinked and recreated the
      // file between our open and lock: only the inode at the path counts.
      if (autocreate) {
        let same = false;
        try { same = fs.statSync(p).ino === fs.fstatSync(fd).ino; } catch { same = false; }
        if (!same) {
          closeFd(fd);
          if (attempt > 10) throw busy(name);
          continue;
        }
      }
      return fd;
    }
  }

  release(name: string, ownerPid: number): void {
    const r = this.resources.get(name);
    if (!r) throw new VirtError('RESOURCE_BUSY', 'LOCKSPACE', `Lockspace resource '${name}' is not locked`);
    const i = r.owners.indexOf(ownerPid);
    if (i < 0) throw new VirtError('INTERNAL_ERROR', 'LOCKSPACE', `owner ${ownerPid} does not hold the resource lock`);
    r.owners.splice(i, 1);
    if (r.owners.length) return;
    this.resources.delete(name);
    if (r.autocreate) {
      // A shared file is removed only if we can take it exclusively: no
      // other process may still be holding it.
      if (!r.shared || tryLockByte0(r.fd)) fs.rmSync(r.path, { force: true });
    }
    closeFd(r.fd);
  }

  /** Releases everything an owner holds; how many it held. */
  releaseOwner(pid: number): number {
    let n = 0;
    for (const r of [...this.resources.values()]) {
      if (r.owners.includes(pid)) { this.release(r.name, pid); n++; }
    }
    return n;
  }

  /** Every fd to keep open across re-exec. */
  fds(): number[] {
    return [...this.resources.values()].map((r) => r.fd);
  }

  toState(): LockSpaceState {
    return {
      ...(this.dir ? { directory: this.dir } : {}),
      resources: [...this.resources.values()].map((r) => ({
        name: r.name, path: r.path, fd: r.fd, lockHeld: true,
        flags: (r.shared ? ACQUIRE.SHARED : 0) | (r.autocreate ? ACQUIRE.AUTOCREATE : 0),
        owners: [...r.owners],
      })),
    };
  }

  /** Rebuilds a lock space from re-exec state; the fds are already open and locked. */
  static fromState(s: LockSpaceState): LockSpace {
    const ls = new LockSpace(s.directory);
    for (const r of s.resources) {
      ls.resources.set(r.name, {
        name: r.name, path: r.path, fd: r.fd, owners: [...r.owners],
        shared: (r.flags & ACQUIRE.SHARED) !== 0, autocreate: (r.flags & ACQUIRE.AUTOCREATE) !== 0,
      });
    }
    return ls;
  }
}
