// Readiness and status for Type=notify units.
import { libsystemd } from './libsystemd.js';

export interface Notifier {
  /** True when a service manager is listening (NOTIFY_SOCKET set). */
  readonly active: boolean;
  ready(status?: string): void;
  reloading(): void;
  stopping(status?: string): void;
  status(text: string): void;
}

/**
 * A notifier for this process. libsystemd's sd_notify reads NOTIFY_SOCKET
 * from the process environment itself; without it every call is a no-op,
 * as libvirt skips notification silently outside systemd.
 */
export function createNotifier(): Notifier {
  const active = !!process.env.NOTIFY_SOCKET && libsystemd() !== null;
  const send = (state: string): void => {
    if (!active) return;
    // sd_notify reads NOTIFY_SOCKET itself; 0 leaves the variable in place
    // so a re-exec'd image can still notify.
    libsystemd()!.sdNotify(0, state);
  };
  const clean = (s: string): string => s.replace(/\n/g, ' ');
  return {
    active,
    ready: (status) => send(status ? `READY=1\nSTATUS=${clean(status)}` : 'READY=1'),
    reloading: () => send(`RELOADING=1\nMONOTONIC_USEC=${monotonicUsec()}`),
    stopping: (status) => send(status ? `STOPPING=1\nSTATUS=${clean(status)}` : 'STOPPING=1'),
    status: (text) => send(`STATUS=${clean(text)}`),
  };
}

function monotonicUsec(): string {
  return (process.hrtime.bigint() / 1000n).toString();
}
