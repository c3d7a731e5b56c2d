// Start a real daemon binary and watch it. Session mode runs as a real
// ordinary user; system mode runs as root inside a private mount namespace
// with its own /run, so it never touches the machine's /run/libvirt. A
// shell stays in that namespace after the daemon exits and lists /run, so
// tests can check what the daemon left behind.
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import type { TestUser } from './users.js';
import { tempDir } from './tmp.js';
import { waitFor } from './wait.js';

const repo = path.resolve(__dirname, '../../../..');
export const binPath = (name: string): string => path.join(repo, 'node_modules', '.bin', name);
export const repoRoot = repo;

const live = new Set<ChildProcess & { daemonPid?: number }>();
const killAll = (): void => {
  for (const p of live) {
    try { if (p.daemonPid) process.kill(p.daemonPid, 'SIGKILL'); } catch { /* gone */ }
    try { p.kill('SIGKILL'); } catch { /* gone */ }
  }
};
process.on('exit', killAll);
// tap ends a test that ran out of time with SIGALRM; leave no daemon behind.
process.on('SIGALRM', killAll);

export interface DaemonOptions {
  readonly name: string;
  readonly args?: readonly string[];
  /** System mode: root in a private mount namespace. Session mode needs `user`. */
  readonly mode: 'system' | 'session';
  readonly user?: TestUser;
  /** Environment of the daemon (session: the user's; merged over a minimal PATH). */
  readonly env?: Record<string, string>;
  /** Written to a temp file and passed with --config. */
  readonly config?: string;
  /** Extra shell run in the namespace before the daemon (system mode). */
  readonly nsSetup?: string;
  /** A command the daemon runs under, e.g. systemd-socket-activate and its flags. */
  readonly wrap?: readonly string[];
  /**
   * System mode: bind this host directory over the namespace's /run/libvirt,
   * so other users can reach the sockets (they cannot follow /proc/PID/root).
   */
  readonly exposeRunDir?: string;
  /**
   * System mode: bind this host directory over /etc/libvirt instead of a
   * fresh one, so a restarted daemon finds what the last one stored there
   * (pass the previous handle's `etcDir`).
   */
  readonly etcDir?: string;
  /**
   * System mode: bind this host directory as /run instead of a fresh tmpfs,
   * so a restarted daemon meets the socket and pid files a killed one left.
   */
  readonly runDir?: string;
}

export interface Exit { code: number | null; signal: NodeJS.Signals | null }

export class DaemonHandle {
  readonly proc: ChildProcess;
  readonly mode: 'system' | 'session';
  /** The daemon's pid (in system mode, the process inside the namespace). */
  pid = 0;
  stdout = '';
  stderr = '';
  /** System mode: what `ls -la /run /run/libvirt` showed after the daemon exited. */
  runAfterExit = '';
  readonly exited: Promise<Exit>;
  readonly configFile?: string;
  /** System mode: the host directory bound over /etc/libvirt in the namespace. */
  etcDir = '';

  constructor(proc: ChildProcess, mode: 'system' | 'session', configFile?: string) {
    this.proc = proc;
    this.mode = mode;
    if (configFile) this.configFile = configFile;
    live.add(proc);
    proc.stdout!.on('data', (d: Buffer) => { this.stdout += d; this.parseMarkers(); });
    proc.stderr!.on('data', (d: Buffer) => { this.stderr += d; });
    this.exited = new Promise((resolve) => {
      // 'close', not 'exit': the shell's EXIT marker must have been read.
      proc.on('close', (code, signal) => {
        live.delete(proc);
        if (mode === 'system') {
          const m = /^EXIT (\d+)$/m.exec(this.stdout);
          const after = this.stdout.split('RUN-AFTER\n')[1];
          this.runAfterExit = after ?? '';
          // The shell reports the daemon's status as 128+N when a signal killed it.
          const status = m ? Number(m[1]) : code;
          if (status !== null && status > 128 && m) resolve({ code: null, signal: signalName(status - 128) });
          else resolve({ code: status, signal });
        } else {
          resolve({ code, signal });
        }
      });
    });
    if (mode === 'session') this.pid = proc.pid!;
  }

  private parseMarkers(): void {
    if (!this.pid) {
      const m = /^PID (\d+)$/m.exec(this.stdout);
      if (m) {
        this.pid = Number(m[1]);
        (this.proc as ChildProcess & { daemonPid?: number }).daemonPid = this.pid;
      }
    }
  }

  /**
   * Starts another daemon inside this one's mount namespace (system mode),
   * e.g. virtsecretd beside virtproxyd. nsenter execs into the daemon, so
   * the handle's pid is the daemon's.
   */
  companion(name: string, args: readonly string[] = []): DaemonHandle {
    if (this.mode !== 'system' || !this.pid) throw new Error('companions need a started system-mode daemon');
    const proc = spawn('nsenter', ['-t', String(this.pid), '-m', '--', binPath(name), ...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/root' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const h = new DaemonHandle(proc, 'session');
    // Paths resolve through the first daemon's namespace view.
    h.path = (p: string): string => this.path(p);
    return h;
  }

  /** A path as the daemon sees it, reachable from the test (root) process. */
  path(p: string): string {
    return this.mode === 'system' ? `/proc/${this.pid}/root${p}` : p;
  }

  get output(): string {
    return this.stdout + this.stderr;
  }

  async started(): Promise<void> {
    await waitFor(() => this.pid > 0 || this.proc.exitCode !== null, 10_000, 'daemon pid');
  }

  /** Waits until a socket accepts connections (or the daemon exits). */
  async socketReady(p: string, ms = 15_000): Promise<void> {
    await this.started();
    await waitFor(async () => {
      if (this.proc.exitCode !== null) throw new Error(`daemon exited early:\n${this.output}`);
      return canConnect(this.path(p));
    }, ms, `socket ${p}`);
  }

  /**
   * Waits until the daemon serves calls: a health check on a socket
   * succeeds only once every listener exists and accepting has begun.
   */
  async ready(socket: string, ms = 15_000): Promise<void> {
    await this.socketReady(socket, ms);
    const { Connection, unixTarget } = await import('@virtd/client');
    const { HealthService } = await import('@virtd/protocol/health');
    const c = new Connection(unixTarget(this.path(socket)));
    try {
      await waitFor(async () => {
        if (this.proc.exitCode !== null) throw new Error(`daemon exited early:\n${this.output}`);
        return c.unary(HealthService, 'Check', {}, { deadlineMs: 2000 }).then(() => true, () => false);
      }, ms, `daemon ready on ${socket}`);
    } finally {
      c.close();
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.pid) process.kill(this.pid, sig);
  }

  async stop(sig: NodeJS.Signals = 'SIGTERM', ms = 35_000): Promise<Exit> {
    if (this.proc.exitCode === null && this.pid) {
      try { process.kill(this.pid, sig); } catch { /* already gone */ }
    }
    const t = setTimeout(() => this.kill(), ms);
    try {
      return await this.exited;
    } finally {
      clearTimeout(t);
    }
  }

  kill(): void {
    try { if (this.pid) process.kill(this.pid, 'SIGKILL'); } catch { /* gone */ }
    try { this.proc.kill('SIGKILL'); } catch { /* gone */ }
  }
}

function signalName(n: number): NodeJS.Signals {
  const names: Record<number, NodeJS.Signals> = { 1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 9: 'SIGKILL', 10: 'SIGUSR1', 15: 'SIGTERM', 6: 'SIGABRT', 11: 'SIGSEGV' };
  return names[n] ?? 'SIGTERM';
}

/** Direct children of a process (e.g. the daemon systemd-socket-activate spawned). */
export function childPids(pid: number): number[] {
  try {
    return fs.readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
  } catch {
    return [];
  }
}

/** A free TCP port on the loopback (bound then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export function canConnect(p: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(p);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/** Starts a daemon; does not wait for readiness. */
export function startDaemon(o: DaemonOptions): DaemonHandle {
  const args = [...(o.args ?? [])];
  let configFile: string | undefined;
  if (o.config !== undefined) {
    const dir = tempDir('virtd-conf-');
    configFile = path.join(dir, `${o.name}.conf`);
    fs.writeFileSync(configFile, o.config);
    fs.chmodSync(configFile, 0o644);
    args.unshift(`--config=${configFile}`);
  }
  if (o.mode === 'session') {
    if (!o.user) throw new Error('session mode needs a user');
    const [cmd, ...pre] = [...(o.wrap ?? []), binPath(o.name)];
    const proc = spawn(cmd!, [...pre, ...args], {
      uid: o.user.uid,
      gid: o.user.gid,
      cwd: o.user.home,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: o.user.home, ...(o.env ?? {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new DaemonHandle(proc, 'session', configFile);
  }
  // /etc/libvirt is replaced by an empty directory so the machine's own
  // config files (real libvirt's, say) cannot leak into the test, and what
  // the daemon writes there (secrets) stays in the test's directory.
  // /var/cache/libvirt is a fresh tmpfs: what drivers keep between runs
  // (the QEMU capabilities cache) must not land in the machine's.
  const etc = o.etcDir ?? tempDir('virtd-etc-');
  fs.mkdirSync('/etc/libvirt', { recursive: true });
  fs.mkdirSync('/var/cache/libvirt', { recursive: true });
  const script = [
    'set -e',
    o.runDir ? `mount --bind ${o.runDir} /run` : 'mount -t tmpfs -o mode=755 tmpfs /run',
    `mount --bind ${etc} /etc/libvirt`,
    'mount -t tmpfs -o mode=755 tmpfs /var/cache/libvirt',
    ...(o.exposeRunDir ? [`mkdir -p /run/libvirt && mount --bind ${o.exposeRunDir} /run/libvirt`] : []),
    o.nsSetup ?? ':',
    'set +e',
    '"$@" &',
    'echo "PID $!"',
    'wait $!',
    'echo "EXIT $?"',
    'echo RUN-AFTER',
    'ls -la /run /run/libvirt 2>&1',
  ].join('\n');
  const proc = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', ...(o.wrap ?? []), binPath(o.name), ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/root', ...(o.env ?? {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const h = new DaemonHandle(proc, 'system', configFile);
  h.etcDir = etc;
  return h;
}
