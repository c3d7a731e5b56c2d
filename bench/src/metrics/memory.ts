// 4. Memory and client capacity.
//  - Idle RSS (VmRSS of the unit's main process) of each daemon right after
//    READY, and again after an idle period (60 s; quick: 3 s) with no client.
//    Both sides' daemons are started together and idle through the same wait.
//  - libvirtd's RSS while one client process holds N idle connections
//    (1,000; quick: 100) opened on the rw socket.
//  - How many connections libvirtd holds before refusing: one client opens
//    connections one after the other until one does not open within the
//    timeout, or the bound is reached. Both sides run with max_clients and
//    max_anonymous_clients 20000 and their units' own LimitNOFILE.
import { DAEMONS, type Host } from '../hosts.js';
import { errorText, interleaved, pick, sleep, type Context } from '../context.js';
import { makeRow, newSamples, valueOf, type Row, type Samples, type Value } from '../report.js';
import { figure } from '../stats.js';
import { Worker } from '../worker.js';
import type { Side } from '../worker.js';

const MiB = (kib: number): number => kib / 1024;

async function idleRss(ctx: Context): Promise<Record<Side, Record<string, Samples>>> {
  const res: Record<Side, Record<string, Samples>> = { ours: {}, real: {} };
  const take = (side: Side, k: string): Samples => (res[side][k] ??= newSamples());
  const hosts = [ctx.ours, ctx.real];
  for (let i = 0; i < ctx.settings.rssRuns; i++) {
    ctx.progress(`idle RSS: run ${i + 1}/${ctx.settings.rssRuns}`);
    const order = i % 2 === 0 ? hosts : [...hosts].reverse();
    const started = new Set<string>();
    for (const d of DAEMONS) {
      for (const h of order) {
        try {
          await h.stop(d);
          await h.ctl('start', `${d}.service`);
          take(h.side, `start.${d}`).samples.push(MiB(await h.rssKiB(d)));
          started.add(`${h.side}.${d}`);
        } catch (e) {
          take(h.side, `start.${d}`).errors.push(errorText(e));
        }
      }
    }
    await sleep(ctx.settings.idleMs);
    for (const d of DAEMONS) {
      for (const h of order) {
        if (!started.has(`${h.side}.${d}`)) continue;
        try {
          take(h.side, `idle.${d}`).samples.push(MiB(await h.rssKiB(d)));
        } catch (e) {
          take(h.side, `idle.${d}`).errors.push(errorText(e));
        }
      }
    }
  }
  return res;
}

interface Held {
  held: number;
  refused: string | null;
  /** Cumulative: `held` clients open after `ms`, at the end of each client process's share. */
  chunks: { held: number; ms: number }[];
}

/**
 * Connections per client process. libvirt's client library appends every
 * new connection to a GSList (g_slist_append walks the list), so one process
 * opening thousands costs O(n²) in the client: 8,166 took 6.5 minutes, all
 * of it client CPU. Spreading them over processes keeps the measurement on
 * the daemon; ours uses the same split.
 */
const CLIENTS_PER_PROCESS = 500;

/**
 * Opens up to `limit` connections on libvirtd's rw socket, from as many
 * client processes as it takes, one process after the other; stops at the
 * first connection that fails or does not open within the timeout. Calls
 * `whileHeld` with the outcome while they are all still open.
 */
async function hold<T>(ctx: Context, h: Host, limit: number, whileHeld: (r: Held) => Promise<T>, budgetMs = Infinity): Promise<T> {
  const workers: Worker[] = [];
  try {
    let held = 0;
    let refused: string | null = null;
    const chunks: Held['chunks'] = [];
    const t0 = Date.now();
    while (held < limit && refused === null) {
      if (Date.now() - t0 > budgetMs) {
        refused = `time budget of ${budgetMs / 1000} s spent (a lower bound, not a refusal)`;
        break;
      }
      const n = Math.min(CLIENTS_PER_PROCESS, limit - held);
      const w = Worker.for(h.side, h.pid, ['hold', 'qemu:///system', String(n), String(ctx.settings.openTimeoutMs)]);
      workers.push(w);
      const r = await w.next<{ held: number; refused: string | null }>(600_000);
      held += r.held;
      refused = r.refused;
      chunks.push({ held, ms: Date.now() - t0 });
      ctx.progress(`  ${h.side}: ${held} clients held${refused ? `; refused: ${refused.slice(0, 100)}` : ''}`);
    }
    return await whileHeld({ held, refused, chunks });
  } finally {
    const t = Date.now();
    await Promise.all(workers.map((w) => w.end(15_000)));
    if (workers.length > 1) ctx.progress(`  ${h.side}: ${workers.length} client processes ended in ${Date.now() - t} ms`);
  }
}

async function freshLibvirtd(h: Host): Promise<void> {
  await h.stop('libvirtd');
  await h.ctl('start', 'libvirtd.service');
}

export async function memory(ctx: Context): Promise<Row[]> {
  const s = ctx.settings;
  const idle = await idleRss(ctx);
  const idleFor = s.idleMs >= 1000 ? `${s.idleMs / 1000} s` : `${s.idleMs} ms`;
  const rows: Row[] = [];
  for (const d of DAEMONS) {
    for (const phase of ['start', 'idle'] as const) {
      rows.push(makeRow({
        id: `rss.${phase === 'start' ? 'after-start' : 'after-idle'}.${d}`,
        metric: `4. RSS of ${d} ${phase === 'start' ? 'right after READY' : `after ${idleFor} idle`}`,
        unit: 'MiB', better: 'lower',
        ours: valueOf(idle.ours[`${phase}.${d}`] ?? newSamples()), real: valueOf(idle.real[`${phase}.${d}`] ?? newSamples()),
        note: 'VmRSS of the main process',
      }));
    }
  }

  const clients = await interleaved(ctx, `RSS with ${s.holdClients} idle clients`, s.rssRuns, async (h) => {
    await freshLibvirtd(h);
    const base = await h.rssKiB('libvirtd');
    return hold(ctx, h, s.holdClients, async (r) => {
      if (r.held < s.holdClients) throw new Error(`only ${r.held} clients opened: ${r.refused}`);
      await sleep(1000);
      const kib = await h.rssKiB('libvirtd');
      return { mib: MiB(kib), perClientKiB: (kib - base) / r.held };
    });
  });
  rows.push(makeRow({
    id: 'rss.clients.libvirtd', metric: `4. RSS of libvirtd holding ${s.holdClients.toLocaleString('en-US')} idle clients`, unit: 'MiB', better: 'lower',
    ours: valueOf(pick(clients, 'ours', 'mib')), real: valueOf(pick(clients, 'real', 'mib')),
    note: `connections opened (connect-open done) on the rw socket by client processes of ≤${CLIENTS_PER_PROCESS} each, then idle; fresh daemon each run`,
  }));
  rows.push(makeRow({
    id: 'rss.per-client.libvirtd', metric: '4. libvirtd memory per idle client', unit: 'KiB', better: 'lower',
    ours: valueOf(pick(clients, 'ours', 'perClientKiB')), real: valueOf(pick(clients, 'real', 'perClientKiB')),
    note: `(RSS holding ${s.holdClients} − RSS before) ÷ ${s.holdClients}`,
  }));

  const reasons: Record<Side, string> = { ours: '', real: '' };
  const chunks: Record<Side, Held['chunks']> = { ours: [], real: [] };
  const capacity = await interleaved(ctx, `max clients (bound ${s.maxClientsBound})`, 1, async (h) => {
    await freshLibvirtd(h);
    try {
      return await hold(ctx, h, s.maxClientsBound, async (r) => {
        reasons[h.side] = r.refused ?? `bound of ${s.maxClientsBound} reached`;
        chunks[h.side] = r.chunks;
        return { held: r.held };
      }, s.capacityBudgetMs);
    } finally {
      // A daemon at its fd limit is no state to leave for anything after.
      const t = Date.now();
      await h.stop('libvirtd').catch((e: unknown) => ctx.progress(`  ${h.side}: stop failed: ${errorText(e)}`));
      ctx.progress(`  ${h.side}: libvirtd stopped in ${Date.now() - t} ms`);
    }
  });
  rows.push(makeRow({
    id: 'clients.max.libvirtd', metric: `4. idle clients libvirtd holds before refusing (bounded at ${s.maxClientsBound.toLocaleString('en-US')})`, unit: 'clients', better: 'higher',
    ours: valueOf(pick(capacity, 'ours', 'held')), real: valueOf(pick(capacity, 'real', 'held')),
    note: `single run; stopped at — ours: ${reasons.ours || 'n/a'}; real: ${reasons.real || 'n/a'}. Units' LimitNOFILE=8192 on both; client hard fd limit 20000`,
  }));
  // The same number of clients on both sides: the largest chunk boundary both reached.
  const common = Math.max(0, ...chunks.ours.map((c) => c.held).filter((n) => chunks.real.some((c) => c.held === n)));
  const secondsTo = (side: Side): Value => {
    const c = chunks[side].find((x) => x.held === common);
    return c ? { figure: figure([c.ms / 1000])! } : { unavailable: reasons[side] || 'no capacity run' };
  };
  rows.push(makeRow({
    id: 'clients.open-time.libvirtd', metric: `4. time to open ${common ? common.toLocaleString('en-US') : 'N'} idle clients one after the other`, unit: 's', better: 'lower',
    ours: common ? secondsTo('ours') : { unavailable: 'no client count both sides reached' },
    real: common ? secondsTo('real') : { unavailable: 'no client count both sides reached' },
    note: 'from the capacity run; the daemon\'s cost of admitting a client as its client count grows',
  }));
  return rows;
}
