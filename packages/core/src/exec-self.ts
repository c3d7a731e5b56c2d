// In-place re-exec (virtlogd and virtlockd on SIGUSR1): execve of the same
// command line, same pid, with the fds the caller keeps. A freshly exec'd
// Node dies on SIGHUP and opens its inspector on SIGUSR1 until our first
// line of JS runs (TESTING.md §5), so the new image starts with the caught
// signals blocked and native/signal-shim.c preloaded; early-signals.ts takes
// over from the shim.
import fs from 'node:fs';
import path from 'node:path';
import { execve, getCloexec, openSignalShim, setCloexec, sigprocmask, type SignalShim } from '@virtd/posix';
import type { CaughtSignal } from './early-signals.js';

// Type-only import: loading early-signals installs its handlers. The record
// makes the compiler check the set is early-signals' (and signal-shim.c's).
const CAUGHT = Object.keys({
  SIGHUP: 1, SIGINT: 1, SIGQUIT: 1, SIGTERM: 1, SIGUSR1: 1, SIGUSR2: 1,
} satisfies Record<CaughtSignal, 1>) as CaughtSignal[];
/** Read by early-signals.ts in the new image. */
const SHIM_ENV = 'VIRTD_SIGNAL_SHIM';
const STDIO = [0, 1, 2];
const ACTIVATION_ENV = ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES'];

let shimPath: string | null | undefined;
/** Path of the built shim, or undefined when it was not built. */
export function signalShimPath(): string | undefined {
  if (shimPath === undefined) {
    // dist/src/exec-self.js → dist/native/signal-shim.so (scripts/build-native.mjs)
    const p = path.join(__dirname, '..', 'native', 'signal-shim.so');
    shimPath = fs.existsSync(p) ? p : null;
  }
  return shimPath ?? undefined;
}

/** The environment of the new image: no activation, the shim preloaded once. */
function childEnv(base: Record<string, string | undefined>, shim: string | undefined): Record<string, string | undefined> {
  const env = { ...base };
  for (const k of ACTIVATION_ENV) delete env[k];
  delete env[SHIM_ENV];
  if (shim !== undefined) {
    // ld.so splits LD_PRELOAD on colons and spaces.
    const rest = (env.LD_PRELOAD ?? '').split(/[:\s]+/).filter((p) => p !== '' && p !== shim);
    env.LD_PRELOAD = [shim, ...rest].join(':');
    env[SHIM_ENV] = shim;
  }
  return env;
}

/**
 * Replaces the process image with the same command line (process.execPath,
 * process.execArgv, process.argv[1..]), keeping pid. Clears FD_CLOEXEC on
 * stdio and on every fd in keepFds (and only those); drops LISTEN_PID,
 * LISTEN_FDS and LISTEN_FDNAMES; blocks the caught signals; sets LD_PRELOAD
 * (the shim first, then any existing value) and VIRTD_SIGNAL_SHIM=<path> in
 * the new env. Throws, after restoring the signal mask and the CLOEXEC flags,
 * if execve fails.
 *
 * Signals that libuv has already queued for JS but JS has not dispatched yet
 * die with this image: call it at the start of a tick, not after long
 * synchronous work.
 */
export function execSelf(opts: { keepFds: readonly number[]; env?: Record<string, string | undefined> }): never {
  const shim = signalShimPath();
  const env = childEnv(opts.env ?? process.env, shim);
  const argv = [process.execPath, ...process.execArgv, ...process.argv.slice(1)];
  // Bind everything before blocking: from the block on, every caught signal
  // must reach the new image, so the gap to execve stays as short as we can.
  const handle: SignalShim | undefined = shim === undefined ? undefined : openSignalShim(shim);
  const cleared: number[] = [];
  let oldMask: Buffer | undefined;
  let forwarding = false;
  try {
    oldMask = sigprocmask('block', CAUGHT);
    if (handle) { handle.forward(true); forwarding = true; }
    for (const fd of [...STDIO, ...opts.keepFds]) {
      if (cleared.includes(fd)) continue;
      let on: boolean;
      try {
        on = getCloexec(fd);
      } catch (err) {
        if (STDIO.includes(fd)) continue; // closed stdio: nothing to keep
        throw err;
      }
      if (on) { setCloexec(fd, false); cleared.push(fd); }
    }
    return execve(process.execPath, argv, env);
  } catch (err) {
    if (forwarding) handle!.forward(false);
    if (oldMask) sigprocmask('setmask', oldMask);
    for (const fd of cleared) setCloexec(fd, true);
    throw err;
  }
}
