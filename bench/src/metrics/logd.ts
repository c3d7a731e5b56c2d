// 5. Re-exec blackout of virtlogd/virtlockd: `systemctl reload` (both units:
//    ExecReload=kill -USR1 $MAINPID; the daemon re-executes itself in place)
//    while one admin client calls list-servers back to back, reconnecting if
//    its connection fails. The blackout is the longest gap between two
//    answered calls. Through it, the same worker also holds a client of the
//    daemon's main program: for virtlogd a log pipe with a writer process
//    putting numbered 100-byte lines into it every millisecond, for virtlockd
//    a lock held for an owner process while a contender process tries to
//    take it every millisecond. Losses are data, not failures: connections
//    dropped (the admin one had to reconnect; the main one no longer
//    answers), log bytes missing from the file, moments the lock was free.
//    The run fails only if MainPID changed (a restart, not an in-place exec)
//    or the daemon does not answer again.
// 6. virtlogd throughput: the same data file (100-byte lines) goes through
//    `cat DATA` into the pipe the daemon gave the client, timed until the
//    log file ends with the data's last line; once with the shipped
//    rotation (max_size 2 MiB, max_backups 3) and once with max_size = 0
//    (both daemons: never rotate). The floor is `cat DATA | cat > FILE` on
//    the same disk. Real virtlogd is driven over its own LOG program (XDR,
//    fd passing) by bench/py/real_client.py; ours through our LogManagerClient.
import fs from 'node:fs';
import path from 'node:path';
import { run } from '@virtd/test-utils';
import { figure } from '../stats.js';
import { makeRow, newSamples, valueOf, type Row, type Samples } from '../report.js';
import { errorText, interleaved, pick, sleep, type Context, type Sampled } from '../context.js';
import { Worker, type Side } from '../worker.js';
import type { Host } from '../hosts.js';

/** The reload lands this far into the run. */
const RELOAD_AT_MS = 400;

interface ReexecReport {
  calls: number; failures: number;
  /** Absent when a call hung (never answered): then hung = 1 and whether a fresh connection got an answer. */
  maxGapMs: number; sinceLastMs: number;
  hung?: number; hungAtMs?: number; answersAfter?: boolean;
  /** The main-program connection answered a call after the re-exec. */
  mainKept: boolean;
  log?: string; writer?: { lines: number; bytes: number; ended: string | null };
  lock?: { tries: number; got: number };
}

/** The line line_writer.py writes for sequence number n (100 bytes with its newline). */
function writerLine(n: number): string {
  const head = `${String(n).padStart(9, '0')} `;
  return `${head}${'x'.repeat(99 - head.length)}\n`;
}

/** Compares the log file with what the writer says it put into the pipe. */
function logLoss(file: string, w: { lines: number; bytes: number }): { bytesLost: number; linesMissing: number; linesExtra: number } {
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'latin1') : '';
  const seen = new Map<number, number>();
  for (const l of text.split('\n')) {
    if (!l) continue;
    const n = `${l}\n` === writerLine(Number(l.slice(0, 9))) ? Number(l.slice(0, 9)) : -1;
    seen.set(n, (seen.get(n) ?? 0) + 1);
  }
  let missing = 0;
  for (let i = 0; i < w.lines; i++) if (!seen.has(i)) missing++;
  let extra = seen.get(-1) ?? 0;
  for (const [n, c] of seen) if (n >= 0) extra += c - 1 + (n >= w.lines ? 1 : 0);
  return { bytesLost: Math.max(0, w.bytes - Buffer.byteLength(text, 'latin1')), linesMissing: missing, linesExtra: extra };
}

async function blackout(ctx: Context, h: Host, d: 'virtlogd' | 'virtlockd'): Promise<Record<string, number>> {
  await h.ctl('start', `${d}.service`);
  const before = (await h.show(`${d}.service`, ['MainPID'])).MainPID;
  const runMs = ctx.settings.blackoutRunMs;
  const w = Worker.for(h.side, h.pid, ['reexec', `${d}:///system`, d, String(runMs), ctx.scratch]);
  try {
    await w.ready();
    w.go();
    await sleep(RELOAD_AT_MS);
    await h.ctl('reload', `${d}.service`);
    const r = await w.next<ReexecReport>(runMs + 30_000);
    const after = await h.show(`${d}.service`, ['MainPID', 'ActiveState']);
    if (after.ActiveState !== 'active' || after.MainPID !== before) {
      throw new Error(`${d} after reload: ${after.ActiveState}, MainPID ${before} → ${after.MainPID} (not an in-place re-exec)`);
    }
    const res: Record<string, number> = {
      failures: r.failures, hung: r.hung ?? 0,
      dropped: (r.failures > 0 || r.hung ? 1 : 0) + (r.mainKept ? 0 : 1),
    };
    if (r.hung) {
      // An admin call sent around the re-exec was never answered: a lost call, no blackout figure for this run.
      if (!r.answersAfter) throw new Error(`an admin call hung ${Math.round(r.hungAtMs ?? 0)} ms into the run and a fresh connection got no answer either`);
    } else {
      if (r.sinceLastMs > 250) throw new Error(`no answer in the last ${Math.round(r.sinceLastMs)} ms of the run: not serving again after the re-exec`);
      res.gapMs = r.maxGapMs;
    }
    if (r.log && r.writer) {
      if (r.writer.lines < 0) throw new Error(`log writer: ${r.writer.ended ?? 'no report'}`);
      const loss = logLoss(r.log, r.writer);
      fs.rmSync(r.log, { force: true });
      Object.assign(res, {
        bytesLost: loss.bytesLost, linesMissing: loss.linesMissing, linesExtra: loss.linesExtra, bytesWritten: r.writer.bytes,
        pipeBroken: r.writer.ended ? 1 : 0,
      });
    }
    if (r.lock) Object.assign(res, { lockFree: r.lock.got, lockTries: r.lock.tries });
    return res;
  } finally {
    await w.end(5000);
  }
}

const sum = (xs: readonly number[]): number => xs.reduce((a, x) => a + x, 0);

function blackoutRows(d: 'virtlogd' | 'virtlockd', b: Sampled): Row[] {
  const desc = (side: Side): string => {
    const runs = pick(b, side, 'dropped').samples.length;
    if (!runs) return `${side}: no run`;
    const parts = [`${side}: ${runs} runs, ${sum(pick(b, side, 'failures').samples)} failed admin calls, `
      + `${sum(pick(b, side, 'hung').samples)} runs with an admin call never answered (no blackout figure from those)`];
    if (d === 'virtlogd') {
      parts.push(`${sum(pick(b, side, 'bytesLost').samples)} of ${sum(pick(b, side, 'bytesWritten').samples)} log bytes lost`,
        `pipe broken in ${sum(pick(b, side, 'pipeBroken').samples)} runs`,
        `${sum(pick(b, side, 'linesMissing').samples)} lines missing, ${sum(pick(b, side, 'linesExtra').samples)} extra or torn`);
    } else {
      parts.push(`lock free ${sum(pick(b, side, 'lockFree').samples)} times in ${sum(pick(b, side, 'lockTries').samples)} tries`);
    }
    return parts.join(', ');
  };
  const rows: Row[] = [
    makeRow({
      id: `reexec.blackout.${d}`, metric: `5. re-exec blackout of ${d} (SIGUSR1 → admin answering again)`, unit: 'ms', better: 'lower',
      ours: valueOf(pick(b, 'ours', 'gapMs')), real: valueOf(pick(b, 'real', 'gapMs')),
      note: `longest gap between two answered admin list-servers around \`systemctl reload\` (ExecReload=kill -USR1), same MainPID; ${desc('ours')}; ${desc('real')}`,
    }),
    makeRow({
      id: `reexec.dropped.${d}`, metric: `5. ${d} re-exec: client connections dropped (of 2 held)`, unit: 'connections', better: 'lower',
      ours: valueOf(pick(b, 'ours', 'dropped')), real: valueOf(pick(b, 'real', 'dropped')),
      note: `per re-exec: the admin client had to reconnect or its call was never answered (3 s), and/or the ${d === 'virtlogd' ? 'LOG' : 'LOCK'} program client no longer answered afterwards`,
    }),
  ];
  rows.push(d === 'virtlogd'
    ? makeRow({
      id: 'reexec.log-bytes-lost.virtlogd', metric: '5. virtlogd re-exec: log bytes lost', unit: 'bytes', better: 'lower',
      ours: valueOf(pick(b, 'ours', 'bytesLost')), real: valueOf(pick(b, 'real', 'bytesLost')),
      note: 'per re-exec: bytes a writer put into the pipe (a 100-byte line per ms, through the re-exec) that never reached the file',
    })
    : makeRow({
      id: 'reexec.lock-free.virtlockd', metric: '5. virtlockd re-exec: times the held lock was free', unit: 'times', better: 'lower',
      ours: valueOf(pick(b, 'ours', 'lockFree')), real: valueOf(pick(b, 'real', 'lockFree')),
      note: 'per re-exec: a contender process tries the fcntl lock every ms through the re-exec',
    }));
  return rows;
}

/** The data file both sides and the floor push through a pipe: 100-byte lines, a unique last line. */
function makeData(file: string, bytes: number): void {
  const fd = fs.openSync(file, 'w');
  try {
    const line = `${'y'.repeat(99)}\n`;
    const chunk = Buffer.from(line.repeat(10_486));
    let left = bytes - 64;
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      fs.writeSync(fd, chunk, 0, n);
      left -= n;
    }
    fs.writeSync(fd, `\nvirtd-bench-end ${process.pid} ${Date.now()}`.padEnd(63, '.') + '\n');
  } finally {
    fs.closeSync(fd);
  }
}

async function catFloorOnce(ctx: Context, data: string): Promise<number> {
  const file = path.join(ctx.scratch, 'cat-floor.out');
  try {
    const r = await run('bash', ['-c', `s=$EPOCHREALTIME; cat '${data}' | cat > '${file}'; e=$EPOCHREALTIME; echo "$s $e"`]);
    const m = /^(\S+) (\S+)$/m.exec(r.stdout);
    if (r.code !== 0 || !m) throw new Error(`cat floor: ${r.stderr || r.stdout}`);
    const size = fs.statSync(data).size;
    if (fs.statSync(file).size !== size) throw new Error('cat floor: short file');
    return size / (1024 * 1024) / (Number(m[2]) - Number(m[1]));
  } finally {
    fs.rmSync(file, { force: true });
  }
}

const LOG_DIR_IN = '/var/log/libvirt/qemu';
const logDirOnHost = (h: Host): string => path.join(h.dir, 'var-log-libvirt', 'qemu');

/** Sets max_size in both sides' virtlogd.conf (undefined: as shipped) and restarts virtlogd. */
async function setMaxSize(ctx: Context, maxSize: number | undefined): Promise<void> {
  for (const h of [ctx.ours, ctx.real]) {
    const conf = path.join(h.dir, 'etc-libvirt', 'virtlogd.conf');
    const orig = `${conf}.bench-orig`;
    if (!fs.existsSync(orig)) fs.copyFileSync(conf, orig);
    const shipped = fs.readFileSync(orig, 'utf8');
    fs.writeFileSync(conf, maxSize === undefined ? shipped : `# virtd-node bench\nmax_size = ${maxSize}\n${shipped}`);
    await h.ctl('restart', 'virtlogd.service');
  }
}

async function logdOnce(h: Host, data: string, rotation: boolean): Promise<number> {
  const name = `bench-tput-${h.side}.log`;
  const hostDir = logDirOnHost(h);
  fs.mkdirSync(hostDir, { recursive: true });
  const clean = (): void => {
    for (const f of fs.readdirSync(hostDir)) if (f.startsWith(name)) fs.rmSync(path.join(hostDir, f), { force: true });
  };
  clean();
  try {
    const r = await Worker.once<{ seconds?: number; bytes?: number; error?: string }>(h.side, h.pid,
      ['logd-tput', '/run/libvirt/virtlogd-sock', data, `${LOG_DIR_IN}/${name}`], 180_000);
    if (!r.seconds || !r.bytes) throw new Error(`logd-tput answered ${JSON.stringify(r)}`);
    const files = fs.readdirSync(hostDir).filter((f) => f.startsWith(name));
    if (!rotation) {
      // No rotation: every byte must be in the one file.
      const size = fs.statSync(path.join(hostDir, name)).size;
      if (files.length !== 1 || size !== r.bytes) throw new Error(`max_size=0: ${files.join(',')}, ${size} of ${r.bytes} bytes`);
    } else if (r.bytes > 4 * 1024 * 1024 && files.length < 2) {
      throw new Error(`rotation expected: only ${files.join(',')}`);
    }
    return r.bytes / (1024 * 1024) / r.seconds;
  } finally {
    clean();
  }
}

interface Tput { floor: Samples; rot: Record<Side, Samples>; norot: Record<Side, Samples> }

async function throughput(ctx: Context, data: string): Promise<Tput> {
  const res: Tput = {
    floor: newSamples(),
    rot: { ours: newSamples(), real: newSamples() },
    norot: { ours: newSamples(), real: newSamples() },
  };
  const runs = ctx.settings.floorRuns;
  for (const [label, maxSize] of [['rot', undefined], ['norot', 0]] as const) {
    await setMaxSize(ctx, maxSize);
    const failed: Record<Side, number> = { ours: 0, real: 0 };
    for (let i = 0; i < runs; i++) {
      ctx.progress(`virtlogd throughput, ${maxSize === undefined ? 'max_size as shipped' : `max_size = ${maxSize}`}: run ${i + 1}/${runs}`);
      // The floor goes first or last, the two sides in the order flipping each run.
      const order: (Host | 'floor')[] = i % 2 === 0 ? ['floor', ctx.ours, ctx.real] : [ctx.real, ctx.ours, 'floor'];
      for (const x of order) {
        if (x === 'floor') {
          if (label === 'norot') continue; // one floor series, taken beside the first configuration
          try { res.floor.samples.push(await catFloorOnce(ctx, data)); } catch (e) { res.floor.errors.push(errorText(e)); }
          continue;
        }
        const s = res[label][x.side];
        if (failed[x.side] >= 2) continue;
        try {
          s.samples.push(await logdOnce(x, data, label === 'rot'));
          failed[x.side] = 0;
        } catch (e) {
          failed[x.side]++;
          s.errors.push(errorText(e));
          ctx.progress(`virtlogd throughput: ${x.side} failed: ${errorText(e)}`);
        }
      }
    }
  }
  await setMaxSize(ctx, undefined);
  return res;
}

export async function logd(ctx: Context): Promise<Row[]> {
  const rows: Row[] = [];
  for (const d of ['virtlogd', 'virtlockd'] as const) {
    const b = await interleaved(ctx, `re-exec blackout ${d}`, ctx.settings.blackoutRuns, (h) => blackout(ctx, h, d));
    rows.push(...blackoutRows(d, b));
  }

  const data = path.join(ctx.scratch, 'logd-data');
  makeData(data, ctx.settings.floorBytes);
  let t: Tput;
  try {
    t = await throughput(ctx, data);
  } finally {
    fs.rmSync(data, { force: true });
  }
  const mb = ctx.settings.floorBytes / (1024 * 1024);
  const f = figure(t.floor.samples);
  const ofFloor = (s: Samples): string => {
    const x = figure(s.samples);
    return x && f ? `${((x.median / f.median) * 100).toFixed(0)} %` : 'n/a';
  };
  for (const [id, label, cfg] of [
    ['logd.throughput', 'rotation as shipped (max_size 2 MiB, max_backups 3)', t.rot],
    ['logd.throughput.no-rotation', 'max_size = 0 (never rotate; real 9.0 accepts 0 and never rotates too)', t.norot],
  ] as const) {
    rows.push(makeRow({
      id, metric: `6. virtlogd throughput, pipe → log file, ${label}`, unit: 'MB/s', better: 'higher',
      ours: valueOf(cfg.ours), real: valueOf(cfg.real),
      ...(f ? { reference: { label: `floor: cat, ${mb} MiB pipe → file on the same disk`, figure: f } } : {}),
      note: `${f ? '' : `cat floor unavailable: ${t.floor.errors[0] ?? 'no sample'}; `}of the floor: ours ${ofFloor(cfg.ours)}, real ${ofFloor(cfg.real)}. `
        + `\`cat\` of a ${mb} MiB file of 100-byte lines into the pipe until the log ends with its last line; MB = MiB; page cache, no fsync (neither daemon fsyncs)`,
    }));
  }
  return rows;
}
