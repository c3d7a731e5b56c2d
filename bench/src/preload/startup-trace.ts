// Bench-only preload: `node --require …/startup-trace.js` (through
// NODE_OPTIONS in a systemd drop-in) times a daemon's start-up from outside
// its code. It records, on CLOCK_MONOTONIC (the clock of systemd's
// *TimestampMonotonic properties and of process.hrtime):
//  - Node's own bootstrap milestones (performance.nodeTiming);
//  - every module file loaded, with its time inclusive of and exclusive of
//    the files it loads in turn (Module._extensions hooks, so resolution
//    counts towards the requiring file, as it really does);
//  - reads of /etc/libvirt/* (config), listen() calls and 'listening'
//    events, synchronous child processes (execFileSync and friends);
// and writes them as JSON to $VIRTD_BENCH_TRACE when the process exits.
// It changes no behaviour; its own cost is a few µs per module.
import fs from 'node:fs';
import net from 'node:net';
import childProcess from 'node:child_process';
import Module from 'node:module';
import { performance } from 'node:perf_hooks';

interface Load { file: string; start: number; dur: number; excl: number }
interface TraceEvent { kind: 'config' | 'listen' | 'listening' | 'child'; at: number; dur?: number; what: string }

const outFile = process.env.VIRTD_BENCH_TRACE;
const mono = (): number => Number(process.hrtime.bigint()) / 1e6;

if (outFile) {
  const preloadAt = mono();
  // performance.* times are relative to timeOrigin; this maps them onto the monotonic clock.
  const originMono = preloadAt - performance.now();
  const loads: Load[] = [];
  const events: TraceEvent[] = [];
  const stack: { child: number }[] = [];
  let preloadDoneAt = 0;

  type Loader = (module: unknown, filename: string) => void;
  const exts = (Module as unknown as { _extensions: Record<string, Loader> })._extensions;
  for (const ext of Object.keys(exts)) {
    const orig = exts[ext]!;
    exts[ext] = function traced(this: unknown, module: unknown, filename: string): void {
      const frame = { child: 0 };
      const start = mono();
      stack.push(frame);
      try {
        orig.call(this, module, filename);
      } finally {
        stack.pop();
        const dur = mono() - start;
        const parent = stack[stack.length - 1];
        if (parent) parent.child += dur;
        loads.push({ file: filename, start, dur, excl: dur - frame.child });
      }
    };
  }

  // Config files are read with openSync+readSync (@virtd/conf) or readFileSync.
  for (const name of ['openSync', 'readFileSync'] as const) {
    const orig = fs[name] as (...a: unknown[]) => unknown;
    (fs as Record<string, unknown>)[name] = function traced(this: unknown, ...args: unknown[]): unknown {
      const p = args[0];
      if (typeof p === 'string' && p.startsWith('/etc/libvirt/')) events.push({ kind: 'config', at: mono(), what: p });
      return orig.apply(this, args);
    };
  }

  const listen = net.Server.prototype.listen;
  net.Server.prototype.listen = function traced(this: net.Server, ...args: unknown[]): net.Server {
    const what = JSON.stringify(args[0] ?? null)?.slice(0, 120) ?? '';
    events.push({ kind: 'listen', at: mono(), what });
    this.once('listening', () => events.push({ kind: 'listening', at: mono(), what }));
    return (listen as (...a: unknown[]) => net.Server).apply(this, args);
  } as typeof listen;

  for (const name of ['execFileSync', 'execSync', 'spawnSync'] as const) {
    const orig = childProcess[name] as (...a: unknown[]) => unknown;
    (childProcess as Record<string, unknown>)[name] = function traced(this: unknown, ...args: unknown[]): unknown {
      const at = mono();
      try {
        return orig.apply(this, args);
      } finally {
        const argv = Array.isArray(args[1]) ? ` ${(args[1] as unknown[]).join(' ')}` : '';
        events.push({ kind: 'child', at, dur: mono() - at, what: `${name} ${String(args[0])}${argv}` });
      }
    };
  }

  process.on('exit', () => {
    const t = performance.nodeTiming;
    const rel = (x: number): number => originMono + x;
    const trace = {
      pid: process.pid,
      argv: process.argv.slice(1),
      preloadAt,
      preloadDoneAt,
      node: {
        timeOrigin: originMono,
        nodeStart: rel(t.nodeStart),
        v8Start: rel(t.v8Start),
        environment: rel(t.environment),
        bootstrapComplete: rel(t.bootstrapComplete),
        loopStart: t.loopStart > 0 ? rel(t.loopStart) : 0,
      },
      loads,
      events,
    };
    try { fs.writeFileSync(outFile, JSON.stringify(trace)); } catch { /* nowhere to report */ }
  });
  preloadDoneAt = mono();
}
