// npm run bench [-- --quick] [-- --out=DIR] [-- --only=cold,calls,memory,logd,startup] [-- --keep]
//
// Boots two isolated namespace systemds side by side — ours (our units, from
// our install step) and real libvirt 9.0 (Debian's stock units) — measures
// both in the same run, interleaved, prints a Markdown table (metric, ours,
// real, ratio) and our start-up breakdown, and writes everything to
// bench/results/<timestamp>.json. Everything it starts is torn down at the
// end, on failure and on SIGINT/SIGTERM. Needs root. See bench/README.md.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { DAEMONS, Host } from './hosts.js';
import { FULL, QUICK, errorText, type Context } from './context.js';
import { makeRow, renderTable, type Row } from './report.js';
import { BENCH_DIR, killWorkers } from './worker.js';
import { coldStart } from './metrics/cold-start.js';
import { calls } from './metrics/calls.js';
import { memory } from './metrics/memory.js';
import { logd } from './metrics/logd.js';
import { startupProfile, renderBreakdown, type BreakdownResult } from './metrics/startup-profile.js';
import { ensureRealLibvirt } from './setup.js';
import { namespaceScratch } from '@virtd/test-utils';

const GROUPS = ['cold', 'calls', 'memory', 'logd', 'startup'] as const;
type Group = (typeof GROUPS)[number];

/** Every row a complete run has, by group: a group that fails still reports each of its rows, as unavailable. */
export const ROW_IDS: Record<Exclude<Group, 'startup'>, readonly string[]> = {
  cold: DAEMONS.flatMap((d) => [`cold.systemctl.${d}`, `cold.exec-to-ready.${d}`, `cold.first-admin.${d}`]),
  calls: ['rtt.admin-list-servers', 'rtt.connect-get-lib-version', 'tput.get-lib-version', 'tput.daemon-cpu-per-call'],
  memory: [...DAEMONS.flatMap((d) => [`rss.after-start.${d}`, `rss.after-idle.${d}`]), 'rss.clients.libvirtd', 'rss.per-client.libvirtd', 'clients.max.libvirtd', 'clients.open-time.libvirtd'],
  logd: [
    'reexec.blackout.virtlogd', 'reexec.dropped.virtlogd', 'reexec.log-bytes-lost.virtlogd',
    'reexec.blackout.virtlockd', 'reexec.dropped.virtlockd', 'reexec.lock-free.virtlockd',
    'logd.throughput', 'logd.throughput.no-rotation',
  ],
};

interface Args { quick: boolean; out: string; only: Set<Group>; keep: boolean }

function parseArgs(argv: readonly string[]): Args {
  const a: Args = { quick: false, out: path.join(BENCH_DIR, 'results'), only: new Set(GROUPS), keep: false };
  for (const x of argv) {
    if (x === '--quick') a.quick = true;
    else if (x === '--keep') a.keep = true;
    else if (x.startsWith('--out=')) a.out = path.resolve(x.slice(6));
    else if (x.startsWith('--only=')) {
      const want = x.slice(7).split(',');
      for (const w of want) if (!GROUPS.includes(w as Group)) throw new Error(`--only: unknown group '${w}' (${GROUPS.join(', ')})`);
      a.only = new Set(want as Group[]);
    } else if (x === '--help' || x === '-h') {
      process.stdout.write('usage: npm run bench [-- --quick] [-- --out=DIR] [-- --only=cold,calls,memory,logd,startup] [-- --keep]\n');
      process.exit(0);
    } else throw new Error(`unknown argument '${x}'`);
  }
  return a;
}

interface Machine {
  cpus: number; cpuModel: string; memoryMiB: number; os: string; kernel: string; node: string; libvirt: string;
  /** 1, 5 and 15 minute load averages when the run ended: the machine may be shared. */
  loadAverage: number[];
}

function machine(): Machine {
  const osRelease = (() => {
    try { return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1] ?? ''; } catch { return ''; }
  })();
  const libvirt = (() => {
    try { return execFileSync('/usr/sbin/libvirtd', ['--version'], { encoding: 'utf8' }).trim(); } catch { return 'not installed'; }
  })();
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? '',
    memoryMiB: Math.round(os.totalmem() / 1024 / 1024),
    os: osRelease,
    kernel: os.release(),
    node: process.version,
    libvirt,
    loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

const unavailableRow = (id: string, reason: string): Row =>
  makeRow({ id, metric: id, unit: '', better: 'lower', ours: { unavailable: reason }, real: { unavailable: reason } });

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const settings = args.quick ? QUICK : FULL;
  const t0 = Date.now();
  const loadAtStart = os.loadavg().map((x) => Math.round(x * 100) / 100);
  const progress = (msg: string): void => { process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`); };
  // Bound into the namespaces, so never under their private /tmp.
  const work = path.join(namespaceScratch('bench'), `run-${process.pid}`);
  const hosts: Host[] = [];
  let cleaned: Promise<void> | undefined;
  const cleanup = (): Promise<void> => (cleaned ??= (async () => {
    killWorkers();
    await Promise.allSettled(hosts.map((h) => h.shutdown()));
    if (!args.keep) fs.rmSync(work, { recursive: true, force: true });
  })());
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      progress(`${sig}: cleaning up`);
      void cleanup().finally(() => process.exit(130));
    });
  }

  const rows: Row[] = [];
  let startup: BreakdownResult[] = [];
  const errors: string[] = [];
  /** What the set-up step installed or unpacked this run. */
  const setup: string[] = [];
  try {
    let bootError = '';
    if (process.geteuid?.() !== 0) bootError = 'needs root (namespaces, a namespace systemd, system-mode daemons)';
    else {
      try {
        setup.push(...await ensureRealLibvirt(progress));
      } catch (e) {
        bootError = `real libvirt 9.0 is not installed and could not be: ${errorText(e)}`;
      }
      if (!bootError && !fs.existsSync('/usr/sbin/libvirtd')) bootError = 'real libvirt is not installed (apt-get install libvirt-daemon libvirt-clients python3-libvirt)';
    }
    let ctx: Context | undefined;
    if (!bootError) {
      progress('booting two namespace systemds: ours and real libvirt 9.0');
      fs.mkdirSync(work, { recursive: true });
      const booted = await Promise.allSettled([Host.boot('ours', path.join(work, 'ours')), Host.boot('real', path.join(work, 'real'))]);
      for (const b of booted) if (b.status === 'fulfilled') hosts.push(b.value);
      const failed = booted.find((b): b is PromiseRejectedResult => b.status === 'rejected');
      if (failed) bootError = `set-up failed: ${errorText(failed.reason)}`;
      else {
        const scratch = path.join(work, 'scratch');
        fs.mkdirSync(scratch, { recursive: true });
        ctx = { ours: hosts[0]!, real: hosts[1]!, settings, scratch, progress };
      }
    }
    const run = async (g: Exclude<Group, 'startup'>, fn: (c: Context) => Promise<Row[]>): Promise<void> => {
      if (!args.only.has(g)) return;
      if (!ctx) { rows.push(...ROW_IDS[g].map((id) => unavailableRow(id, bootError))); return; }
      try {
        rows.push(...await fn(ctx));
      } catch (e) {
        errors.push(`${g}: ${errorText(e)}`);
        progress(`${g} failed: ${errorText(e)}`);
      }
      for (const id of ROW_IDS[g]) if (!rows.some((r) => r.id === id)) rows.push(unavailableRow(id, `${g} failed: ${errors.at(-1) ?? 'no row'}`));
    };
    await run('cold', coldStart);
    await run('calls', calls);
    await run('memory', memory);
    await run('logd', logd);
    if (args.only.has('startup')) {
      if (!ctx) startup = DAEMONS.map((daemon) => ({ daemon, unavailable: bootError }));
      else {
        try { startup = await startupProfile(ctx); } catch (e) {
          errors.push(`startup: ${errorText(e)}`);
          startup = DAEMONS.map((daemon) => ({ daemon, unavailable: errorText(e) }));
        }
      }
    }
  } finally {
    progress('tearing down');
    await cleanup();
  }

  const date = new Date();
  const result = {
    version: 1,
    date: date.toISOString(),
    mode: settings.quick ? 'quick' : 'full',
    /** The bench's pid: its namespaces' cgroups are virtd-e2e-<pid>-N, its work dir namespaceScratch('bench')/run-<pid>. */
    pid: process.pid,
    settings,
    machine: { ...machine(), loadAverageAtStart: loadAtStart },
    durationSeconds: (Date.now() - t0) / 1000,
    setup,
    rows,
    startup,
    errors,
  };
  fs.mkdirSync(args.out, { recursive: true });
  const file = path.join(args.out, `${date.toISOString().replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);

  const m = result.machine;
  const out = [
    `## virtd-node vs libvirt ${m.libvirt.replace(/^\S+ \(libvirt\) /, '')} — ${result.mode} run, ${result.date}`,
    '',
    `${m.cpus} × ${m.cpuModel}, ${m.memoryMiB} MiB, ${m.os}, kernel ${m.kernel}, Node ${m.node}. `
    + `Load average at start ${loadAtStart.join(' ')}, at end ${m.loadAverage.join(' ')}. `
    + 'Each figure: median (min–max) of the runs; ours and real interleaved in one run.',
    '',
    renderTable(rows),
    '',
    ...(startup.length ? ['### Start-up breakdown of our daemons', '', ...startup.map((b) => renderBreakdown(b))] : []),
    ...(errors.length ? ['### Errors', '', ...errors.map((e) => `- ${e}`), ''] : []),
    `results: ${path.relative(process.cwd(), file) || file}`,
    '',
  ];
  process.stdout.write(out.join('\n'));
  return 0;
}

main().then((code) => { process.exitCode = code; }, (e: unknown) => {
  process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
