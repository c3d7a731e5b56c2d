// kill -9 at random moments, many times, for the three daemons that keep
// something on disk or in the kernel: virtsecretd (secret files), virtlogd
// (log files fed through pipes) and virtlockd (fcntl locks). Each round
// kills the daemon in the middle of a client's work, checks what it left,
// and starts it again over the same /etc/libvirt and /run, so the restart
// meets the stale socket files, the stale pid file and any half-done write.
//
// VIRTD_CRASH_ROUNDS sets the rounds per daemon (default 5: about 25 s on
// 2 idle cores, 40 s on busy ones; a restart costs most of a round).
// VIRTD_CRASH_SEED replays a run's random choices (not its timing).
//
// What "never torn" means for each:
//  - a secret: its files are its last acknowledged state or the one the
//    call in flight was writing, never a mix; the XML file is the commit
//    point (a value file without one is ignored, and removed at start-up
//    with any temporary file); a restart serves exactly what is on disk.
//  - a log: one writer after another appends to it, and the kill cuts one
//    off anywhere, with data still in the pipe or read and not yet written.
//    So each writer's part of the log is a prefix of what it wrote (lost:
//    only what was in flight, never what GetLogFilePosition had confirmed),
//    every line is whole except that a writer's last line may stop short,
//    and the next writer starts on a new line (virtlogd ends a partial last
//    line before a new writer's first; libvirt glues them together).
//  - locks: they belong to the killed process and are gone the moment it
//    is; nothing on disk or in /run keeps a restarted daemon from taking
//    every resource again.
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { VirtConnection, LogManagerClient, LockClient, LOCK_ACQUIRE } from '@virtd/client';
import { parseSecretXml } from '@virtd/drivers';
import { closeFd, lockHolder } from '@virtd/posix';
import { CrashRig, LogWriter, logLine, seededRandom, isRoot, tempDir, sleep, waitFor } from '@virtd/test-utils';

const ROUNDS = Math.max(1, Number(process.env.VIRTD_CRASH_ROUNDS ?? 5));
const SEED = Number(process.env.VIRTD_CRASH_SEED ?? crypto.randomInt(2 ** 31));

/** What a restart must find in /run after a kill: the sockets and the pid file the dead image left. */
async function crashAndCheckLeftovers(t: Test, rig: CrashRig, sockets: string[], round: number): Promise<void> {
  const pid = rig.daemon.pid;
  const exit = await rig.crash();
  t.same(exit, { code: null, signal: 'SIGKILL' }, `round ${round}: killed by SIGKILL`);
  const left = rig.leftovers();
  t.same({ sockets: left.sockets, pidFile: left.pidFile }, { sockets, pidFile: String(pid) },
    `round ${round}: stale socket files and pid file left behind`);
}

async function restartClean(t: Test, rig: CrashRig, round: number): Promise<void> {
  await rig.start();
  t.equal(fs.readFileSync(rig.pidFile, 'utf8'), String(rig.daemon.pid), `round ${round}: restarted; the pid file names the new process`);
}

if (!isRoot()) {
  t.pass('skipped: needs root');
} else {
  t.comment(`VIRTD_CRASH_SEED=${SEED} VIRTD_CRASH_ROUNDS=${ROUNDS}`);

  t.test('virtsecretd: killed under define/set-value/undefine; every secret is its old or its new state', (t) => secretsScenario(t));
  t.test('virtlogd: killed under a writer; the file holds a prefix of each writer session, no garbled line', (t) => logdScenario(t));
  t.test('virtlockd: killed while holding locks; they vanish at once, a restart re-acquires them', (t) => lockdScenario(t));
}

// ---- virtsecretd -------------------------------------------------------------

/** A persistent secret as the files hold it; null when not on disk. */
interface OnDisk { description: string; value: string | undefined }
type DiskState = OnDisk | null;

interface TrackedSecret {
  readonly uuid: string;
  readonly volume: string;
  /** In the daemon: undefined when not defined. */
  mem: { ephemeral: boolean; description: string; value: string | undefined } | undefined;
  /** On disk after the last acknowledged call. */
  acked: DiskState;
  /** What the call in flight (if any) leaves on disk once done. */
  inflight?: DiskState;
}

const sameDisk = (a: DiskState, b: DiskState): boolean =>
  a === null || b === null ? a === b : a.description === b.description && a.value === b.value;

const showDisk = (s: DiskState): string =>
  s === null ? 'absent' : `{${s.description}, value ${s.value === undefined ? 'none' : `${s.value.slice(0, 12)}…(${s.value.length / 2} bytes)`}}`;

/**
 * One secret as its files say. The XML file is the commit point (a value
 * file without one is debris of an interrupted define or delete, which the
 * daemon ignores); a file that does not parse is torn and throws.
 */
function readSecret(dir: string, uuid: string): DiskState {
  const xmlFile = path.join(dir, `${uuid}.xml`);
  if (!fs.existsSync(xmlFile)) return null;
  const def = parseSecretXml(fs.readFileSync(xmlFile, 'utf8'));
  if (def.uuid !== uuid || def.ephemeral) throw new Error(`${uuid}.xml describes ${def.uuid} ephemeral=${def.ephemeral}`);
  const valueFile = path.join(dir, `${uuid}.base64`);
  if (!fs.existsSync(valueFile)) return { description: def.description ?? '', value: undefined };
  const b64 = fs.readFileSync(valueFile, 'utf8');
  const bytes = Buffer.from(b64, 'base64');
  if (bytes.toString('base64') !== b64) throw new Error(`${uuid}.base64 is not whole base64 (${b64.length} chars)`);
  return { description: def.description ?? '', value: bytes.toString('hex') };
}

const secretXml = (s: TrackedSecret, description: string, ephemeral: boolean): string => `<secret ephemeral='${ephemeral ? 'yes' : 'no'}' private='no'>
  <uuid>${s.uuid}</uuid>
  <description>${description.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</description>
  <usage type='volume'><volume>${s.volume}</volume></usage>
</secret>`;

async function secretsScenario(t: Test): Promise<void> {
  const rng = seededRandom(SEED);
  const rig = new CrashRig({ name: 'virtsecretd' });
  t.teardown(() => rig.kill());
  await rig.start();
  const dir = path.join(rig.etcDir, 'secrets');
  const WORKERS = 3;
  const PER_WORKER = 4;
  const secrets: TrackedSecret[][] = Array.from({ length: WORKERS }, (_, w) => Array.from({ length: PER_WORKER }, (_, i) => ({
    uuid: crypto.randomUUID(), volume: `/var/lib/libvirt/images/crash-${w}-${i}.img`, mem: undefined, acked: null,
  })));
  let ops = 0;
  let counter = 0;
  let roundsWithTemps = 0;

  /** One random call on one of the worker's secrets, keeping the model in step. */
  const step = async (c: VirtConnection, s: TrackedSecret, round: number): Promise<void> => {
    const m = s.mem;
    const desc = `round ${round} change ${++counter} <&>`;
    const value = crypto.randomBytes(1 + rng.int(rng.next() < 0.3 ? 16384 : 256));
    const persistNow = (mem: NonNullable<TrackedSecret['mem']>): DiskState =>
      mem.ephemeral ? null : { description: mem.description, value: mem.value };
    let next: NonNullable<TrackedSecret['mem']> | undefined;
    let call: () => Promise<unknown>;
    if (!m) {
      const ephemeral = rng.next() < 0.3;
      next = { ephemeral, description: desc, value: undefined };
      call = () => c.secretDefine(secretXml(s, desc, ephemeral));
    } else {
      const kind = rng.pick(['value', 'value', 'value', 'redefine', 'redefine', 'flip', 'undefine'] as const);
      if (kind === 'value') {
        next = { ...m, value: value.toString('hex') };
        call = () => c.secretSetValue(s.uuid, value);
      } else if (kind === 'redefine') {
        next = { ...m, description: desc };
        call = () => c.secretDefine(secretXml(s, desc, m.ephemeral));
      } else if (kind === 'flip') {
        // Ephemeral → persistent writes definition and value; the reverse deletes both.
        next = { ...m, ephemeral: !m.ephemeral, description: desc };
        call = () => c.secretDefine(secretXml(s, desc, !m.ephemeral));
      } else {
        next = undefined;
        call = () => c.secretUndefine(s.uuid);
      }
    }
    s.inflight = next ? persistNow(next) : null;
    await call();
    s.mem = next;
    s.acked = s.inflight;
    delete s.inflight;
    ops++;
  };

  for (let round = 0; round < ROUNDS; round++) {
    // One connection, three calls in flight on it at a time.
    const conn = await VirtConnection.open(`secret:///system?socket=${rig.socket()}`);
    let stop = false;
    let killed = false;
    const failures: string[] = [];
    const workers = secrets.map(async (mine) => {
      try {
        while (!stop) await step(conn, rng.pick(mine), round);
      } catch (e) {
        // Only the kill may end a worker.
        if (!killed) failures.push((e as Error).message);
      }
    });
    // Kill after a random number of calls, at a random moment inside one.
    const killAfter = ops + 3 + rng.int(40);
    await waitFor(() => {
      if (failures.length) throw new Error(`a call failed before the kill: ${failures.join('; ')}`);
      return ops >= killAfter;
    }, 20_000, 'secret calls');
    if (rng.next() < 0.7) await sleep(rng.int(4));
    killed = true;
    await crashAndCheckLeftovers(t, rig, ['virtsecretd-admin-sock', 'virtsecretd-sock', 'virtsecretd-sock-ro'], round);
    stop = true;
    await Promise.all(workers);
    conn.conn.close();

    // Every file whole; every secret its acknowledged state or the one in flight.
    const files = fs.readdirSync(dir);
    const temps = files.filter((f) => f.startsWith('.'));
    if (temps.length) roundsWithTemps++;
    const known = new Set(secrets.flat().map((s) => s.uuid));
    const problems: string[] = files.filter((f) => f.endsWith('.xml') && !known.has(f.slice(0, -4))).map((f) => `unknown file ${f}`);
    for (const s of secrets.flat()) {
      let disk: DiskState;
      try { disk = readSecret(dir, s.uuid); } catch (e) { problems.push(`torn: ${(e as Error).message}`); continue; }
      const ok = sameDisk(disk, s.acked) || (s.inflight !== undefined && sameDisk(disk, s.inflight));
      if (!ok) {
        problems.push(`${s.uuid}: on disk ${showDisk(disk)}, acknowledged ${showDisk(s.acked)}`
          + (s.inflight !== undefined ? `, in flight ${showDisk(s.inflight)}` : ''));
      }
      // From here on the disk is the truth; ephemeral secrets died with the daemon.
      s.acked = disk;
      delete s.inflight;
      s.mem = disk ? { ephemeral: false, description: disk.description, value: disk.value } : undefined;
    }
    t.same(problems, [], `round ${round}: every secret on disk is whole and is its old or new state (${ops} calls so far)`);

    await restartClean(t, rig, round);
    const after = fs.readdirSync(dir);
    t.same(after.filter((f) => f.startsWith('.') || (f.endsWith('.base64') && !after.includes(`${f.slice(0, -7)}.xml`))), [],
      `round ${round}: start-up cleared temporary files${temps.length ? ` (${temps.join(', ')})` : ''} and orphaned values`);
    const c = await VirtConnection.open(`secret:///system?socket=${rig.socket()}`);
    const served: Record<string, DiskState> = {};
    for (const ref of await c.secretList()) {
      const desc = parseSecretXml(await c.secretXml(ref.uuid)).description ?? '';
      const value = await c.secretGetValue(ref.uuid).then((b) => b.toString('hex'), () => undefined);
      served[ref.uuid] = { description: desc, value };
    }
    const expected: Record<string, DiskState> = {};
    for (const s of secrets.flat()) if (s.acked) expected[s.uuid] = s.acked;
    t.same(served, expected, `round ${round}: the restarted daemon serves exactly what is on disk`);
    await c.close().catch(() => undefined);
  }
  t.comment(`${ops} acknowledged calls; ${roundsWithTemps} of ${ROUNDS} kills landed inside a file write`);
  t.same(await rig.stop(), { code: 0, signal: null }, 'a clean stop at the end');
}

// ---- virtlogd ----------------------------------------------------------------

const DOM = { uuid: 'c7a5fdbd-edaf-9455-926a-d65c16db1809', name: 'crash' };

/** One writer's run: its lines are numbered from `first`; those up to `confirmed` were on disk before the kill. */
interface Session { readonly id: number; readonly first: number; confirmed: number }

/**
 * Walks the log (backups oldest first, then the live file) and checks it is
 * made of each session's lines in order, each session a prefix of what its
 * writer put in the pipe: whole lines, except that a session's last line
 * may stop short (the kill caught it half written). Returns problems.
 */
function checkLog(stream: string, sessions: Session[]): { problems: string[]; upTo: Map<number, number> } {
  const problems: string[] = [];
  const upTo = new Map<number, number>();
  const lines = stream.split('\n');
  // What the stream ends with (complete or not) is the last element; '' after a final newline.
  const tail = lines.pop()!;
  const byId = new Map(sessions.map((s) => [s.id, s]));
  let cur: Session | undefined;
  let next = 0;
  let torn = false;
  const visit = (l: string, final: boolean): void => {
    const m = /^(\d+) (\d+) /.exec(l);
    const s = m ? byId.get(Number(m[1])) : undefined;
    // A new session starts at its first line; the current one goes on in order.
    const candidates: [Session, number][] = [];
    if (cur && !torn) candidates.push([cur, next]);
    for (const x of sessions) if (!cur || x.id > cur.id) candidates.push([x, x.first]);
    const whole = s && candidates.find(([x, n]) => x === s && l === logLine(x.id, n));
    if (whole) {
      if (whole[0] !== cur) { cur = whole[0]; torn = false; }
      next = whole[1] + 1;
      upTo.set(cur.id, whole[1]);
      return;
    }
    const prefix = l.length > 0 && candidates.find(([x, n]) => logLine(x.id, n).startsWith(l));
    if (prefix) {
      // Cut short: the session ends here. Lines after it must start a later session.
      if (prefix[0] !== cur) { cur = prefix[0]; upTo.set(cur.id, prefix[1] - 1); }
      torn = true;
      return;
    }
    if (final && l === '') return;
    problems.push(`garbled line after session ${cur?.id ?? '-'} seq ${next - 1}: ${JSON.stringify(l.slice(0, 60))}`);
  };
  for (const l of lines) visit(l, false);
  visit(tail, true);
  return { problems, upTo };
}

function readLogStream(file: string, backups: number): string {
  const names = [...Array.from({ length: backups }, (_, i) => `${file}.${backups - 1 - i}`), file];
  return names.filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f, 'latin1')).join('');
}

async function logdScenario(t: Test): Promise<void> {
  const rng = seededRandom(SEED + 1);
  // Small files, so kills also land inside rollovers, yet room enough
  // (libvirt allows at most 32 backups) that no line drops off the end.
  const MAX_BACKUPS = 32;
  // A round writes about 0.5 MB/s for up to 2 s; 32 files of 32 KiB × (rounds + 1) hold twice that.
  const rig = new CrashRig({ name: 'virtlogd', config: `max_size = ${32768 * (ROUNDS + 1)}\nmax_backups = ${MAX_BACKUPS}\n` });
  t.teardown(() => rig.kill());
  await rig.start();
  const file = path.join(tempDir('virtd-logs-'), 'guest.log');
  const sessions: Session[] = [];
  let seq = 0;
  const writers: LogWriter[] = [];
  t.teardown(() => { for (const w of writers) w.kill(); });

  for (let round = 0; round < ROUNDS; round++) {
    const c = new LogManagerClient(rig.socket());
    t.same(await c.list(), [], `round ${round}: no log file is open after the start`);
    const { fd, pos } = await c.openLogFile('qemu', DOM, file, round === 0 ? 1 : 0);
    const live = fs.statSync(file);
    t.same(pos, { inode: live.ino, offset: live.size }, `round ${round}: opened where the live file ends`);
    if (live.size > 0) {
      t.equal(fs.readFileSync(file, 'latin1').slice(-1), '\n', `round ${round}: a new writer starts on a new line`);
    }
    // Written from here, not a child, to spare a process start per round (diskfull.test.ts uses children).
    const w = new LogWriter(fd, { session: round, first: seq, inProcess: true });
    writers.push(w);
    const session: Session = { id: round, first: seq, confirmed: seq - 1 };
    sessions.push(session);

    // Confirm progress now and then: what the writer had written before a
    // GetLogFilePosition returns is on disk and must survive the kill.
    await waitFor(() => w.last >= w.first || w.endedWith !== undefined, 10_000, 'the writer to start');
    const killAt = Date.now() + rng.int(400);
    while (Date.now() < killAt) {
      const written = w.last;
      if (rng.next() < 0.5) {
        await c.getLogFilePosition(file);
        session.confirmed = Math.max(session.confirmed, written);
      }
      await sleep(rng.int(40));
    }
    // Sometimes the kill lands inside a SIGUSR1 re-exec (state file written, exec, restore).
    const reexec = rng.next() < 0.4;
    if (reexec) {
      rig.daemon.signal('SIGUSR1');
      await sleep(rng.int(rng.next() < 0.5 ? 100 : 1500));
    }
    await crashAndCheckLeftovers(t, rig, ['virtlogd-admin-sock', 'virtlogd-sock'], round);
    const stateFile = path.join(rig.runDir, 'virtlogd-restart-exec.json');
    if (reexec) t.comment(`round ${round}: killed ${fs.existsSync(stateFile) ? 'with the re-exec state file written and not yet read' : 'during or after a re-exec'}`);
    await w.exited;
    t.equal(w.endedWith, 'EPIPE', `round ${round}: the writer saw the pipe break`);
    c.close();
    seq = w.last + 1;

    const { problems, upTo } = checkLog(readLogStream(file, MAX_BACKUPS), sessions);
    t.same(problems, [], `round ${round}: every session is a prefix of its writer's lines, no garbled line`);
    const kept = upTo.get(round) ?? session.first - 1;
    t.ok(kept >= session.confirmed,
      `round ${round}: nothing confirmed is lost (lines ${w.first}..${w.last} written, ${session.confirmed} confirmed, ${kept} kept)`);
    t.notOk(fs.existsSync(`${file}.${MAX_BACKUPS - 1}`), `round ${round}: no backup dropped off the end, so the whole stream was checked`);
    await restartClean(t, rig, round);
    t.notOk(fs.existsSync(stateFile), `round ${round}: no re-exec state file left after the start`);
  }
  t.same(await rig.stop(), { code: 0, signal: null }, 'a clean stop at the end');
}

// ---- virtlockd ---------------------------------------------------------------

/** Who holds byte 0 of `file` (0: nobody), asked from this process with F_GETLK. */
function holderOf(file: string): number {
  let fd: number;
  try { fd = fs.openSync(file, 'r+'); } catch { return 0; }
  try { return lockHolder(fd); } finally { closeFd(fd); }
}

async function lockdScenario(t: Test): Promise<void> {
  const rng = seededRandom(SEED + 2);
  const rig = new CrashRig({ name: 'virtlockd' });
  t.teardown(() => rig.kill());
  await rig.start();
  const base = tempDir('virtd-locks-');
  const space = path.join(base, 'space');
  // The owner is a real process (a stand-in for QEMU) that virtlockd's death must not touch.
  const ownerProc = spawn('sleep', ['3600'], { stdio: 'ignore' });
  t.teardown(() => ownerProc.kill('SIGKILL'));
  const owner = { uuid: 'c7a5fdbd-edaf-9455-926a-d65c16db1809', name: 'guest', id: 1, pid: ownerProc.pid! };
  // Held for the whole round: exclusive in a directory lock space, shared
  // and exclusive autocreated in the default one.
  const steady: [string, string, number][] = [
    [space, 'disk0', 0],
    ['', path.join(base, 'shared.img'), LOCK_ACQUIRE.SHARED | LOCK_ACQUIRE.AUTOCREATE],
    ['', path.join(base, 'excl.img'), LOCK_ACQUIRE.AUTOCREATE],
  ];
  const fileOf = (ls: string, name: string): string => (ls ? path.join(ls, name) : name);
  const churn = Array.from({ length: 6 }, (_, i) => path.join(base, `churn${i}.img`));

  const setup = async (c: LockClient): Promise<void> => {
    await c.register(owner);
    await c.createLockSpace(space);
    await c.createResource(space, 'disk0');
    for (const [ls, name, flags] of steady) await c.acquire(ls, name, flags);
  };

  for (let round = 0; round < ROUNDS; round++) {
    const c = new LockClient(rig.socket());
    t.same(await c.list(), [], `round ${round}: nothing is held after the start`);
    await setup(c);
    const pid = rig.daemon.pid;
    t.same(steady.map(([ls, n]) => holderOf(fileOf(ls, n))), steady.map(() => pid), `round ${round}: the daemon holds the locks`);

    // Churn: autocreated resources acquired and released (created and
    // unlinked) as fast as calls go, so the kill lands inside one.
    let stop = false;
    let killed = false;
    let failure: Error | undefined;
    let calls = 0;
    const held = new Set<string>();
    const churner = (async () => {
      try {
        while (!stop) {
          const f = rng.pick(churn);
          if (held.has(f)) { await c.release('', f); held.delete(f); } else {
            await c.acquire('', f, LOCK_ACQUIRE.AUTOCREATE | (rng.next() < 0.5 ? LOCK_ACQUIRE.SHARED : 0));
            held.add(f);
          }
          calls++;
        }
      } catch (e) {
        if (!killed) failure = e as Error;
      }
    })();
    const killAfter = 3 + rng.int(30);
    await waitFor(() => {
      if (failure) throw new Error(`a lock call failed before the kill: ${failure.message}`);
      return calls >= killAfter;
    }, 20_000, 'lock calls');
    if (rng.next() < 0.7) await sleep(rng.int(3));
    killed = true;
    await crashAndCheckLeftovers(t, rig, ['virtlockd-admin-sock', 'virtlockd-sock'], round);
    // No waiting: the locks were the dead process's, gone with its fds.
    const files = [...steady.map(([ls, n]) => fileOf(ls, n)), ...churn];
    t.same(files.map(holderOf), files.map(() => 0), `round ${round}: every lock is gone the moment the daemon is`);
    stop = true;
    await churner;
    c.close();
    t.ok(fs.existsSync(`/proc/${owner.pid}`), `round ${round}: the owner process is untouched`);

    await restartClean(t, rig, round);
    // Nothing stale blocks re-acquiring: the same owner takes everything again.
    const again = new LockClient(rig.socket());
    await setup(again);
    for (const f of churn) await again.acquire('', f, LOCK_ACQUIRE.AUTOCREATE);
    t.same(files.map(holderOf), files.map(() => rig.daemon.pid), `round ${round}: every resource re-acquired by the new daemon`);
    for (const f of churn) await again.release('', f);
    for (const [ls, name] of steady) await again.release(ls, name);
    t.same(files.map(holderOf), files.map(() => 0), `round ${round}: and released`);
    again.close();
  }
  t.same(await rig.stop(), { code: 0, signal: null }, 'a clean stop at the end');
}
