// The benchmark (bench/, `npm run bench -- --quick`) runs to the end on
// this machine and reports every metric: a figure, or an explicit reason
// why not ("unavailable: …" or "pending: …"). Speed is measured by the
// benchmark itself, never asserted here.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { isRoot, namespaceScratch, repoRoot, run, tempDir } from '@virtd/test-utils';

const MAIN = path.join(repoRoot, 'bench', 'dist', 'main.js');
const hasSystemd = fs.existsSync('/lib/systemd/systemd') && fs.existsSync('/sys/fs/cgroup/systemd') && fs.existsSync('/sys/fs/cgroup/unified');

/** Every row of a complete run (bench/src/main.ts ROW_IDS); a new metric adds its id here. */
const ROWS = [
  ...['libvirtd', 'virtlogd', 'virtlockd'].flatMap((d) => [`cold.systemctl.${d}`, `cold.exec-to-ready.${d}`, `cold.first-admin.${d}`]),
  'rtt.admin-list-servers', 'rtt.connect-get-lib-version', 'tput.get-lib-version', 'tput.daemon-cpu-per-call',
  ...['libvirtd', 'virtlogd', 'virtlockd'].flatMap((d) => [`rss.after-start.${d}`, `rss.after-idle.${d}`]),
  'rss.clients.libvirtd', 'rss.per-client.libvirtd', 'clients.max.libvirtd', 'clients.open-time.libvirtd',
  'reexec.blackout.virtlogd', 'reexec.dropped.virtlogd', 'reexec.log-bytes-lost.virtlogd',
  'reexec.blackout.virtlockd', 'reexec.dropped.virtlockd', 'reexec.lock-free.virtlockd',
  'logd.throughput', 'logd.throughput.no-rotation',
];

interface Figure { median: number; min: number; max: number; samples: number[] }
type Value = { figure: Figure } | { unavailable: string } | { pending: string };
interface Row { id: string; ours: Value; real: Value; ratio?: number; note?: string; reference?: { figure: Figure } }
interface Phase { name: string; ms: Figure }
interface Result {
  mode: string;
  pid: number;
  rows: Row[];
  startup: ({ daemon: string; phases: Phase[]; modules: unknown[] } | { daemon: string; unavailable: string })[];
  machine: { cpus: number; node: string };
}

const explained = (v: Value): boolean =>
  'figure' in v ? Number.isFinite(v.figure.median) && v.figure.min <= v.figure.median && v.figure.median <= v.figure.max && v.figure.samples.length > 0
    : 'unavailable' in v ? v.unavailable.trim().length > 0 : v.pending.trim().length > 0;

if (!isRoot() || !hasSystemd) {
  t.pass('skipped: the benchmark needs root, systemd and the hybrid cgroup layout (namespace systemds, system-mode daemons)');
} else if (!fs.existsSync(MAIN)) {
  t.fail(`${MAIN} is missing: build it (tsc -b, which references bench/)`);
} else {
  // The quick run is about 1.5 min on a 2-core machine with tests running beside it (its own budget: 9 min).
  t.setTimeout(600_000);
  t.test('npm run bench -- --quick completes and reports every metric', async (t) => {
    const out = tempDir('virtd-bench-');
    // A clean environment: tap's own hooks must not ride along into the bench and its clients.
    const r = await run(process.execPath, [MAIN, '--quick', `--out=${out}`], { timeoutMs: 540_000, cwd: repoRoot });
    t.equal(r.code, 0, `bench exit status${r.code ? `:\n${r.stderr.slice(-3000)}` : ''}`);
    const files = fs.readdirSync(out).filter((f) => f.endsWith('.json'));
    t.equal(files.length, 1, 'one results file');
    if (files.length !== 1) return;
    const res = JSON.parse(fs.readFileSync(path.join(out, files[0]!), 'utf8')) as Result;
    t.equal(res.mode, 'quick');
    t.ok(res.machine.cpus > 0 && res.machine.node.startsWith('v'), 'the machine is described');

    const byId = new Map(res.rows.map((row) => [row.id, row]));
    t.same(ROWS.filter((id) => !byId.has(id)), [], 'every metric row is present');
    for (const id of ROWS) {
      const row = byId.get(id);
      if (!row) continue;
      t.ok(explained(row.ours) && explained(row.real), `${id}: both sides have a figure or a reason`);
      if ('figure' in row.ours && 'figure' in row.real && row.real.figure.median > 0) {
        t.ok(typeof row.ratio === 'number' && Math.abs(row.ratio - row.ours.figure.median / row.real.figure.median) < 1e-9, `${id}: ratio is ours ÷ real`);
      }
    }
    for (const id of ['logd.throughput', 'logd.throughput.no-rotation']) {
      const row = byId.get(id);
      t.ok(row?.reference || row?.note, `${id}: the cat floor is reported, or why not`);
    }
    // Nothing is pending any more: every metric has its implementation on both sides.
    t.same(res.rows.filter((row) => 'pending' in row.ours || 'pending' in row.real).map((row) => row.id), [], 'no row is pending');

    t.same(res.startup.map((b) => b.daemon), ['libvirtd', 'virtlogd', 'virtlockd'], 'a start-up breakdown per daemon');
    for (const b of res.startup) {
      if ('unavailable' in b) { t.ok(b.unavailable.length > 0, `${b.daemon}: breakdown unavailable, with a reason`); continue; }
      t.ok(b.phases.length >= 5 && b.phases.every((p) => Number.isFinite(p.ms.median)), `${b.daemon}: phases from fork to READY`);
      t.ok(b.modules.length > 0, `${b.daemon}: module loading by package`);
    }

    t.match(r.stdout, /^\| metric \| ours \| real libvirt 9\.0 \| ratio \(ours ÷ real\) \| note \|$/m, 'the Markdown table is printed');
    t.match(r.stdout, /### Start-up breakdown of our daemons/);
    // Clean-up: the namespaces' cgroups, the work directory and every client worker are gone.
    for (const root of ['/sys/fs/cgroup/systemd', '/sys/fs/cgroup/unified']) {
      t.same(fs.readdirSync(root).filter((d) => d.startsWith(`virtd-e2e-${res.pid}-`)), [], `no cgroup left under ${root}`);
    }
    t.notOk(fs.existsSync(path.join(namespaceScratch('bench'), `run-${res.pid}`)), 'no work directory left');
    const workers = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
      try { return /bench\/(py\/(real_client|line_writer|lock_contender)\.py|dist\/clients\/ours\.js)/.test(fs.readFileSync(`/proc/${p}/cmdline`, 'utf8')); } catch { return false; }
    });
    t.same(workers, [], 'no client worker left running');
  });
}
