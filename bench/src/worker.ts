// Client workers inside a namespace: a process that prints JSON lines, the
// first `{"ready":true}` once it has loaded its libraries (and connected,
// for warm workloads), then waits for GO on stdin before the timed part.
// Starting a worker is never inside a measurement; each worker times
// itself and reports one JSON line.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export const BENCH_DIR = path.resolve(__dirname, '..');
export const REPO_DIR = path.resolve(BENCH_DIR, '..');
/** Debian's python3, the one python3-libvirt is installed for (not a pyenv shim). */
export const PYTHON = '/usr/bin/python3';
export const REAL_CLIENT = path.join(BENCH_DIR, 'py', 'real_client.py');
export const OUR_CLIENT = path.join(BENCH_DIR, 'dist', 'clients', 'ours.js');

const live = new Set<ChildProcess>();
/** Kills every worker still running (called from the clean-up path). */
export function killWorkers(): void {
  for (const p of live) { try { p.kill('SIGKILL'); } catch { /* gone */ } }
  live.clear();
}

export type Side = 'ours' | 'real';

export class Worker {
  private readonly proc: ChildProcess;
  private buf = '';
  private stderr = '';
  private readonly queue: unknown[] = [];
  private waiting: ((v: unknown) => void) | undefined;
  private failed: ((e: Error) => void) | undefined;
  private exited = false;

  /**
   * Runs `argv` inside the mount and pid namespaces of `nsPid`. The fd limit
   * is inherited (this machine's hard limit is 20000 and CAP_SYS_RESOURCE is
   * not ours to raise it); workers raise their soft limit to the hard one.
   */
  constructor(nsPid: number, argv: readonly string[], readonly label: string) {
    this.proc = spawn('nsenter', ['-t', String(nsPid), '-m', '-p', '--', ...argv], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LANG: 'C.UTF-8' },
    });
    live.add(this.proc);
    this.proc.stdout!.on('data', (d: Buffer) => {
      this.buf += d.toString();
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i).trim();
        this.buf = this.buf.slice(i + 1);
        if (!line) continue;
        let v: unknown;
        try { v = JSON.parse(line); } catch { v = { text: line }; }
        if (this.waiting) { const w = this.waiting; this.waiting = undefined; this.failed = undefined; w(v); } else this.queue.push(v);
      }
    });
    this.proc.stderr!.on('data', (d: Buffer) => { this.stderr += d.toString(); });
    this.proc.stdin!.on('error', () => { /* the worker may be gone */ });
    this.proc.on('close', (code, sig) => {
      this.exited = true;
      live.delete(this.proc);
      const f = this.failed;
      this.waiting = undefined;
      this.failed = undefined;
      f?.(new Error(`${this.label}: worker exited (${code ?? sig}) before answering: ${this.stderr.trim().slice(-600)}`));
    });
  }

  static for(side: Side, nsPid: number, args: readonly string[]): Worker {
    const argv = side === 'ours' ? [process.execPath, OUR_CLIENT, ...args] : [PYTHON, REAL_CLIENT, ...args];
    return new Worker(nsPid, argv, `${side} ${args[0]}`);
  }

  /** The next JSON line the worker prints. */
  next<T = Record<string, unknown>>(timeoutMs = 60_000): Promise<T> {
    if (this.queue.length) return Promise.resolve(this.queue.shift() as T);
    if (this.exited) return Promise.reject(new Error(`${this.label}: worker exited: ${this.stderr.trim().slice(-600)}`));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        this.failed = undefined;
        reject(new Error(`${this.label}: no answer within ${timeoutMs} ms; stderr: ${this.stderr.trim().slice(-600)}`));
      }, timeoutMs);
      this.waiting = (v) => { clearTimeout(timer); resolve(v as T); };
      this.failed = (e) => { clearTimeout(timer); reject(e); };
    });
  }

  async ready(timeoutMs = 30_000): Promise<void> {
    const r = await this.next<{ ready?: boolean; text?: string }>(timeoutMs);
    if (!r.ready) throw new Error(`${this.label}: expected READY, got ${JSON.stringify(r)}`);
  }

  go(): void { this.proc.stdin!.write('GO\n'); }

  /** Ends a holding worker (closes its stdin) and waits for it. */
  async end(timeoutMs = 10_000): Promise<void> {
    this.proc.stdin!.end();
    if (this.exited) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { this.kill(); resolve(); }, timeoutMs);
      this.proc.once('close', () => { clearTimeout(t); resolve(); });
    });
  }

  kill(): void { try { this.proc.kill('SIGKILL'); } catch { /* gone */ } }

  /** READY, GO, then the one result line. */
  static async once<T>(side: Side, nsPid: number, args: readonly string[], timeoutMs = 60_000): Promise<T> {
    const w = Worker.for(side, nsPid, args);
    try {
      await w.ready();
      w.go();
      const r = await w.next<T & { error?: string }>(timeoutMs);
      return r;
    } finally {
      await w.end(2_000);
    }
  }
}
