// The libc entry points we need, bound once on first use so a daemon that
// never passes fds or takes locks never pays for binding them.
import type * as KoffiModule from 'koffi' with { 'resolution-mode': 'import' };

// koffi ships as an ES module with a CommonJS entry; its types are ESM-only.
type Koffi = typeof KoffiModule.default;
let koffiModule: Koffi | undefined;
/** koffi itself, loaded on first use (it costs ~10 ms at start-up). */
export function kf(): Koffi {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (koffiModule ??= require('koffi') as Koffi);
}
type TypeObject = KoffiModule.TypeObject;
type KoffiFunction = ReturnType<KoffiModule.LibraryHandle['func']>;

export class PosixError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly syscall: string;
  constructor(syscall: string, errno: number, detail?: string) {
    const code = errnoName(errno);
    super(`${syscall}${detail ? ` ${detail}` : ''}: ${code} (${errno})`);
    this.name = 'PosixError';
    this.errno = errno;
    this.code = code;
    this.syscall = syscall;
  }
}

let errnoNames: Map<number, string> | undefined;
export function errnoName(errno: number): string {
  if (!errnoNames) {
    errnoNames = new Map();
    for (const [name, value] of Object.entries(kf().os.errno)) {
      if (!errnoNames.has(value)) errnoNames.set(value, name);
    }
  }
  return errnoNames.get(errno) ?? `E${errno}`;
}

export const errno = (): number => kf().errno();

/** errno values by name (EAGAIN, …), from koffi's table for this platform. */
export const ERRNO: Readonly<Record<string, number>> = new Proxy({}, {
  get: (_t, name: string) => kf().os.errno[name],
});

/** Throws a PosixError when a libc call returned -1. */
export function check(syscall: string, ret: number | bigint, detail?: string): number {
  const n = Number(ret);
  if (n === -1) throw new PosixError(syscall, kf().errno(), detail);
  return n;
}

export const flockType = (): TypeObject => bound().flock;

interface Bound {
  flock: TypeObject;
  flockInOut: ReturnType<Koffi['inout']>;
  fcntlInt: KoffiFunction;
  fcntlLock: KoffiFunction;
  getsockopt: KoffiFunction;
  sendmsg: KoffiFunction;
  recvmsg: KoffiFunction;
  socket: KoffiFunction;
  bind: KoffiFunction;
  listen: KoffiFunction;
  connect: KoffiFunction;
  close: KoffiFunction;
  execve: KoffiFunction;
  pipe2: KoffiFunction;
  waitpid: KoffiFunction;
  getrlimit: KoffiFunction;
  setrlimit: KoffiFunction;
  getpwuid_r: KoffiFunction;
  getgrgid_r: KoffiFunction;
  getgrnam_r: KoffiFunction;
  shutdown: KoffiFunction;
  write: KoffiFunction;
  read: KoffiFunction;
  sigprocmask: KoffiFunction;
  sigemptyset: KoffiFunction;
  sigaddset: KoffiFunction;
  sigismember: KoffiFunction;
}

let cache: Bound | undefined;
export function bound(): Bound {
  if (cache) return cache;
  const koffi = kf();
  const lc = koffi.load('libc.so.6');
  const flock = koffi.struct('virtd_flock', {
    l_type: 'short', l_whence: 'short', l_start: 'int64_t', l_len: 'int64_t', l_pid: 'int',
  });
  const ucred = koffi.struct('virtd_ucred', { pid: 'int', uid: 'uint32_t', gid: 'uint32_t' });
  const rlimit = koffi.struct('virtd_rlimit', { cur: 'uint64_t', max: 'uint64_t' });
  cache = {
    flock,
    flockInOut: koffi.inout(koffi.pointer(flock)),
    // fcntl is variadic; koffi needs the variadic argument types spelled at each call.
    fcntlInt: lc.func('int fcntl(int fd, int cmd, ...)'),
    fcntlLock: lc.func('int fcntl(int fd, int cmd, ...)'),
    getsockopt: lc.func('getsockopt', 'int', ['int', 'int', 'int', koffi.out(koffi.pointer(ucred)), koffi.inout(koffi.pointer('uint32_t'))]),
    sendmsg: lc.func('intptr_t sendmsg(int fd, void *msg, int flags)'),
    recvmsg: lc.func('intptr_t recvmsg(int fd, void *msg, int flags)'),
    socket: lc.func('int socket(int domain, int type, int protocol)'),
    bind: lc.func('int bind(int fd, void *addr, uint32_t len)'),
    listen: lc.func('int listen(int fd, int backlog)'),
    connect: lc.func('int connect(int fd, void *addr, uint32_t len)'),
    close: lc.func('int close(int fd)'),
    execve: lc.func('int execve(const char *path, const char **argv, const char **envp)'),
    pipe2: lc.func('int pipe2(_Out_ int *fds, int flags)'),
    waitpid: lc.func('int waitpid(int pid, _Out_ int *status, int options)'),
    getrlimit: lc.func('getrlimit', 'int', ['int', koffi.out(koffi.pointer(rlimit))]),
    setrlimit: lc.func('setrlimit', 'int', ['int', koffi.pointer(rlimit)]),
    getpwuid_r: lc.func('int getpwuid_r(uint32_t uid, void *pwd, void *buf, size_t len, _Out_ void **result)'),
    getgrgid_r: lc.func('int getgrgid_r(uint32_t gid, void *grp, void *buf, size_t len, _Out_ void **result)'),
    getgrnam_r: lc.func('int getgrnam_r(const char *name, void *grp, void *buf, size_t len, _Out_ void **result)'),
    shutdown: lc.func('int shutdown(int fd, int how)'),
    write: lc.func('intptr_t write(int fd, const void *buf, size_t len)'),
    read: lc.func('intptr_t read(int fd, _Out_ void *buf, size_t len)'),
    // sigset_t is passed as a Buffer (see signals.ts); koffi hands its memory over in place.
    sigprocmask: lc.func('int sigprocmask(int how, const void *set, void *oldset)'),
    sigemptyset: lc.func('int sigemptyset(void *set)'),
    sigaddset: lc.func('int sigaddset(void *set, int sig)'),
    sigismember: lc.func('int sigismember(const void *set, int sig)'),
  };
  return cache;
}

export const address = (buf: Buffer): bigint => kf().address(buf);

/** Opens a shared object of our own (RTLD_NOW | RTLD_LOCAL); returns the loaded copy if it is already mapped. */
export const loadLibrary = (path: string): KoffiModule.LibraryHandle => kf().load(path);
