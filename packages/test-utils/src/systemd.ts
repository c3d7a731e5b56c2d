// A real `systemd --system`, booted as PID 1 of fresh namespaces, isolated
// from the machine as ../shared/TESTING.md §1 prescribes: its own cgroup
// subtree, private tmpfs on /run, /tmp and /var/tmp (sysinit would empty
// the machine's /tmp otherwise) and on /var/cache/libvirt (driver caches),
// container= set so shutdown does not remount the shared root read-only, a
// target of our own that pulls nothing in, and no default dependencies on
// the units under test. Driven with nsenter.
import fs from 'node:fs';
import path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import { run, type RunResult } from './run.js';
import { waitFor, sleep } from './wait.js';
import { childPids, repoRoot } from './daemon.js';

export interface SystemdOptions {
  /** Host directories bound over paths inside (e.g. a temp dir over /etc/libvirt). */
  readonly binds?: readonly { readonly host: string; readonly target: string }[];
  /** Unit files to place in /run/systemd/system: name → text. */
  readonly units?: Readonly<Record<string, string>>;
  /** A private network namespace with its own loopback (TCP/TLS tests). */
  readonly net?: boolean;
}

/** Fresh tmpfs inside the namespace: host paths under them are not seen there. */
const PRIVATE_INSIDE = ['/tmp', '/var/tmp', '/run', '/dev/shm'];
const privateInside = (p: string): boolean => PRIVATE_INSIDE.some((d) => p === d || p.startsWith(`${d}/`));

/**
 * A host directory for `kind`'s work files (units, binds) that the
 * namespace's systemd can see: under the checkout's .cache, unless the
 * checkout itself lives in /tmp or the like (a CI clone), then under
 * /var/cache/virtd-node.
 */
export function namespaceScratch(kind: string): string {
  return path.join(privateInside(repoRoot) ? '/var/cache/virtd-node' : path.join(repoRoot, '.cache'), kind);
}

const CG_V1 = '/sys/fs/cgroup/systemd';
const CG_V2 = '/sys/fs/cgroup/unified';
let counter = 0;

function rmCgroupTree(dir: string): void {
  if (!fs.existsSync(dir)) return;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) rmCgroupTree(path.join(dir, e.name));
  }
  try { fs.rmdirSync(dir); } catch { /* still busy: reported by the caller */ }
}

export class SystemdNamespace {
  /** systemd's pid as the machine sees it. */
  readonly pid: number;
  readonly run: string;
  readonly logFile: string;
  private readonly net: boolean;
  private readonly launcher: number;

  private constructor(pid: number, launcher: number, runName: string, logFile: string, net: boolean) {
    this.pid = pid;
    this.launcher = launcher;
    this.run = runName;
    this.logFile = logFile;
    this.net = net;
  }

  static async boot(o: SystemdOptions, workDir: string): Promise<SystemdNamespace> {
    for (const p of [workDir, ...(o.binds ?? []).map((b) => b.host)]) {
      if (privateInside(path.resolve(p))) throw new Error(`${p} is hidden inside the namespace (${PRIVATE_INSIDE.join(', ')} are private there); use namespaceScratch()`);
    }
    const runName = `virtd-e2e-${process.pid}-${++counter}`;
    for (const root of [CG_V1, CG_V2]) fs.mkdirSync(path.join(root, runName));
    const logFile = path.join(workDir, `${runName}.log`);
    const unitDir = path.join(workDir, `${runName}-units`);
    fs.mkdirSync(unitDir, { recursive: true });
    for (const [name, text] of Object.entries(o.units ?? {})) {
      // Names may be drop-ins: "virtsecretd.service.d/test.conf".
      fs.mkdirSync(path.dirname(path.join(unitDir, name)), { recursive: true });
      fs.writeFileSync(path.join(unitDir, name), text);
    }
    fs.writeFileSync(path.join(unitDir, 'virtd-test.target'), '[Unit]\nDescription=virtd-node test target\nDefaultDependencies=no\n');
    const confFile = path.join(workDir, `${runName}-system.conf`);
    fs.writeFileSync(confFile, ['[Manager]', ...['CPU', 'IO', 'IP', 'BlockIO', 'Memory', 'Tasks'].map((a) => `Default${a}Accounting=no`), ''].join('\n'));
    // A checkout under /tmp (a CI clone) would vanish under the private
    // tmpfs, and with it every daemon and client we run inside: it is bound
    // aside first, then back at its own path.
    const keepRepo = privateInside(repoRoot) ? path.join(namespaceScratch('stage'), runName) : undefined;
    if (keepRepo) fs.mkdirSync(keepRepo, { recursive: true });
    const init = path.join(workDir, `${runName}-init.sh`);
    fs.writeFileSync(init, [
      '#!/bin/bash',
      'set -e',
      ...(o.net ? ['ip link set lo up'] : []),
      ...(keepRepo ? [`mount --bind ${repoRoot} ${keepRepo}`] : []),
      'for d in /run /tmp /var/tmp; do mount -t tmpfs -o mode=1777 tmpfs $d; done',
      ...(keepRepo ? [`mkdir -p ${repoRoot} && mount --bind ${keepRepo} ${repoRoot}`] : []),
      'chmod 755 /run',
      // Driver caches (QEMU capabilities) stay in the namespace; binds may replace it.
      'mkdir -p /var/cache/libvirt && mount -t tmpfs -o mode=755 tmpfs /var/cache/libvirt',
      'mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup',
      'mkdir -p /sys/fs/cgroup/systemd /sys/fs/cgroup/unified',
      'mount -t cgroup -o none,name=systemd,xattr cgroup /sys/fs/cgroup/systemd',
      'mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup/unified',
      ...(o.binds ?? []).map((b) => `mkdir -p ${b.target} && mount --bind ${b.host} ${b.target}`),
      'mkdir -p /run/systemd/system /run/systemd/system.conf.d',
      `cp ${confFile} /run/systemd/system.conf.d/virtd-test.conf`,
      `cp -a ${unitDir}/. /run/systemd/system/`,
      'export container=virtd-test',
      'exec /lib/systemd/systemd --system --unit=virtd-test.target --log-level=notice',
      '',
    ].join('\n'), { mode: 0o755 });
    // The launcher moves itself into our cgroup subtree, then unshares.
    const flags = ['--cgroup', '--pid', '--fork', '--mount-proc', '--uts', '--ipc', '--mount', '--propagation', 'private', ...(o.net ? ['--net'] : [])];
    const script = `echo $$ > ${CG_V1}/${runName}/cgroup.procs; echo $$ > ${CG_V2}/${runName}/cgroup.procs; exec unshare ${flags.join(' ')} /bin/bash ${init}`;
    const out = fs.openSync(logFile, 'a');
    // detached: a session of its own; bash execs unshare, whose child is the namespace's PID 1.
    const launcher = spawn('bash', ['-c', script], { detached: true, stdio: ['ignore', out, out] });
    launcher.unref();
    fs.closeSync(out);
    let pid = 0;
    await waitFor(() => {
      const kids = childPids(launcher.pid!);
      pid = kids[0] ?? 0;
      return pid > 0;
    }, 10_000, 'the namespace init');
    const ns = new SystemdNamespace(pid, launcher.pid!, runName, logFile, !!o.net);
    try {
      await waitFor(async () => {
        const r = await ns.exec(['systemctl', 'is-system-running']);
        return /^(running|degraded)/.test(r.stdout);
      }, 20_000, 'systemd to reach running');
    } catch (e) {
      await ns.shutdown();
      throw new Error(`${(e as Error).message}\n${fs.readFileSync(logFile, 'utf8')}`);
    }
    return ns;
  }

  /** Runs a command inside the namespaces (mount, pid, and net when private). */
  exec(cmd: readonly string[], opts: { input?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<RunResult> {
    const ns = ['-t', String(this.pid), '-m', '-p', ...(this.net ? ['-n'] : []), '--'];
    return run('nsenter', [...ns, ...cmd], { ...opts, timeoutMs: opts.timeoutMs ?? 60_000 });
  }

  async systemctl(...args: string[]): Promise<RunResult> {
    return this.exec(['systemctl', '--no-pager', ...args]);
  }

  /** `systemctl show` properties as a record. */
  async show(unit: string, props: readonly string[]): Promise<Record<string, string>> {
    const r = await this.systemctl('show', unit, `--property=${props.join(',')}`);
    return Object.fromEntries(r.stdout.trim().split('\n').filter(Boolean).map((l) => {
      const i = l.indexOf('=');
      return [l.slice(0, i), l.slice(i + 1)];
    }));
  }

  async waitFor(unit: string, state: string, ms = 15_000): Promise<void> {
    await waitFor(async () => (await this.show(unit, ['ActiveState'])).ActiveState === state, ms, `${unit} to be ${state}`);
  }

  /** Writes a file inside (e.g. a drop-in under /run/systemd/system). */
  async writeFile(p: string, text: string): Promise<void> {
    const r = await this.exec(['sh', '-c', `mkdir -p "$(dirname '${p}')" && cat > '${p}'`], { input: text });
    if (r.code !== 0) throw new Error(`writing ${p}: ${r.stderr}`);
  }

  /** Powers off, waits for the namespace to end, removes its cgroups. */
  async shutdown(): Promise<void> {
    await this.exec(['systemctl', 'poweroff'], { timeoutMs: 10_000 }).catch(() => undefined);
    try {
      await waitFor(() => !fs.existsSync(`/proc/${this.pid}`), 15_000, 'systemd to exit');
    } catch {
      try { process.kill(this.pid, 'SIGKILL'); } catch { /* gone */ }
      await sleep(500);
    }
    try { process.kill(this.launcher, 'SIGKILL'); } catch { /* gone */ }
    for (const root of [CG_V1, CG_V2]) {
      const dir = path.join(root, this.run);
      // Anything left in our subtree (it should be empty) is killed first.
      try {
        const procs = execFileSync('sh', ['-c', `cat $(find ${dir} -name cgroup.procs) 2>/dev/null`], { encoding: 'utf8' });
        for (const p of procs.split('\n').filter(Boolean)) { try { process.kill(Number(p), 'SIGKILL'); } catch { /* gone */ } }
      } catch { /* none */ }
      rmCgroupTree(dir);
      // A cgroup stays busy for a moment after its last process died.
      await waitFor(() => { rmCgroupTree(dir); return !fs.existsSync(dir); }, 5000, `${dir} to go`).catch(() => undefined);
    }
    // The mount point of a checkout kept visible (empty out here).
    try { fs.rmdirSync(path.join(namespaceScratch('stage'), this.run)); } catch { /* none */ }
  }
}
