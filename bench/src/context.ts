// What every metric gets: both hosts, the run's settings, a progress log,
// and the one way to take samples — ours and real interleaved, the order
// flipping each run (ABBA…), so that drift on the machine (page cache,
// thermal, another tenant) lands on both sides alike.
import type { Host } from './hosts.js';
import { newSamples, type Samples } from './report.js';
import type { Side } from './worker.js';

export interface Settings {
  readonly quick: boolean;
  /** 1: cold starts per daemon and side, for each of the two cold-start measurements. */
  readonly coldRuns: number;
  /** 2: warm round trip: runs, warm-up calls and timed calls per run. */
  readonly rttRuns: number;
  readonly rttWarmup: number;
  readonly rttCalls: number;
  /** 3: throughput runs and the length of each. */
  readonly tputRuns: number;
  readonly tputMs: number;
  readonly tputProcs: number;
  readonly tputInflightPerProc: number;
  /** 4: memory. */
  readonly rssRuns: number;
  readonly idleMs: number;
  readonly holdClients: number;
  readonly maxClientsBound: number;
  /** The capacity search per side stops starting client processes after this long. */
  readonly capacityBudgetMs: number;
  readonly openTimeoutMs: number;
  /** 5: re-exec blackout runs per daemon and side, and the length of each (the reload lands 400 ms in). */
  readonly blackoutRuns: number;
  readonly blackoutRunMs: number;
  /** 6: virtlogd throughput and its cat floor: bytes per run, runs (per configuration and side). */
  readonly floorBytes: number;
  readonly floorRuns: number;
  /** 7: traced starts per daemon. */
  readonly traceRuns: number;
}

export const FULL: Settings = {
  quick: false,
  coldRuns: 7,
  rttRuns: 7, rttWarmup: 200, rttCalls: 2000,
  tputRuns: 5, tputMs: 3000, tputProcs: 4, tputInflightPerProc: 4,
  rssRuns: 3, idleMs: 60_000, holdClients: 1000, maxClientsBound: 10_000, capacityBudgetMs: 600_000, openTimeoutMs: 3000,
  blackoutRuns: 7, blackoutRunMs: 3000,
  floorBytes: 512 * 1024 * 1024, floorRuns: 5,
  traceRuns: 5,
};

/** Same code paths, fewer and shorter runs: for CI, under a minute. */
export const QUICK: Settings = {
  quick: true,
  coldRuns: 3,
  rttRuns: 3, rttWarmup: 50, rttCalls: 300,
  tputRuns: 2, tputMs: 1000, tputProcs: 4, tputInflightPerProc: 4,
  rssRuns: 1, idleMs: 3000, holdClients: 100, maxClientsBound: 300, capacityBudgetMs: 30_000, openTimeoutMs: 3000,
  blackoutRuns: 2, blackoutRunMs: 2500,
  floorBytes: 64 * 1024 * 1024, floorRuns: 2,
  traceRuns: 2,
};

export interface Context {
  readonly ours: Host;
  readonly real: Host;
  readonly settings: Settings;
  /** A host-side scratch directory on the same disk as the daemons' log directories. */
  readonly scratch: string;
  progress(msg: string): void;
}

export const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 300);

export type Sampled = Record<Side, Record<string, Samples>>;

/**
 * Runs `fn` `runs` times per side, alternating which side goes first. `fn`
 * returns named values (one sample each); a thrown error is kept as that
 * side's reason, and after two failures in a row the side is not retried.
 */
export async function interleaved(ctx: Context, what: string, runs: number,
  fn: (h: Host, run: number) => Promise<Record<string, number>>): Promise<Sampled> {
  const res: Sampled = { ours: {}, real: {} };
  const failedInARow: Record<Side, number> = { ours: 0, real: 0 };
  const take = (side: Side, key: string): Samples => (res[side][key] ??= newSamples());
  for (let i = 0; i < runs; i++) {
    ctx.progress(`${what}: run ${i + 1}/${runs}`);
    const order = i % 2 === 0 ? [ctx.ours, ctx.real] : [ctx.real, ctx.ours];
    for (const h of order) {
      if (failedInARow[h.side] >= 2) continue;
      try {
        const v = await fn(h, i);
        for (const [k, x] of Object.entries(v)) take(h.side, k).samples.push(x);
        failedInARow[h.side] = 0;
      } catch (e) {
        failedInARow[h.side]++;
        take(h.side, '*').errors.push(errorText(e));
        ctx.progress(`${what}: ${h.side} failed: ${errorText(e)}`);
      }
    }
  }
  return res;
}

/** The samples of one named value, with the side's errors attached. */
export function pick(s: Sampled, side: Side, key: string): Samples {
  const v = s[side][key];
  const errors = s[side]['*']?.errors ?? [];
  return { samples: v?.samples ?? [], errors: [...(v?.errors ?? []), ...errors] };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
