// Crash rigs: a system-mode daemon that is killed with SIGKILL and started
// again over what it left behind. Its /etc/libvirt and /run are host
// directories kept across restarts (startDaemon's etcDir and runDir), so a
// restart meets the previous image's stored state, socket files and pid
// file, and the test reads them directly, even while no daemon runs.
import fs from 'node:fs';
import path from 'node:path';
import { startDaemon, type DaemonHandle, type DaemonOptions, type Exit } from './daemon.js';
import { tempDir } from './tmp.js';

// The writer virtlogd's tests crash under (crash and disk-full scenarios).
export { LogWriter, logLine, type LogWriterOptions } from './log-writer.js';

export interface CrashRigOptions extends Partial<Pick<DaemonOptions, 'args' | 'config' | 'nsSetup' | 'env'>> {
  readonly name: string;
}

/** What a killed daemon left in /run. */
export interface Leftovers {
  /** Socket files still present under /run/libvirt. */
  readonly sockets: string[];
  /** The pid file's content, if the file is there. */
  readonly pidFile: string | undefined;
}

export class CrashRig {
  readonly name: string;
  /** Host directory bound over /etc/libvirt. */
  readonly etcDir: string;
  /** Host directory bound as /run. */
  readonly runDir: string;
  private readonly opts: CrashRigOptions;
  private current: DaemonHandle | undefined;
  /** How many times the daemon was started. */
  starts = 0;

  constructor(o: CrashRigOptions) {
    this.name = o.name;
    this.opts = o;
    this.etcDir = tempDir('virtd-etc-');
    this.runDir = tempDir('virtd-run-');
  }

  /** The running daemon (throws before the first start). */
  get daemon(): DaemonHandle {
    if (!this.current) throw new Error(`${this.name} was never started`);
    return this.current;
  }

  /** A host path for a socket: `sock`, `sock-ro`, `admin-sock`. */
  socket(kind = 'sock'): string {
    return path.join(this.runDir, 'libvirt', `${this.name}-${kind}`);
  }

  get pidFile(): string {
    return path.join(this.runDir, `${this.name}.pid`);
  }

  /** Starts the daemon (again) and waits until its main socket serves calls. */
  async start(): Promise<DaemonHandle> {
    const { name, args, config, nsSetup, env } = this.opts;
    const h = startDaemon({
      name, mode: 'system', etcDir: this.etcDir, runDir: this.runDir,
      ...(args ? { args } : {}), ...(config !== undefined ? { config } : {}),
      ...(nsSetup ? { nsSetup } : {}), ...(env ? { env } : {}),
    });
    this.current = h;
    this.starts++;
    await h.ready(`/run/libvirt/${name}-sock`);
    return h;
  }

  /** SIGKILL, then waits until the process is gone (its fds, and so its locks, with it). */
  async crash(): Promise<Exit> {
    const h = this.daemon;
    h.signal('SIGKILL');
    return h.exited;
  }

  leftovers(): Leftovers {
    const dir = path.join(this.runDir, 'libvirt');
    const sockets = fs.existsSync(dir)
      ? fs.readdirSync(dir).filter((f) => f.startsWith(`${this.name}-`) && fs.statSync(path.join(dir, f)).isSocket())
      : [];
    let pidFile: string | undefined;
    try { pidFile = fs.readFileSync(this.pidFile, 'utf8'); } catch { pidFile = undefined; }
    return { sockets: sockets.sort(), pidFile };
  }

  /** Stops the daemon for good (SIGTERM), if one runs. */
  async stop(): Promise<Exit | undefined> {
    const h = this.current;
    if (!h || h.proc.exitCode !== null) return undefined;
    return h.stop();
  }

  kill(): void {
    this.current?.kill();
  }
}

/**
 * A small seeded generator (mulberry32), so a failing run's choices can be
 * replayed with the seed it printed (the kill timing itself cannot be).
 */
export function seededRandom(seed: number): { next(): number; int(n: number): number; pick<T>(xs: readonly T[]): T } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return { next, int, pick: <T>(xs: readonly T[]): T => xs[int(xs.length)]! };
}
