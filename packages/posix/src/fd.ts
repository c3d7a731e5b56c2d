// File-descriptor flags and pipes: what an in-place execve must control.
import { bound, check } from './libc.js';

const F_GETFD = 1;
const F_SETFD = 2;
const F_DUPFD_CLOEXEC = 1030;
const F_SETPIPE_SZ = 1031;
const F_GETPIPE_SZ = 1032;
const FD_CLOEXEC = 1;
export const O_CLOEXEC = 0o2000000;
export const O_NONBLOCK = 0o4000;

export function getCloexec(fd: number): boolean {
  const flags = check('fcntl(F_GETFD)', bound().fcntlInt(fd, F_GETFD), `fd ${fd}`);
  return (flags & FD_CLOEXEC) !== 0;
}

/** Marks an fd to survive (on=false) or to close at (on=true) the next execve. */
export function setCloexec(fd: number, on: boolean): void {
  const b = bound();
  const flags = check('fcntl(F_GETFD)', b.fcntlInt(fd, F_GETFD), `fd ${fd}`);
  const next = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
  if (next !== flags) check('fcntl(F_SETFD)', b.fcntlInt(fd, F_SETFD, 'int', next), `fd ${fd}`);
}

/** A close-on-exec duplicate of fd, at the lowest free number ≥ minFd. */
export function dupCloexec(fd: number, minFd = 3): number {
  return check('fcntl(F_DUPFD_CLOEXEC)', bound().fcntlInt(fd, F_DUPFD_CLOEXEC, 'int', minFd), `fd ${fd}`);
}

/** pipe2(); returns [readEnd, writeEnd]. */
export function pipe(flags = O_CLOEXEC): [number, number] {
  const fds = [-1, -1];
  check('pipe2', bound().pipe2(fds, flags));
  return [fds[0]!, fds[1]!];
}

/**
 * Asks the kernel for a pipe buffer of at least `bytes` (rounded up to a
 * power-of-two number of pages); returns the size it got. Unprivileged
 * callers are capped by /proc/sys/fs/pipe-max-size and their pipe quota.
 */
export function setPipeSize(fd: number, bytes: number): number {
  return check('fcntl(F_SETPIPE_SZ)', bound().fcntlInt(fd, F_SETPIPE_SZ, 'int', bytes), `fd ${fd}`);
}

export function pipeSize(fd: number): number {
  return check('fcntl(F_GETPIPE_SZ)', bound().fcntlInt(fd, F_GETPIPE_SZ), `fd ${fd}`);
}

export function closeFd(fd: number): void {
  check('close', bound().close(fd), `fd ${fd}`);
}
