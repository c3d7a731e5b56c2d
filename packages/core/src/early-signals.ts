// Loaded first by every daemon binary, before anything else is required.
// Node starts its inspector on SIGUSR1 and dies on SIGHUP unless a handler
// is installed; from this module's first line on, both (and the quit
// signals) are only queued. runDaemon() takes the queue over when its own
// handlers are in place, so no signal is lost and none opens a debug port.
//
// After an in-place re-exec (exec-self.ts) the window before this module is
// covered by native/signal-shim.c instead: it counted what arrived and kept
// Node from installing its own handlers. Only that path loads koffi; a cold
// start stays lean.
import type * as Signals from '@virtd/posix/dist/src/signals.js';

const CAUGHT = ['SIGUSR1', 'SIGUSR2', 'SIGHUP', 'SIGTERM', 'SIGINT', 'SIGQUIT'] as const;
export type CaughtSignal = (typeof CAUGHT)[number];
/** Set by execSelf() to the shim's path in the new image's environment. */
const SHIM_ENV = 'VIRTD_SIGNAL_SHIM';

export interface EarlySignalCounts {
  /** 'none': a normal start. 'held': re-exec'd with the shim preloaded and holding. 'missed': re-exec'd, but ld.so did not preload the shim (e.g. AT_SECURE), so start-up was unprotected. */
  shim: 'none' | 'held' | 'missed';
  /** Caught by the shim between execve and our handlers. */
  byShim: Record<CaughtSignal, number>;
  /** Caught by the early handler before takeOverSignals(). */
  byJs: Record<CaughtSignal, number>;
  /** Of both, how many were not queued because the same signal already was (re-exec'd start only). */
  coalesced: Record<CaughtSignal, number>;
}

const zero = (): Record<CaughtSignal, number> =>
  ({ SIGUSR1: 0, SIGUSR2: 0, SIGHUP: 0, SIGTERM: 0, SIGINT: 0, SIGQUIT: 0 });
const counts: EarlySignalCounts = { shim: 'none', byShim: zero(), byJs: zero(), coalesced: zero() };
let shim: Signals.SignalShim | undefined;
let inspectorUrl: string | undefined;

const queued: CaughtSignal[] = [];
// A re-exec'd image can inherit a storm (SIGUSR1 → re-exec, SIGHUP → reload):
// queue each signal once, as the kernel keeps each pending once.
function enqueue(sig: CaughtSignal, n: number): void {
  if (n <= 0) return;
  if (counts.shim === 'none') {
    for (let i = 0; i < n; i++) queued.push(sig);
    return;
  }
  const dup = queued.includes(sig);
  if (!dup) queued.push(sig);
  counts.coalesced[sig] += dup ? n : n - 1;
}
const early = (sig: NodeJS.Signals): void => {
  counts.byJs[sig as CaughtSignal]++;
  enqueue(sig as CaughtSignal, 1);
};
let installed = false;

export function installEarlySignals(): void {
  if (installed) return;
  installed = true;
  const shimPath = process.env[SHIM_ENV];
  if (shimPath !== undefined && counts.shim === 'none') { adoptShim(shimPath); return; }
  for (const s of CAUGHT) process.on(s, early);
}

/** Takes what the shim counted since the last call into the queue. */
function drainShim(): void {
  if (!shim) return;
  for (const s of CAUGHT) {
    const n = shim.take(s);
    counts.byShim[s] += n;
    enqueue(s, n);
  }
}

function adoptShim(shimPath: string): void {
  // signals.js alone: the package index would load every posix module (~5 ms).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const posix = require('@virtd/posix/dist/src/signals.js') as typeof Signals;
  shim = posix.openSignalShim(shimPath);
  // Order: the shim's handler stays installed until libuv's replaces it, and
  // whatever it counted is taken only after that; anything later reaches
  // `early` through libuv. Listening before release() would be worse than
  // useless: the shim swallows libuv's sigaction() and libuv never retries.
  // Code preloaded before us (--import/--require in NODE_OPTIONS, as tap
  // does) may already listen to these signals: libuv's sigaction for them
  // was swallowed and libuv will not try again. So every listener is
  // dropped while the shim still holds (libuv's reset to SIG_DFL is
  // swallowed too, its counting handler stays), and added again after the
  // release, when libuv installs its handler for real. Dropping after the
  // release would leave SIG_DFL in place for a moment, and blocking the
  // signals on this thread does not keep them from Node's other threads:
  // a SIGHUP there then killed the daemon (reexec.test's storm).
  posix.sigprocmask('block', CAUGHT);
  const prior = new Map(CAUGHT.map((s) => [s, process.listeners(s) as ((sig: NodeJS.Signals) => void)[]]));
  for (const s of CAUGHT) process.removeAllListeners(s);
  counts.shim = shim.release() ? 'held' : 'missed';
  for (const s of CAUGHT) {
    for (const l of prior.get(s)!) process.on(s, l);
    process.on(s, early);
  }
  drainShim();
  // execSelf() blocked these; Node unblocks them in PlatformInit, but the
  // inspector start-up sets masks of its own and we depend on neither.
  posix.sigprocmask('unblock', CAUGHT);
  // While the shim held, Node's SIGUSR1 handler (the inspector's trigger)
  // was never installed. Only if it missed is there anything to look at
  // (requiring inspector costs ~6 ms); an inspector asked for on the command
  // line is not ours to report: re-exec'ing would only open it again.
  const asked = /--inspect/.test(`${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`);
  if (counts.shim === 'missed' && !asked) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      inspectorUrl = (require('node:inspector') as typeof import('node:inspector')).url();
    } catch { /* built without the inspector */ }
  }
  // Children must not inherit the shim (it would hold their signals forever).
  const rest = (process.env.LD_PRELOAD ?? '').split(/[:\s]+/).filter((p) => p !== '' && p !== shimPath);
  if (rest.length > 0) process.env.LD_PRELOAD = rest.join(':');
  else delete process.env.LD_PRELOAD;
  delete process.env[SHIM_ENV];
}

/**
 * Installs `handler` for every caught signal, then removes the early
 * handlers and returns what they queued (in arrival order).
 */
export function takeOverSignals(handler: (sig: CaughtSignal) => void): CaughtSignal[] {
  for (const s of CAUGHT) process.on(s, handler as (sig: NodeJS.Signals) => void);
  for (const s of CAUGHT) process.off(s, early);
  // A shim handler already running on another thread when libuv's replaced
  // it may have counted after adoptShim()'s take.
  drainShim();
  installed = false;
  return queued.splice(0);
}

/** What the early handlers and the re-exec shim saw, for the daemon to log. */
export function earlySignalCounts(): EarlySignalCounts {
  return { shim: counts.shim, byShim: { ...counts.byShim }, byJs: { ...counts.byJs }, coalesced: { ...counts.coalesced } };
}

/**
 * After a re-exec whose shim 'missed': the inspector's URL if a SIGUSR1
 * opened one before our handlers were in place (not one asked for with
 * --inspect). The daemon should re-exec again at once: the inspector's
 * socket is close-on-exec.
 */
export function earlyInspectorUrl(): string | undefined {
  return inspectorUrl;
}

installEarlySignals();
