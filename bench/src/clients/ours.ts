// Our side of the benchmark's client workloads, through our native client
// library. Same protocol and modes as bench/py/real_client.py: print READY
// (a JSON line), wait for GO on stdin, run, print one JSON line.
//
//   node ours.js MODE URI [ARG...]   (modes as in real_client.py)
//
// The admin URI is resolved by AdminClient (libvirtd:///system →
// /run/libvirt/libvirt-admin-sock); the main URI by VirtConnection
// (qemu:///system → libvirt-sock when no virtqemud-sock exists).
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { AdminClient, VirtConnection, LogManagerClient, LockClient, LOCK_ACQUIRE } from '@virtd/client';

const out = (o: object): void => { process.stdout.write(`${JSON.stringify(o)}\n`); };

const lines = readline.createInterface({ input: process.stdin });
const nextLine = (): Promise<string | undefined> => new Promise((resolve) => {
  const onLine = (l: string): void => { lines.off('close', onClose); resolve(l); };
  const onClose = (): void => { lines.off('line', onLine); resolve(undefined); };
  lines.once('line', onLine);
  lines.once('close', onClose);
});

async function readyThenGo(): Promise<void> {
  out({ ready: true });
  if ((await nextLine())?.trim() !== 'GO') process.exit(3);
}

const now = (): number => performance.now();

/** The python helpers both sides share (the same writer and lock contender on both). */
const PY_DIR = path.resolve(__dirname, '..', '..', 'py');
const PYTHON = '/usr/bin/python3';
const DOM = { uuid: 'c7a5fdbd-edaf-9455-926a-d65c16db1809', name: 'bench' };
const OPEN_TRUNCATE = 1;
/** A call unanswered this long counts as hung (lost), in the re-exec run. */
const HANG_MS = 3000;

const sleepSync = (ms: number): void => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); };

/** The last line of a file (with its newline). */
function lastLine(file: string): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(Math.min(4096, size));
    fs.readSync(fd, buf, 0, buf.length, size - buf.length);
    const body = buf.subarray(0, buf.length - 1);
    return buf.subarray(body.lastIndexOf(0x0a) + 1);
  } finally { fs.closeSync(fd); }
}

/** The last `n` bytes of a file; '' if it does not exist. */
function tail(file: string, n: number): Buffer {
  let fd: number;
  try { fd = fs.openSync(file, 'r'); } catch { return Buffer.alloc(0); }
  try {
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(Math.min(n, size));
    fs.readSync(fd, buf, 0, buf.length, size - buf.length);
    return buf;
  } finally { fs.closeSync(fd); }
}

/** Whether the log ends with `marker`, looking into the newest backup if it was cut at a rollover. */
function tailMatches(log: string, marker: Buffer): boolean {
  let t = tail(log, marker.length);
  if (!fs.existsSync(log)) return false;
  if (t.length < marker.length) t = Buffer.concat([tail(`${log}.0`, marker.length - t.length), t]);
  return t.equals(marker);
}

/** Reads one line from a child's stream. */
function lineFrom(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString();
      const i = buf.indexOf('\n');
      if (i >= 0) { stream.off('data', onData); stream.off('end', onEnd); resolve(buf.slice(0, i)); }
    };
    const onEnd = (): void => { stream.off('data', onData); reject(new Error(`stream ended: ${buf}`)); };
    stream.on('data', onData);
    stream.once('end', onEnd);
  });
}

interface Holder { finish(): Promise<Record<string, unknown>> }

/** A LogManager client holding a pipe, with line_writer.py writing into it through a re-exec. */
async function logHolder(socket: string, workdir: string): Promise<Holder> {
  const c = new LogManagerClient(socket);
  const log = path.join(workdir, `reexec-ours-${process.pid}.log`);
  const { fd } = await c.openLogFile('qemu', DOM, log, OPEN_TRUNCATE);
  const writer = spawn(PYTHON, [path.join(PY_DIR, 'line_writer.py')], { stdio: ['pipe', fd, 'pipe'] });
  fs.closeSync(fd);
  let report = '';
  writer.stderr!.on('data', (d: Buffer) => { report += d.toString(); });
  const closed = new Promise<void>((resolve) => writer.once('close', () => resolve()));
  return {
    async finish() {
      let kept = true;
      try { await withTimeout(c.getLogFilePosition(log), HANG_MS, 'position'); } catch { kept = false; }
      writer.stdin!.end();
      let w: { lines: number; bytes: number; ended: string | null };
      if (await Promise.race([closed.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 10_000))])) {
        w = JSON.parse(report.trim().split('\n').at(-1)!) as typeof w;
      } else {
        // Blocked in write(): the daemon no longer reads the pipe.
        writer.kill('SIGKILL');
        w = { lines: -1, bytes: -1, ended: 'writer blocked: the pipe is no longer read' };
      }
      const deadline = now() + 5000;
      while (now() < deadline && !(fs.existsSync(log) && fs.statSync(log).size >= w.bytes)) await new Promise((r) => setTimeout(r, 5));
      c.close();
      return { mainKept: kept, log, writer: w };
    },
  };
}

/** A LockSpace client holding a lock for an owner process, with lock_contender.py trying it. */
async function lockHolder(socket: string, workdir: string): Promise<Holder> {
  const owner: ChildProcess = spawn('sleep', ['600'], { stdio: 'ignore' });
  const c = new LockClient(socket);
  const resource = path.join(workdir, `reexec-ours-${process.pid}.img`);
  await c.register({ uuid: DOM.uuid, name: DOM.name, id: 1, pid: owner.pid! });
  await c.acquire('', resource, LOCK_ACQUIRE.AUTOCREATE);
  const contender = spawn(PYTHON, [path.join(PY_DIR, 'lock_contender.py'), resource], { stdio: ['pipe', 'pipe', 'inherit'] });
  await lineFrom(contender.stdout!);
  return {
    async finish() {
      const report = lineFrom(contender.stdout!);
      contender.stdin!.end();
      const lock = JSON.parse(await report) as { tries: number; got: number };
      let kept = true;
      try { await withTimeout(c.release('', resource), HANG_MS, 'release'); } catch { kept = false; }
      c.close();
      owner.kill('SIGKILL');
      return { mainKept: kept, lock };
    },
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not complete within ${ms} ms`)), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

async function main(): Promise<void> {
  const [mode, uri, ...args] = process.argv.slice(2) as [string, string, ...string[]];
  const euid = process.geteuid?.() ?? 0;
  switch (mode) {
    case 'cold-admin': {
      await readyThenGo();
      const t0 = now();
      const c = AdminClient.open(uri, process.env, euid);
      const servers = await c.listServers();
      const t1 = now();
      c.close();
      out({ ms: t1 - t0, servers });
      break;
    }
    case 'rtt-admin': {
      const [warm, n] = args.map(Number) as [number, number];
      const c = AdminClient.open(uri, process.env, euid);
      await c.listServers();
      await readyThenGo();
      for (let i = 0; i < warm; i++) await c.listServers();
      const t0 = now();
      for (let i = 0; i < n; i++) await c.listServers();
      const t1 = now();
      c.close();
      out({ usPerCall: ((t1 - t0) * 1e3) / n, calls: n });
      break;
    }
    case 'rtt-version': {
      const [warm, n] = args.map(Number) as [number, number];
      const c = await VirtConnection.open(uri);
      await readyThenGo();
      for (let i = 0; i < warm; i++) await c.libVersion();
      const t0 = now();
      for (let i = 0; i < n; i++) await c.libVersion();
      const t1 = now();
      await c.close();
      out({ usPerCall: ((t1 - t0) * 1e3) / n, calls: n });
      break;
    }
    case 'tput-version': {
      const [inflight, ms] = args.map(Number) as [number, number];
      const c = await VirtConnection.open(uri);
      await c.libVersion();
      await readyThenGo();
      const t0 = now();
      const end = t0 + ms;
      const errors: string[] = [];
      let calls = 0;
      // INFLIGHT independent call chains on one connection, as the python
      // side runs INFLIGHT threads on one libvirt connection.
      await Promise.all(Array.from({ length: inflight }, async () => {
        try {
          while (now() < end) { await c.libVersion(); calls++; }
        } catch (e) { errors.push((e as Error).message); }
      }));
      const t1 = now();
      await c.close();
      out({ calls, seconds: (t1 - t0) / 1e3, errors: errors.slice(0, 3) });
      break;
    }
    case 'reexec': {
      // list-servers back to back; on failure a fresh connection. The longest
      // gap between two answers is where a re-exec landed. Meanwhile a client
      // of the daemon's main program holds a log pipe with a writer, or a lock.
      // A call unanswered for HANG_MS ends the loop: hung (lost), and a fresh
      // connection tells whether the daemon serves at all.
      const [daemon, msText, workdir] = args as [string, string, string];
      const ms = Number(msText);
      let c: AdminClient | undefined = AdminClient.open(uri, process.env, euid);
      await c.listServers();
      const sock = `/run/libvirt/${daemon}-sock`;
      const holder = await (daemon === 'virtlogd' ? logHolder(sock, workdir) : lockHolder(sock, workdir));
      await readyThenGo();
      const t0 = now();
      const end = t0 + ms;
      let last = t0;
      let maxGap = 0;
      let calls = 0;
      let failures = 0;
      let hungAt: number | undefined;
      while (now() < end) {
        const sent = now();
        try {
          c ??= AdminClient.open(uri, process.env, euid);
          await withTimeout(c.listServers(), HANG_MS, 'list-servers');
          const t = now();
          maxGap = Math.max(maxGap, t - last);
          last = t;
          calls++;
        } catch (e) {
          if (/did not complete within/.test((e as Error).message)) { hungAt = sent; break; }
          failures++;
          c?.close();
          c = undefined;
          await new Promise((r) => setTimeout(r, 1));
        }
      }
      const t1 = now();
      c?.close();
      let res: Record<string, unknown>;
      if (hungAt !== undefined) {
        let answersAfter = false;
        try {
          const fresh = AdminClient.open(uri, process.env, euid);
          await withTimeout(fresh.listServers(), HANG_MS, 'probe');
          fresh.close();
          answersAfter = true;
        } catch { /* not serving */ }
        res = { calls, failures, hung: 1, hungAtMs: hungAt - t0, answersAfter };
      } else {
        res = { calls, failures, maxGapMs: maxGap, sinceLastMs: t1 - last };
      }
      out({ ...res, ...await holder.finish() });
      break;
    }
    case 'logd-tput': {
      // uri: virtlogd's main socket. `cat DATA` into the pipe, as the floor does;
      // done when the log ends with DATA's last line.
      const [data, log] = args as [string, string];
      const c = new LogManagerClient(uri);
      const marker = lastLine(data);
      const { fd } = await c.openLogFile('qemu', DOM, log, OPEN_TRUNCATE);
      await readyThenGo();
      const t0 = now();
      const r = spawnSync('cat', [data], { stdio: ['ignore', fd, 'inherit'] });
      fs.closeSync(fd);
      if (r.status !== 0) throw new Error(`cat exited with ${r.status ?? r.signal}`);
      const tWriter = now();
      const deadline = tWriter + 120_000;
      while (!tailMatches(log, marker)) {
        if (now() > deadline) throw new Error(`${log} never ended with the data's last line`);
        sleepSync(0.2);
      }
      const t1 = now();
      c.close();
      out({ seconds: (t1 - t0) / 1e3, writerSeconds: (tWriter - t0) / 1e3, bytes: fs.statSync(data).size });
      break;
    }
    case 'hold': {
      const [limit, timeoutMs] = args.map(Number) as [number, number];
      const conns: VirtConnection[] = [];
      let refused: string | null = null;
      while (conns.length < limit) {
        try {
          conns.push(await withTimeout(VirtConnection.open(uri), timeoutMs, 'open'));
        } catch (e) {
          refused = (e as Error).message;
          break;
        }
      }
      out({ held: conns.length, refused });
      await new Promise<void>((resolve) => { lines.once('close', resolve); });
      // A connection stuck in the backlog would keep the loop alive.
      process.exit(0);
      break;
    }
    default:
      process.stderr.write(`unknown mode ${mode}\n`);
      process.exit(2);
  }
  lines.close();
  process.exit(0);
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
