export { PosixError, errnoName } from './libc.js';
export { getCloexec, setCloexec, dupCloexec, pipe, setPipeSize, pipeSize, closeFd, O_CLOEXEC, O_NONBLOCK } from './fd.js';
export { tryLockByte0, unlockByte0, lockHolder, type LockOptions } from './lock.js';
export { peerCred, userName, groupName, groupId, type PeerCred } from './cred.js';
export {
  listenUnix, connectUnix, socketPair, sendWithFds, recvWithFds, shutdownWrite, connectUnixDatagram, sendDatagram,
  type UnixListenOptions, type Received,
} from './socket.js';
export { execve, reapChildren, reapPid, getRlimit, setRlimit, RLIMIT_NOFILE, type Rlimit, type Reaped } from './process.js';
export { waitReadable, bytesReadable } from './wait.js';
export { sigset, sigismember, sigprocmask, openSignalShim, type Sigset, type SigHow, type Signal, type SignalShim } from './signals.js';
