// Start-up stages and their exit statuses, libvirt's VIR_DAEMON_ERR_* table.
// A failure anywhere in start-up is raised as a StartupError naming its
// stage; daemon.ts logs one line with stage and cause and exits with the code.

export const EXIT = {
  OK: 0,
  /** Bad arguments, config load, pid file (libvirt exits 1 for all three). */
  FAILURE: 1,
  PIDFILE: 1,
  RUNDIR: 2,
  INIT: 3,
  SIGNAL: 4,
  PRIVS: 5,
  NETWORK: 6,
  CONFIG: 7,
  HOOKS: 8,
  REEXEC: 9,
  AUDIT: 10,
  DRIVER: 11,
} as const;

export type Stage = 'arguments' | 'config' | 'logging' | 'pidfile' | 'rundir' | 'init' | 'network' | 'reexec' | 'driver';

/** What each stage's exit code means, as the --daemon parent reports it. */
const STAGE: Record<Stage, { code: number; text: string }> = {
  arguments: { code: EXIT.FAILURE, text: 'Invalid command line' },
  config: { code: EXIT.FAILURE, text: 'Unable to load configuration file' },
  logging: { code: EXIT.FAILURE, text: 'Unable to set up logging' },
  pidfile: { code: EXIT.PIDFILE, text: 'Unable to obtain pidfile' },
  rundir: { code: EXIT.RUNDIR, text: 'Unable to create rundir' },
  init: { code: EXIT.INIT, text: 'Unable to initialize libvirt' },
  network: { code: EXIT.NETWORK, text: 'Unable to initialize network sockets' },
  reexec: { code: EXIT.REEXEC, text: 'Unable to re-execute daemon' },
  driver: { code: EXIT.DRIVER, text: 'Unable to initialize driver' },
};

export class StartupError extends Error {
  readonly stage: Stage;
  constructor(stage: Stage, cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = 'StartupError';
    this.stage = stage;
  }
  get exitCode(): number { return STAGE[this.stage].code; }
  get summary(): string { return STAGE[this.stage].text; }
}

/** The text libvirt's --daemon parent prints for a child's status byte. */
export function statusText(code: number): string {
  const hit = Object.values(STAGE).find((s) => s.code === code && code !== EXIT.FAILURE);
  if (hit) return hit.text;
  return code === EXIT.FAILURE ? 'Unable to start the daemon' : `Unknown failure ${code}`;
}

/** Runs one start-up step, turning any error into that stage's StartupError. */
export async function stage<T>(name: Stage, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof StartupError) throw e;
    throw new StartupError(name, e);
  }
}
