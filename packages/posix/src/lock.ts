// fcntl record locks on byte 0, length 1: the lock libvirt takes on pid files
// and lock-space resources. They belong to the process, vanish if it dies and
// survive execve, which is exactly what an in-place re-exec needs.
import { bound, ERRNO, PosixError, errno } from './libc.js';

const F_SETLK = 6;
const F_GETLK = 5;
const F_RDLCK = 0;
const F_WRLCK = 1;
const F_UNLCK = 2;
const SEEK_SET = 0;

export interface LockOptions {
  /** A shared (read) lock instead of an exclusive (write) one. */
  shared?: boolean;
}

/** Tries to lock byte 0 of fd without waiting. False when another process holds it. */
export function tryLockByte0(fd: number, opts: LockOptions = {}): boolean {
  const b = bound();
  const req = { l_type: opts.shared ? F_RDLCK : F_WRLCK, l_whence: SEEK_SET, l_start: 0, l_len: 1, l_pid: 0 };
  if (b.fcntlLock(fd, F_SETLK, b.flock.name + ' *', req) === 0) return true;
  const e = errno();
  if (e === ERRNO.EACCES || e === ERRNO.EAGAIN) return false;
  throw new PosixError('fcntl(F_SETLK)', e, `fd ${fd}`);
}

export function unlockByte0(fd: number): void {
  const b = bound();
  const req = { l_type: F_UNLCK, l_whence: SEEK_SET, l_start: 0, l_len: 1, l_pid: 0 };
  if (b.fcntlLock(fd, F_SETLK, b.flock.name + ' *', req) !== 0) {
    throw new PosixError('fcntl(F_SETLK, F_UNLCK)', errno(), `fd ${fd}`);
  }
}

/** The pid holding a conflicting lock on byte 0, or 0 when it is free. */
export function lockHolder(fd: number, opts: LockOptions = {}): number {
  const b = bound();
  const req = { l_type: opts.shared ? F_RDLCK : F_WRLCK, l_whence: SEEK_SET, l_start: 0, l_len: 1, l_pid: 0 };
  if (b.fcntlLock(fd, F_GETLK, b.flockInOut, req) !== 0) {
    throw new PosixError('fcntl(F_GETLK)', errno(), `fd ${fd}`);
  }
  return req.l_type === F_UNLCK ? 0 : req.l_pid;
}
