export { PosixError, errnoName } from './libc.js';
export { getCloexec, setCloexec, dupCloexec, pipe, closeFd, O_CLOEXEC, O_NONBLOCK } from './fd.js';
export { tryLockByte0, unlockByte0, lockHolder, type LockOptions } from './lock.js';
export { peerCred, userName, groupName, groupId, type PeerCred } from './cred.js';
export {
  listenUnix, connectUnix, sendWithFds, recvWithFds, shutdownWrite, connectUnixDatagram, sendDatagram,
  type UnixListenOptions, type Received,
} from './socket.js';
export { execve, reapChildren, getRlimit, setRlimit, RLIMIT_NOFILE, type Rlimit, type Reaped } from './process.js';
