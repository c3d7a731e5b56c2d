// --daemon without fork(): the parent starts a detached copy of itself in a
// new session with stdio on /dev/null and waits for a one-byte start-up
// status on a pipe (fd 3 in the child), like libvirt's double-fork
// handshake. The child reports through reportStartup().
import fs from 'node:fs';
import type { spawn as SpawnFn } from 'node:child_process';

/** Set in the child's environment; removed as soon as the child reads it. */
export const CHILD_ENV = 'VIRTD_DAEMON_STATUS_FD';
const STATUS_FD = 3;

export interface DaemonChild {
  /** Reports the start-up outcome (0 = ready) to the waiting parent, once. */
  report(code: number): void;
}

/** In a daemonized child: the reporter, and the marker removed from env. */
export function daemonChild(env: Record<string, string | undefined>): DaemonChild | undefined {
  if (env[CHILD_ENV] !== String(STATUS_FD)) return undefined;
  delete env[CHILD_ENV];
  let done = false;
  return {
    report(code: number): void {
      if (done) return;
      done = true;
      try {
        fs.writeSync(STATUS_FD, Buffer.from([code & 0xff]));
        fs.closeSync(STATUS_FD);
      } catch { /* parent gone: nothing to tell */ }
    },
  };
}

/**
 * Starts the detached child and resolves with its start-up status byte, or
 * with undefined when it died without reporting.
 */
export function spawnDaemonChild(script: string, args: string[], env: Record<string, string | undefined>): Promise<number | undefined> {
  // child_process is loaded only by the --daemon parent.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { spawn } = require('node:child_process') as { spawn: typeof SpawnFn };
  const child = spawn(process.execPath, [...process.execArgv, script, ...args], {
    cwd: '/',
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
    env: { ...env, [CHILD_ENV]: String(STATUS_FD) },
  });
  child.unref();
  const pipe = child.stdio[STATUS_FD] as NodeJS.ReadableStream & { unref?: () => void };
  return new Promise((resolve) => {
    let got: number | undefined;
    pipe.on('data', (b: Buffer) => { if (got === undefined && b.length) got = b[0]; });
    pipe.on('end', () => resolve(got));
    pipe.on('error', () => resolve(got));
  });
}
