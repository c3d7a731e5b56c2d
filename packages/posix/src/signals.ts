// Signal masks, which Node does not expose, and the handle on core's
// re-exec signal shim (packages/core/native/signal-shim.c).
import { constants } from 'node:os';
import { bound, check, errno, loadLibrary, PosixError } from './libc.js';

/** glibc's sigset_t: 1024 bits, opaque; build one with sigset(). */
export type Sigset = Buffer;
const SIGSET_BYTES = 128;

export type SigHow = 'block' | 'unblock' | 'setmask';
const HOW: Record<SigHow, number> = { block: 0, unblock: 1, setmask: 2 };

export type Signal = NodeJS.Signals | number;
const signo = (s: Signal): number => {
  const n = typeof s === 'number' ? s : constants.signals[s];
  if (n === undefined) throw new RangeError(`unknown signal ${String(s)}`);
  return n;
};

export function sigset(signals: readonly Signal[]): Sigset {
  const b = bound();
  const set = Buffer.alloc(SIGSET_BYTES);
  b.sigemptyset(set);
  for (const s of signals) check('sigaddset', b.sigaddset(set, signo(s)), String(s));
  return set;
}

export function sigismember(set: Sigset, sig: Signal): boolean {
  return check('sigismember', bound().sigismember(set, signo(sig))) === 1;
}

/**
 * Changes the calling thread's signal mask (only the main JS thread's: libuv
 * and V8 threads keep theirs) and returns the previous mask. A null `set`
 * only reads it.
 */
export function sigprocmask(how: SigHow, set: Sigset | readonly Signal[] | null): Sigset {
  const old = Buffer.alloc(SIGSET_BYTES);
  const arg = set === null || Buffer.isBuffer(set) ? set : sigset(set);
  check('sigprocmask', bound().sigprocmask(HOW[how], arg, old));
  return old;
}

/** What core's signal shim exports (see signal-shim.c for the why). */
export interface SignalShim {
  /** Lets sigaction() through again; true if the shim was preloaded and holding. */
  release(): boolean;
  /** How many `sig` the shim's handler caught since the last take; resets the count. */
  take(sig: Signal): number;
  /**
   * true: the caught signals, which the caller has blocked on this thread,
   * are re-raised at this thread when another thread takes one, so they stay
   * pending across execve. false: puts back the handlers it replaced.
   */
  forward(on: boolean): void;
}

/** Binds the shim at `path`; if it was preloaded, this is the running copy. */
export function openSignalShim(path: string): SignalShim {
  const lib = loadLibrary(path);
  const release = lib.func('int virtd_shim_release(void)');
  const take = lib.func('int virtd_shim_take(int sig)');
  const forward = lib.func('int virtd_shim_forward(int on)');
  return {
    release: () => release() === 1,
    take: (sig) => take(signo(sig)) as number,
    forward: (on) => {
      if (forward(on ? 1 : 0) !== 0) throw new PosixError('sigaction', errno(), 'signal shim');
    },
  };
}
