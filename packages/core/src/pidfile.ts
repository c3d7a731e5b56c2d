// The pid file as libvirt keeps it: an fcntl write lock on byte 0 held for
// the life of the process (so a second instance fails fast and a crashed
// one leaves no stale lock), the pid written without a newline, the file
// removed at exit. The lock survives execve, so a re-exec'd image simply
// re-acquires it.
import fs from 'node:fs';
import path from 'node:path';
import { tryLockByte0, setCloexec } from '@virtd/posix';
import { VirtError } from '@virtd/errors';

export class PidFile {
  /** Set once acquired; the fd holds the lock until release(). */
  private fd: number | undefined;
  readonly path: string;

  private constructor(p: string, fd: number) {
    this.path = p;
    this.fd = fd;
  }

  /**
   * Creates, locks and writes the pid file. Fails when another process holds
   * the lock. `reuseFd` adopts a descriptor kept across an in-place re-exec.
   */
  static acquire(p: string, pid = process.pid, reuseFd?: number): PidFile {
    if (reuseFd !== undefined) {
      const adopted = PidFile.adopt(p, reuseFd);
      if (adopted) return adopted;
    }
    for (let attempt = 0; ; attempt++) {
      const fd = openOwn(p);
      try {
        if (!tryLockByte0(fd)) {
          throw new VirtError('SYSTEM_ERROR', 'NONE', undefined, {
            message: `Failed to acquire pid file '${p}': another process holds it (pid ${readPid(p) ?? 'unknown'})`,
          });
        }
        // The file may have been unlinked (and another created) between our
        // open and lock; only a lock on the inode at the path counts.
        const held = fs.fstatSync(fd);
        let current: fs.Stats | undefined;
        try { current = fs.statSync(p); } catch { current = undefined; }
        if (!current || current.ino !== held.ino || current.dev !== held.dev) {
          fs.closeSync(fd);
          if (attempt > 10) throw new VirtError('SYSTEM_ERROR', 'NONE', `pid file '${p}' keeps changing under us`);
          continue;
        }
        fs.ftruncateSync(fd, 0);
        fs.writeSync(fd, String(pid), 0);
        return new PidFile(p, fd);
      } catch (e) {
        try { fs.closeSync(fd); } catch { /* already closed */ }
        throw e;
      }
    }
  }

  /**
   * Takes over the descriptor the previous image kept open across execve:
   * our fcntl lock never lapsed, so no other instance can have slipped in.
   * Undefined when it no longer names the file at `p` (then acquire anew).
   */
  private static adopt(p: string, fd: number): PidFile | undefined {
    try {
      const held = fs.fstatSync(fd);
      const current = fs.statSync(p);
      if (held.ino !== current.ino || held.dev !== current.dev) return undefined;
      setCloexec(fd, true);
      return new PidFile(p, fd);
    } catch {
      return undefined;
    }
  }

  /** The descriptor holding the lock (kept open across re-exec). */
  get descriptor(): number | undefined {
    return this.fd;
  }

  /** Unlinks the file, then drops the lock, as libvirt does at exit. */
  release(): void {
    if (this.fd === undefined) return;
    try { fs.unlinkSync(this.path); } catch { /* already gone */ }
    fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

/**
 * Opens (creating) the pid file for writing, but never through a symlink
 * (O_NOFOLLOW), a FIFO or device (O_NONBLOCK, then a regular-file check),
 * nor into a file that is not ours or has another name too (a hard link):
 * in a shared directory (/tmp, a world-writable --pid-file dir) another
 * user could plant any of these to have us clobber a file. Nothing is
 * written before these checks. libvirt 9.0 follows whatever is there.
 */
function openOwn(p: string): number {
  const { O_WRONLY, O_CREAT, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
  let fd: number;
  try {
    fd = fs.openSync(p, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK, 0o644);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ELOOP' ? 'it is a symbolic link; refusing to follow it' : (e as Error).message;
    throw new VirtError('SYSTEM_ERROR', 'NONE', undefined, { message: `Failed to acquire pid file '${p}': ${why}`, cause: e });
  }
  const st = fs.fstatSync(fd);
  const euid = process.geteuid?.() ?? st.uid;
  const why = !st.isFile() ? 'it is not a regular file'
    : st.uid !== euid ? `it belongs to uid ${st.uid}, not to us (uid ${euid})`
      : st.nlink > 1 ? `it has ${st.nlink} hard links`
        : undefined;
  if (why) {
    fs.closeSync(fd);
    throw new VirtError('SYSTEM_ERROR', 'NONE', undefined, { message: `Failed to acquire pid file '${p}': ${why}; refusing to write it` });
  }
  return fd;
}

function readPid(p: string): string | undefined {
  try { return fs.readFileSync(p, 'utf8').trim() || undefined; } catch { return undefined; }
}

export const pidFileDir = (p: string): string => path.dirname(p);
