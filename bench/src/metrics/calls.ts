// 2. Warm round trip of a trivial call, one client, calls one after the
//    other: admin list-servers, and connect get-lib-version on the main
//    (rw) socket. Per-call latency = timed loop ÷ calls, one figure per run.
// 3. Throughput: 4 client processes, each with 4 calls in flight on its
//    one connection (16 in flight), get-lib-version for a fixed time;
//    calls/s = completed calls ÷ the longest process's elapsed time.
// Ours: AdminClient / VirtConnection in Node. Real: libvirt-admin.so via
// ctypes and python3-libvirt (4 threads on one connection for 3).
import { interleaved, pick, type Context } from '../context.js';
import { makeRow, valueOf, type Row } from '../report.js';
import { Worker } from '../worker.js';
import type { Host } from '../hosts.js';

async function ensureLibvirtd(ctx: Context): Promise<void> {
  for (const h of [ctx.ours, ctx.real]) await h.ctl('start', 'libvirtd.service');
}

async function throughputRun(ctx: Context, h: Host): Promise<Record<string, number>> {
  const s = ctx.settings;
  const workers = Array.from({ length: s.tputProcs }, () =>
    Worker.for(h.side, h.pid, ['tput-version', 'qemu:///system', String(s.tputInflightPerProc), String(s.tputMs)]));
  try {
    await Promise.all(workers.map((w) => w.ready()));
    const cpu0 = await h.cpuMs('libvirtd');
    for (const w of workers) w.go();
    const results = await Promise.all(workers.map((w) => w.next<{ calls: number; seconds: number; errors: string[] }>(s.tputMs + 30_000)));
    const errors = results.flatMap((r) => r.errors ?? []);
    if (errors.length) throw new Error(`calls failed: ${errors[0]}`);
    const calls = results.reduce((a, r) => a + r.calls, 0);
    const seconds = Math.max(...results.map((r) => r.seconds));
    const cpu1 = await h.cpuMs('libvirtd');
    return { callsPerSec: calls / seconds, daemonCpuUsPerCall: ((cpu1 - cpu0) * 1000) / calls };
  } finally {
    await Promise.all(workers.map((w) => w.end(2000)));
  }
}

export async function calls(ctx: Context): Promise<Row[]> {
  const s = ctx.settings;
  await ensureLibvirtd(ctx);
  const admin = await interleaved(ctx, 'warm round trip: admin list-servers', s.rttRuns, async (h) => {
    const r = await Worker.once<{ usPerCall: number }>(h.side, h.pid, ['rtt-admin', 'libvirtd:///system', String(s.rttWarmup), String(s.rttCalls)]);
    return { us: r.usPerCall };
  });
  const version = await interleaved(ctx, 'warm round trip: connect get-lib-version', s.rttRuns, async (h) => {
    const r = await Worker.once<{ usPerCall: number }>(h.side, h.pid, ['rtt-version', 'qemu:///system', String(s.rttWarmup), String(s.rttCalls)]);
    return { us: r.usPerCall };
  });
  const tput = await interleaved(ctx, 'throughput: 16 in flight from 4 processes', s.tputRuns, (h) => throughputRun(ctx, h));
  const per = `${s.rttCalls} calls after ${s.rttWarmup} warm-up calls, per run`;
  return [
    makeRow({
      id: 'rtt.admin-list-servers', metric: '2. warm round trip: admin list-servers (libvirtd)', unit: 'µs/call', better: 'lower',
      ours: valueOf(pick(admin, 'ours', 'us')), real: valueOf(pick(admin, 'real', 'us')),
      note: `${per}; AdminClient vs libvirt-admin via ctypes`,
    }),
    makeRow({
      id: 'rtt.connect-get-lib-version', metric: '2. warm round trip: connect get-lib-version (libvirtd, qemu:///system)', unit: 'µs/call', better: 'lower',
      ours: valueOf(pick(version, 'ours', 'us')), real: valueOf(pick(version, 'real', 'us')),
      note: `${per}; VirtConnection.libVersion() vs python3-libvirt conn.getLibVersion()`,
    }),
    makeRow({
      id: 'tput.get-lib-version', metric: `3. throughput: get-lib-version, ${s.tputProcs * s.tputInflightPerProc} in flight from ${s.tputProcs} processes`, unit: 'calls/s', better: 'higher',
      ours: valueOf(pick(tput, 'ours', 'callsPerSec')), real: valueOf(pick(tput, 'real', 'callsPerSec')),
      note: `${s.tputMs / 1000} s per run; clients share the machine's 2 cores with the daemon`,
    }),
    makeRow({
      id: 'tput.daemon-cpu-per-call', metric: '3. libvirtd CPU time per call during the throughput runs', unit: 'µs', better: 'lower',
      ours: valueOf(pick(tput, 'ours', 'daemonCpuUsPerCall')), real: valueOf(pick(tput, 'real', 'daemonCpuUsPerCall')),
      note: 'utime+stime of the main process over the run ÷ calls completed (clock ticks, so ±10 ms per run)',
    }),
  ];
}
