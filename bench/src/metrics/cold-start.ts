// 1. Cold start, two ways, for libvirtd, virtlogd and virtlockd:
//  (a) `systemctl start NAME.service` under the namespace systemd, its
//      sockets already listening; returns when the daemon sent READY=1.
//      Reported twice: the wall time of the systemctl command (what an
//      administrator waits), and systemd's own ExecMainStart → ActiveEnter
//      interval (fork to READY=1, without systemctl's client overhead).
//  (b) a client's connect on the inactive socket (the service stopped,
//      systemd holding the socket) to its first answered admin call:
//      open + list-servers, timed inside an already-started client
//      process — AdminClient for ours, libvirt-admin.so through ctypes
//      for real.
import { DAEMONS, type DaemonName, type Host } from '../hosts.js';
import { interleaved, pick, type Context } from '../context.js';
import { makeRow, valueOf, type Row } from '../report.js';
import { Worker } from '../worker.js';

const ADMIN_SERVER: Record<DaemonName, string> = { libvirtd: 'libvirtd', virtlogd: 'virtlogd', virtlockd: 'virtlockd' };

async function timedStart(h: Host, d: DaemonName): Promise<Record<string, number>> {
  const out = await h.sh([
    `systemctl stop ${d}.service`,
    's=$EPOCHREALTIME',
    `systemctl start ${d}.service`,
    'rc=$?',
    'e=$EPOCHREALTIME',
    'echo "WALL $s $e $rc"',
    `systemctl show -p ExecMainStartTimestampMonotonic -p ActiveEnterTimestampMonotonic ${d}.service`,
  ].join('\n'));
  const m = /^WALL (\S+) (\S+) (\d+)$/m.exec(out);
  if (!m) throw new Error(`unexpected output: ${out}`);
  if (m[3] !== '0') throw new Error(`systemctl start ${d}.service failed (${m[3]})`);
  const prop = (k: string): number => Number(new RegExp(`^${k}=(\\d+)$`, 'm').exec(out)?.[1] ?? NaN);
  const execUs = prop('ExecMainStartTimestampMonotonic');
  const activeUs = prop('ActiveEnterTimestampMonotonic');
  if (!(activeUs > execUs)) throw new Error(`no READY interval in: ${out}`);
  return { wallMs: (Number(m[2]) - Number(m[1])) * 1e3, readyMs: (activeUs - execUs) / 1e3 };
}

async function firstAdminCall(h: Host, d: DaemonName): Promise<Record<string, number>> {
  await h.stop(d);
  if (await h.isActive(d)) throw new Error(`${d}.service still active after stop`);
  const r = await Worker.once<{ ms: number; servers: string[] }>(h.side, h.pid, ['cold-admin', `${d}:///system`], 30_000);
  if (!r.servers?.includes(ADMIN_SERVER[d])) throw new Error(`list-servers answered ${JSON.stringify(r)}`);
  if (!(await h.isActive(d))) throw new Error(`${d}.service was not socket-activated`);
  return { ms: r.ms };
}

export async function coldStart(ctx: Context): Promise<Row[]> {
  const rows: Row[] = [];
  for (const d of DAEMONS) {
    const a = await interleaved(ctx, `cold start ${d} (systemctl)`, ctx.settings.coldRuns, (h) => timedStart(h, d));
    const b = await interleaved(ctx, `cold start ${d} (first admin call)`, ctx.settings.coldRuns, (h) => firstAdminCall(h, d));
    const logdNote = d === 'libvirtd' ? '' : ' Stock and our units are Type=simple; a bench drop-in makes both Type=notify (both daemons send READY=1).';
    rows.push(makeRow({
      id: `cold.systemctl.${d}`, metric: `1a. cold start ${d}: systemctl start`, unit: 'ms', better: 'lower',
      ours: valueOf(pick(a, 'ours', 'wallMs')), real: valueOf(pick(a, 'real', 'wallMs')),
      note: `wall time of systemctl start with the sockets already listening.${logdNote}`,
    }));
    rows.push(makeRow({
      id: `cold.exec-to-ready.${d}`, metric: `1a. cold start ${d}: fork → READY=1 (systemd)`, unit: 'ms', better: 'lower',
      ours: valueOf(pick(a, 'ours', 'readyMs')), real: valueOf(pick(a, 'real', 'readyMs')),
      note: d === 'libvirtd'
        ? 'ExecMainStart→ActiveEnter. Real libvirtd sends READY=1 before its drivers initialise (accept waits for them); ours after — see 1b for the client-visible time'
        : 'ExecMainStart→ActiveEnter',
    }));
    rows.push(makeRow({
      id: `cold.first-admin.${d}`, metric: `1b. cold start ${d}: connect on inactive socket → first admin answer`, unit: 'ms', better: 'lower',
      ours: valueOf(pick(b, 'ours', 'ms')), real: valueOf(pick(b, 'real', 'ms')),
      note: 'open + list-servers inside a started client (AdminClient; libvirt-admin via ctypes), socket activation included',
    }));
  }
  return rows;
}
