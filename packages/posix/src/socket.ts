// UNIX sockets made and driven by hand: listening sockets we own outright
// (so accepting can pause without closing them), and fd passing with
// SCM_RIGHTS, which a libuv-read socket would silently drop.
import fs from 'node:fs';
import type * as KoffiModule from 'koffi' with { 'resolution-mode': 'import' };
import { bound, check, address, errno, kf, ERRNO, PosixError } from './libc.js';

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;
const SOCK_NONBLOCK = 0o4000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const MSG_CMSG_CLOEXEC = 0x40000000;
const MSG_CTRUNC = 0x8;
const SUN_PATH_MAX = 108;

function sockaddrUn(path: string): Buffer {
  const abstract = path.startsWith('@');
  const name = Buffer.from(abstract ? path.slice(1) : path);
  if (name.length >= SUN_PATH_MAX) throw new PosixError('bind', ERRNO.ENAMETOOLONG, path);
  const addr = Buffer.alloc(2 + SUN_PATH_MAX);
  addr.writeUInt16LE(AF_UNIX, 0);
  name.copy(addr, abstract ? 3 : 2);
  // Abstract names are length-delimited; filesystem ones are NUL-terminated.
  return addr.subarray(0, abstract ? 3 + name.length : 2 + name.length + 1);
}

export interface UnixListenOptions {
  backlog: number;
  /** Exact mode of the socket inode (bound under the matching umask). */
  mode: number;
}

/**
 * socket + bind + listen on a UNIX path, like libvirt: an existing path is
 * unlinked first and the inode gets exactly `mode`. Returns the fd (CLOEXEC).
 */
export function listenUnix(path: string, opts: UnixListenOptions): number {
  const b = bound();
  const fd = check('socket', b.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  try {
    if (!path.startsWith('@')) {
      try { fs.unlinkSync(path); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; }
    }
    const addr = sockaddrUn(path);
    const old = process.umask(~opts.mode & 0o777);
    let rc: number;
    try { rc = b.bind(fd, addr, addr.length); } finally { process.umask(old); }
    check('bind', rc, path);
    check('listen', b.listen(fd, opts.backlog), path);
    return fd;
  } catch (e) {
    b.close(fd);
    throw e;
  }
}

/** A blocking connect to a UNIX path; returns the fd (CLOEXEC). */
export function connectUnix(path: string, nonblocking = false): number {
  const b = bound();
  const fd = check('socket', b.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0));
  const addr = sockaddrUn(path);
  if (b.connect(fd, addr, addr.length) !== 0) {
    const e = errno();
    b.close(fd);
    throw new PosixError('connect', e, path);
  }
  return fd;
}

interface MsgBuffers { msg: Buffer; iov: Buffer; data: Buffer; control: Buffer }

function msghdr(data: Buffer, control: Buffer): MsgBuffers {
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(address(data), 0);
  iov.writeBigUInt64LE(BigInt(data.length), 8);
  const msg = Buffer.alloc(56);
  msg.writeBigUInt64LE(address(iov), 16);
  msg.writeBigUInt64LE(1n, 24);
  if (control.length > 0) {
    msg.writeBigUInt64LE(address(control), 32);
    msg.writeBigUInt64LE(BigInt(control.length), 40);
  }
  return { msg, iov, data, control };
}

const cmsgSpace = (nfds: number): number => 16 + Math.ceil((4 * nfds) / 8) * 8;

/**
 * One sendmsg carrying `data` (at least one byte) and `fds` as SCM_RIGHTS.
 * Returns bytes sent, or -1 when the socket would block.
 */
export function sendWithFds(sock: number, data: Buffer, fds: number[]): number {
  if (data.length === 0) throw new RangeError('sendWithFds needs at least one data byte');
  const control = Buffer.alloc(fds.length ? cmsgSpace(fds.length) : 0);
  if (fds.length) {
    control.writeBigUInt64LE(BigInt(16 + 4 * fds.length), 0);
    control.writeInt32LE(SOL_SOCKET, 8);
    control.writeInt32LE(SCM_RIGHTS, 12);
    fds.forEach((fd, i) => control.writeInt32LE(fd, 16 + 4 * i));
  }
  const m = msghdr(data, control);
  const n = Number(bound().sendmsg(sock, m.msg, MSG_DONTWAIT | MSG_NOSIGNAL));
  if (n === -1) {
    const e = errno();
    if (e === ERRNO.EAGAIN) return -1;
    throw new PosixError('sendmsg', e, `fd ${sock}`);
  }
  return n;
}

export interface Received {
  data: Buffer;
  fds: number[];
}

/**
 * One non-blocking recvmsg of up to `max` bytes and up to `maxFds` fds
 * (received close-on-exec). Null when nothing is ready; empty data means EOF.
 */
export function recvWithFds(sock: number, max: number, maxFds: number): Received | null {
  const data = Buffer.alloc(max);
  const control = Buffer.alloc(cmsgSpace(Math.max(1, maxFds)));
  const m = msghdr(data, control);
  const n = Number(bound().recvmsg(sock, m.msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
  if (n === -1) {
    const e = errno();
    if (e === ERRNO.EAGAIN) return null;
    throw new PosixError('recvmsg', e, `fd ${sock}`);
  }
  const fds: number[] = [];
  const controllen = Number(m.msg.readBigUInt64LE(40));
  let off = 0;
  while (off + 16 <= controllen) {
    const len = Number(control.readBigUInt64LE(off));
    if (len < 16) break;
    if (control.readInt32LE(off + 8) === SOL_SOCKET && control.readInt32LE(off + 12) === SCM_RIGHTS) {
      for (let p = off + 16; p + 4 <= off + len; p += 4) fds.push(control.readInt32LE(p));
    }
    off += Math.ceil(len / 8) * 8;
  }
  if (m.msg.readInt32LE(48) & MSG_CTRUNC) {
    // More fds arrived than we had room for: the kernel closed the rest.
    for (const fd of fds) bound().close(fd);
    throw new PosixError('recvmsg', ERRNO.EMSGSIZE, `fd ${sock}: too many file descriptors`);
  }
  return { data: data.subarray(0, n), fds };
}

export function shutdownWrite(fd: number): void {
  bound().shutdown(fd, 1);
}

const SOCK_DGRAM = 2;

/**
 * A datagram socket connected to a UNIX path (e.g. /dev/log), which Node
 * cannot make. Returns the fd; send with sendDatagram.
 */
export function connectUnixDatagram(path: string): number {
  const b = bound();
  // Non-blocking: a stalled syslog daemon must never stall our event loop.
  const fd = check('socket', b.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  const addr = sockaddrUn(path);
  if (b.connect(fd, addr, addr.length) !== 0) {
    const e = errno();
    b.close(fd);
    throw new PosixError('connect', e, path);
  }
  return fd;
}

/** One datagram on a connected socket; false when it would block or failed. */
export function sendDatagram(fd: number, data: Buffer): boolean {
  return Number(bound().write(fd, data, data.length)) === data.length;
}

let socketpairFn: ReturnType<KoffiModule.LibraryHandle['func']> | undefined;

/**
 * socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC): two connected stream
 * sockets, e.g. one for gRPC to own and one for a relay in front of it.
 */
export function socketPair(): [number, number] {
  socketpairFn ??= kf().load('libc.so.6').func('int socketpair(int domain, int type, int protocol, _Out_ int *sv)');
  const fds = [-1, -1];
  check('socketpair', socketpairFn(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds));
  return [fds[0]!, fds[1]!];
}
