// Waiting on fds that libuv does not own: a socket read with recvmsg (fd
// passing) must not be watched by libuv, so readiness comes from poll(2)
// run on one of koffi's worker threads, off the event loop.
import { kf, check } from './libc.js';
import type * as KoffiModule from 'koffi' with { 'resolution-mode': 'import' };

type KoffiFunction = ReturnType<KoffiModule.LibraryHandle['func']>;
let fns: { poll: KoffiFunction; ioctl: KoffiFunction } | undefined;

function bound(): { poll: KoffiFunction; ioctl: KoffiFunction } {
  if (fns) return fns;
  const lc = kf().load('libc.so.6');
  fns = {
    poll: lc.func('int poll(_Inout_ void *fds, unsigned long nfds, int timeout)'),
    ioctl: lc.func('int ioctl(int fd, unsigned long req, _Out_ int *n)'),
  };
  return fns;
}

const POLLIN = 0x1;
const FIONREAD = 0x541b;

/** Resolves true once `fd` is readable (or at EOF/error), false after timeoutMs. */
export function waitReadable(fd: number, timeoutMs: number): Promise<boolean> {
  const pfd = Buffer.alloc(8);
  pfd.writeInt32LE(fd, 0);
  pfd.writeInt16LE(POLLIN, 4);
  return new Promise((resolve, reject) => {
    bound().poll.async(pfd, 1, Math.max(0, Math.floor(timeoutMs)), (err: unknown, rc: number) => {
      if (err) { reject(err as Error); return; }
      try {
        resolve(check('poll', rc) > 0);
      } catch (e) {
        reject(e as Error);
      }
    });
  });
}

/** Bytes waiting to be read on a pipe or socket (FIONREAD). */
export function bytesReadable(fd: number): number {
  const n = [0];
  check('ioctl', bound().ioctl(fd, FIONREAD, n), `FIONREAD fd ${fd}`);
  return n[0]!;
}
