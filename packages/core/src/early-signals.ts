// Loaded first by every daemon binary, before anything else is required.
// Node starts its inspector on SIGUSR1 and dies on SIGHUP unless a handler
// is installed; from this module's first line on, both (and the quit
// signals) are only queued. runDaemon() takes the queue over when its own
// handlers are in place, so no signal is lost and none opens a debug port.
const CAUGHT = ['SIGUSR1', 'SIGUSR2', 'SIGHUP', 'SIGTERM', 'SIGINT', 'SIGQUIT'] as const;
export type CaughtSignal = (typeof CAUGHT)[number];

const queued: CaughtSignal[] = [];
const early = (sig: NodeJS.Signals): void => { queued.push(sig as CaughtSignal); };
let installed = false;

export function installEarlySignals(): void {
  if (installed) return;
  installed = true;
  for (const s of CAUGHT) process.on(s, early);
}

/**
 * Installs `handler` for every caught signal, then removes the early
 * handlers and returns what they queued (in arrival order).
 */
export function takeOverSignals(handler: (sig: CaughtSignal) => void): CaughtSignal[] {
  for (const s of CAUGHT) process.on(s, handler as (sig: NodeJS.Signals) => void);
  for (const s of CAUGHT) process.off(s, early);
  installed = false;
  return queued.splice(0);
}

installEarlySignals();
