// 7. Where our daemons' start-up time goes, measured from outside: the
//    bench-only preload (../preload/startup-trace.ts) is injected with a
//    drop-in (NODE_OPTIONS=--require=…) into our units, each daemon is
//    started and stopped under systemd, and its trace is laid against
//    systemd's fork (ExecMainStart) and READY=1 (ActiveEnter) timestamps,
//    all on CLOCK_MONOTONIC. These starts are separate from metric 1's, so
//    the tracing cost never shows there.
import path from 'node:path';
import { DAEMONS, type DaemonName, type Host } from '../hosts.js';
import { errorText, type Context } from '../context.js';
import { figure, fmt, fmtFigure, type Figure } from '../stats.js';
import { BENCH_DIR, REPO_DIR } from '../worker.js';

const PRELOAD = path.join(BENCH_DIR, 'dist', 'preload', 'startup-trace.js');

interface Trace {
  preloadAt: number;
  preloadDoneAt: number;
  node: { timeOrigin: number; bootstrapComplete: number };
  loads: { file: string; start: number; dur: number; excl: number }[];
  events: { kind: 'config' | 'listen' | 'listening' | 'child'; at: number; dur?: number; what: string }[];
}

/** One traced start, reduced to phase durations and markers (ms from fork). */
interface Sample {
  phases: Record<string, number>;
  markers: Record<string, number>;
  groups: Record<string, { ms: number; files: number }>;
  /** Exclusive load time per file (repo-relative). */
  files: Record<string, number>;
  /** Synchronous child processes, by command. */
  children: Record<string, number>;
}

export interface Breakdown {
  readonly daemon: DaemonName;
  readonly runs: number;
  /** Consecutive phases from fork to READY=1; they add up to the total. */
  readonly phases: { name: string; ms: Figure }[];
  /** Points in time, ms after fork. */
  readonly markers: { name: string; ms: Figure }[];
  /** Module loading by package (exclusive time, medians), largest first. */
  readonly modules: { group: string; ms: Figure; files: number }[];
  /** The slowest files to load (exclusive time, medians). */
  readonly slowestFiles: { file: string; ms: Figure }[];
  /** Synchronous child processes before READY, by command. */
  readonly children: { what: string; ms: Figure }[];
}

export type BreakdownResult = Breakdown | { daemon: DaemonName; unavailable: string };

/** The package a loaded file belongs to: @virtd/<pkg> for this repo's, the npm name otherwise. */
export function groupOf(file: string): string {
  const nm = file.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const parts = file.slice(nm + 14).split('/');
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  const rel = path.relative(REPO_DIR, file);
  const m = /^packages\/([^/]+)\//.exec(rel);
  if (m) return `@virtd/${m[1]}`;
  return rel.startsWith('..') ? file : rel;
}

const PHASES = [
  'exec → Node starts (launcher sh, node binary)',
  'Node bootstrap until preloads run',
  'module loading (require, exclusive)',
  'synchronous child processes',
  'our code: config, logging, servers, listeners, drivers',
] as const;

function reduce(t: Trace, forkMs: number, readyMs: number): Sample {
  const loads = t.loads.filter((l) => l.start < readyMs && !l.file.endsWith('startup-trace.js'));
  const modules = loads.reduce((a, l) => a + l.excl, 0);
  const children = t.events.filter((e) => e.kind === 'child' && e.at < readyMs).reduce((a, e) => a + (e.dur ?? 0), 0);
  const nodeStart = t.node.timeOrigin - forkMs;
  const bootstrap = t.preloadAt - t.node.timeOrigin;
  const ours = readyMs - t.preloadDoneAt - modules - children;
  const groups: Record<string, { ms: number; files: number }> = {};
  for (const l of loads) {
    const g = (groups[groupOf(l.file)] ??= { ms: 0, files: 0 });
    g.ms += l.excl;
    g.files++;
  }
  const files: Record<string, number> = {};
  for (const l of loads) files[path.relative(REPO_DIR, l.file)] = (files[path.relative(REPO_DIR, l.file)] ?? 0) + l.excl;
  const childList: Record<string, number> = {};
  for (const e of t.events) if (e.kind === 'child' && e.at < readyMs) childList[e.what] = (childList[e.what] ?? 0) + (e.dur ?? 0);
  const first = (kind: string): number | undefined => t.events.find((e) => e.kind === kind)?.at;
  const last = (kind: string): number | undefined => t.events.filter((e) => e.kind === kind).at(-1)?.at;
  const markers: Record<string, number> = {};
  const mark = (name: string, at: number | undefined): void => { if (at !== undefined && at < readyMs) markers[name] = at - forkMs; };
  mark('first config file read', first('config'));
  mark('first listen()', first('listen'));
  mark('last listen()', last('listen'));
  markers['READY=1 (systemd ActiveEnter)'] = readyMs - forkMs;
  return {
    phases: {
      [PHASES[0]]: nodeStart,
      [PHASES[1]]: bootstrap + (t.preloadDoneAt - t.preloadAt),
      [PHASES[2]]: modules,
      [PHASES[3]]: children,
      [PHASES[4]]: ours,
    },
    markers,
    groups,
    files,
    children: childList,
  };
}

async function tracedStart(h: Host, d: DaemonName): Promise<Sample> {
  const out = `/run/bench-trace-${d}.json`;
  await h.sh(`systemctl stop ${d}.service; rm -f ${out}; systemctl start ${d}.service`);
  const p = await h.show(`${d}.service`, ['ExecMainStartTimestampMonotonic', 'ActiveEnterTimestampMonotonic']);
  await h.stop(d);
  const text = await h.sh(`cat ${out}`);
  const trace = JSON.parse(text) as Trace;
  return reduce(trace, Number(p.ExecMainStartTimestampMonotonic) / 1e3, Number(p.ActiveEnterTimestampMonotonic) / 1e3);
}

export async function startupProfile(ctx: Context): Promise<BreakdownResult[]> {
  const h = ctx.ours;
  const dropIn = (d: string): string => `/run/systemd/system/${d}.service.d/zz-bench-trace.conf`;
  const results: BreakdownResult[] = [];
  try {
    for (const d of DAEMONS) {
      await h.ns.writeFile(dropIn(d), `[Service]\nEnvironment=NODE_OPTIONS=--require=${PRELOAD}\nEnvironment=VIRTD_BENCH_TRACE=/run/bench-trace-${d}.json\n`);
    }
    await h.ctl('daemon-reload');
    for (const d of DAEMONS) {
      const samples: Sample[] = [];
      let error = '';
      for (let i = 0; i < ctx.settings.traceRuns; i++) {
        ctx.progress(`start-up breakdown ${d}: run ${i + 1}/${ctx.settings.traceRuns}`);
        try { samples.push(await tracedStart(h, d)); } catch (e) { error = errorText(e); break; }
      }
      if (!samples.length) { results.push({ daemon: d, unavailable: error || 'no trace' }); continue; }
      const fig = (xs: number[]): Figure => figure(xs)!;
      const groupNames = new Set(samples.flatMap((s) => Object.keys(s.groups)));
      const modules = [...groupNames].map((g) => ({
        group: g,
        ms: fig(samples.map((s) => s.groups[g]?.ms ?? 0)),
        files: Math.max(...samples.map((s) => s.groups[g]?.files ?? 0)),
      })).sort((a, b) => b.ms.median - a.ms.median);
      const markerNames = [...new Set(samples.flatMap((s) => Object.keys(s.markers)))];
      const perKey = (get: (s: Sample) => Record<string, number>): { key: string; ms: Figure }[] =>
        [...new Set(samples.flatMap((s) => Object.keys(get(s))))]
          .map((key) => ({ key, ms: fig(samples.map((s) => get(s)[key] ?? 0)) }))
          .sort((a, b) => b.ms.median - a.ms.median);
      results.push({
        daemon: d,
        runs: samples.length,
        phases: PHASES.map((name) => ({ name, ms: fig(samples.map((s) => s.phases[name]!)) })),
        markers: markerNames.map((name) => ({ name, ms: fig(samples.filter((s) => name in s.markers).map((s) => s.markers[name]!)) }))
          .sort((a, b) => a.ms.median - b.ms.median),
        modules,
        slowestFiles: perKey((s) => s.files).slice(0, 15).map(({ key, ms }) => ({ file: key, ms })),
        children: perKey((s) => s.children).map(({ key, ms }) => ({ what: key, ms })),
      });
    }
  } finally {
    for (const d of DAEMONS) await h.sh(`rm -f ${dropIn(d)}`).catch(() => undefined);
    await h.ctl('daemon-reload').catch(() => undefined);
  }
  return results;
}

/** Markdown for one daemon's breakdown. */
export function renderBreakdown(b: BreakdownResult, topModules = 10): string {
  if ('unavailable' in b) return `#### ${b.daemon}\n\nunavailable: ${b.unavailable}\n`;
  const total = b.phases.reduce((a, p) => a + p.ms.median, 0);
  const lines = [`#### ${b.daemon} (ours), fork → READY=1, ${b.runs} traced starts (medians, min–max)`, '',
    '| phase | ms | share |', '|---|---:|---:|'];
  for (const p of b.phases) lines.push(`| ${p.name} | ${fmtFigure(p.ms)} | ${((100 * p.ms.median) / total).toFixed(0)}% |`);
  lines.push(`| **sum of medians** | **${fmt(total)}** | |`, '', '| point in time | ms after fork |', '|---|---:|');
  for (const m of b.markers) lines.push(`| ${m.name} | ${fmtFigure(m.ms)} |`);
  lines.push('', '| module loading by package (exclusive) | ms | files |', '|---|---:|---:|');
  const top = b.modules.slice(0, topModules);
  for (const m of top) lines.push(`| ${m.group} | ${fmtFigure(m.ms)} | ${m.files} |`);
  const rest = b.modules.slice(topModules);
  if (rest.length) {
    lines.push(`| ${rest.length} more packages | ${fmt(rest.reduce((a, m) => a + m.ms.median, 0))} | ${rest.reduce((a, m) => a + m.files, 0)} |`);
  }
  if (b.children.length) {
    lines.push('', '| synchronous child process | ms |', '|---|---:|');
    for (const c of b.children) lines.push(`| \`${c.what}\` | ${fmtFigure(c.ms)} |`);
  }
  return `${lines.join('\n')}\n`;
}
