import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { getCloexec, pipe, closeFd, sigprocmask, sigismember } from '@virtd/posix';
import { inspectorOpenIn, INSPECTOR_STARTED } from '@virtd/test-utils';
import { execSelf, signalShimPath } from '../src/exec-self.js';

const dist = path.join(__dirname, '..', 'src');
const fixture = path.join(__dirname, 'fixtures', 'reexec-child.js');
const GENERATIONS = 100;
const STORM_EVERY_MS = 1;
// tap's process-info hooks wrap child_process and put themselves into every
// child's NODE_OPTIONS (they would load in every generation and keep the last
// one from exiting): start node through env(1), which drops them again.
const node = (...args: string[]): [string, string[]] => ['/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, ...args]];
// A generation is one Node start-up (~0.25 s idle); 100 of them under a storm
// on a busy 2-CPU machine took ~60 s, so give it room past the suite's 120 s.
const STORM_TIMEOUT_MS = 200_000;
t.setTimeout(STORM_TIMEOUT_MS + 20_000);

/**
 * Sends SIGUSR1 then SIGHUP to `pid` every `everyMs` from a worker thread, so
 * the pace does not depend on the test's event loop. stop() resolves to how
 * many of each it sent.
 */
function startStorm(pid: number, everyMs: number): { stop: () => Promise<{ SIGUSR1: number; SIGHUP: number }> } {
  const shared = new Int32Array(new SharedArrayBuffer(12)); // [stop, usr1, hup]
  const worker = new Worker(`
    const { workerData: { pid, everyMs, shared } } = require('node:worker_threads');
    const nap = new Int32Array(new SharedArrayBuffer(4));
    while (Atomics.load(shared, 0) === 0) {
      try { process.kill(pid, 'SIGUSR1'); Atomics.add(shared, 1, 1); process.kill(pid, 'SIGHUP'); Atomics.add(shared, 2, 1); } catch {}
      Atomics.wait(nap, 0, 0, everyMs);
    }`, { eval: true, workerData: { pid, everyMs, shared } });
  const done = new Promise<void>((r) => worker.once('exit', () => r()));
  return {
    stop: async () => {
      Atomics.store(shared, 0, 1);
      await done;
      return { SIGUSR1: Atomics.load(shared, 1), SIGHUP: Atomics.load(shared, 2) };
    },
  };
}

t.test('a normal start does not load koffi or posix', async (t) => {
  const r = spawnSync(...node('-e', `
    require(${JSON.stringify(path.join(dist, 'early-signals.js'))});
    const keys = Object.keys(require.cache);
    console.log(JSON.stringify({
      loaded: keys.filter((k) => /koffi|[\\\\/]posix[\\\\/]/.test(k)),
      listeners: [process.listenerCount('SIGUSR1'), process.listenerCount('SIGHUP')],
      counts: require(${JSON.stringify(path.join(dist, 'early-signals.js'))}).earlySignalCounts().shim,
    }));
  `), { encoding: 'utf8', env: { ...process.env, VIRTD_SIGNAL_SHIM: undefined } });
  t.equal(r.status, 0, r.stderr);
  t.same(JSON.parse(r.stdout), { loaded: [], listeners: [1, 1], counts: 'none' });
});

t.test('execSelf restores the mask, CLOEXEC and handlers when execve fails', async (t) => {
  const [rd, wr] = pipe(); // both close-on-exec
  const saved = process.execPath;
  let usr2 = 0;
  const onUsr2 = (): void => { usr2++; };
  process.on('SIGUSR2', onUsr2);
  t.teardown(() => { process.off('SIGUSR2', onUsr2); closeFd(rd); closeFd(wr); });
  process.execPath = '/nonexistent/node';
  try {
    t.throws(() => execSelf({ keepFds: [wr], env: { ...process.env, LISTEN_FDS: '1' } }), { code: 'ENOENT', syscall: 'execve' });
  } finally {
    process.execPath = saved;
  }
  t.equal(getCloexec(wr), true, 'kept fd is close-on-exec again');
  t.equal(getCloexec(rd), true, 'other fd untouched');
  const mask = sigprocmask('block', null);
  for (const s of ['SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGTERM', 'SIGINT', 'SIGQUIT'] as const) {
    t.notOk(sigismember(mask, s), `${s} unblocked again`);
  }
  // The shim's forwarding handlers are gone again: libuv's handler gets it.
  process.kill(process.pid, 'SIGUSR2');
  await new Promise((r) => setTimeout(r, 50));
  if (signalShimPath()) t.equal(usr2, 1, 'libuv handler back in place');
  t.equal(process.env.LD_PRELOAD?.includes('signal-shim') ?? false, false, 'own environment untouched');
});

interface Start { ev: 'start'; pid: number; gen: number; shim: string; inspector: string | null; blocked: string; preload: string | null; shimEnv: string | null }
type Counts = Record<string, number>;
interface End { ev: 'end'; pid: number; gen: number; byShim: Counts; byJs: Counts; handled: Counts; inspector: string | null }

t.test(`re-exec ${GENERATIONS} times under a SIGUSR1/SIGHUP storm`, {
  skip: signalShimPath() ? false : 'signal shim not built (no C compiler when `npm run build` ran): packages/core/dist/native/signal-shim.so',
  timeout: STORM_TIMEOUT_MS,
}, async (t) => {
  const child = spawn(...node(fixture), {
    stdio: ['ignore', 'inherit', 'pipe', 'pipe'],
    env: { ...process.env, REEXEC_FD: '3', REEXEC_LAST: String(GENERATIONS), REEXEC_GEN: undefined },
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });

  const starts: Start[] = [];
  const ends: End[] = [];
  let storm: ReturnType<typeof startStorm> | undefined;
  let sent = { SIGUSR1: 0, SIGHUP: 0 };
  const stopStorm = async (): Promise<void> => {
    if (storm) sent = await storm.stop();
    storm = undefined;
  };
  t.teardown(stopStorm);
  let listened = false;
  const watch = setInterval(() => { listened ||= inspectorOpenIn(child.pid!); }, 10);
  t.teardown(() => clearInterval(watch));

  const began = Date.now();
  await new Promise<void>((resolve, reject) => {
    const lines = readline.createInterface({ input: child.stdio[3] as Readable });
    lines.on('line', (line) => {
      const m = JSON.parse(line) as Start | End;
      if (m.ev === 'end') { ends.push(m); return; }
      starts.push(m);
      // Generation 0 was spawned normally (no shim), so storm only once its handlers are in.
      if (m.gen === 0) storm = startStorm(child.pid!, STORM_EVERY_MS);
      if (m.gen === GENERATIONS) resolve();
    });
    void exited.then(({ code, signal }) => reject(new Error(`child exited early: code ${code} signal ${signal} after ${starts.length} generations\n${stderr}`)));
  });
  await stopStorm();
  const elapsed = Date.now() - began;
  t.comment(`${GENERATIONS} generations in ${elapsed} ms; storm: ${sent.SIGUSR1} × (SIGUSR1 + SIGHUP), one pair every ${(elapsed / sent.SIGUSR1).toFixed(1)} ms`);
  await new Promise((r) => setTimeout(r, 200)); // let the last signals land
  clearInterval(watch);
  listened ||= inspectorOpenIn(child.pid!);
  // The last generation exits 0 on SIGTERM, if its JS handlers are live.
  child.kill('SIGTERM');
  const EXIT_WAIT_MS = 10_000;
  const late = setTimeout(() => child.kill('SIGKILL'), EXIT_WAIT_MS);
  const { code, signal } = await exited;
  clearTimeout(late);

  t.same({ code, signal }, { code: 0, signal: null }, `exits 0 on SIGTERM after the storm (SIGKILL: not within ${EXIT_WAIT_MS} ms) ${stderr}`);
  t.same(starts.map((s) => s.gen), Array.from({ length: GENERATIONS + 1 }, (_, i) => i), 'every generation reported on the kept fd, in order');
  t.ok(starts.every((s) => s.pid === child.pid), 'same pid throughout');
  t.same(ends.map((e) => e.gen), starts.map((s) => s.gen), 'every generation reported its counts');
  t.same(starts.filter((s) => s.gen > 0 && s.shim !== 'held').map((s) => s.gen), [], 'the shim held in every re-exec');
  t.same([...starts, ...ends].filter((m) => m.inspector !== null).map((m) => m.gen), [], 'inspector.url() stayed undefined');
  t.notOk(listened, 'the child never held a socket on 9229');
  t.notMatch(stderr, INSPECTOR_STARTED, 'and Node never said it started an inspector');
  // The caught signals are bits 0, 1, 2, 9, 11, 14 (signal number - 1).
  const CAUGHT_BITS = 0x4a07n;
  t.same(starts.filter((s) => (BigInt(`0x${s.blocked}`) & CAUGHT_BITS) !== 0n).map((s) => s.gen), [], 'caught signals unblocked in every generation');
  t.same(starts.filter((s) => (s.preload ?? '').includes('signal-shim') || s.shimEnv !== null).map((s) => s.gen), [], 'the shim is not left in the environment');

  const received = { SIGUSR1: 0, SIGHUP: 0 };
  const silent: number[] = [];
  let byShim = 0;
  let byJsAfterReexec = 0;
  for (const e of ends) {
    const got = { SIGUSR1: 0, SIGHUP: 0 };
    for (const sig of ['SIGUSR1', 'SIGHUP'] as const) {
      got[sig] = (e.byShim[sig] ?? 0) + (e.byJs[sig] ?? 0) + (e.handled[sig] ?? 0);
      received[sig] += got[sig];
      byShim += e.byShim[sig] ?? 0;
      if (e.gen > 0) byJsAfterReexec += (e.byJs[sig] ?? 0) + (e.handled[sig] ?? 0);
    }
    if (e.gen > 0 && (got.SIGUSR1 === 0 || got.SIGHUP === 0)) silent.push(e.gen);
  }
  t.comment(`sent ${JSON.stringify(sent)}, received ${JSON.stringify(received)}, ${byShim} of them by the shim`);
  t.ok(byShim > 0, 'the shim caught signals in the start-up window');
  t.ok(byJsAfterReexec > 0, 'libuv\'s handlers took over from the shim (JS saw signals after re-exec)');
  // Each generation lives through a whole Node start-up under the storm, so
  // each must account for both signals. Beyond that, counts depend on the
  // kernel: it keeps one pending instance per signal, so signals coalesce
  // while blocked (SIGHUP from the old image's block to Node's PlatformInit;
  // SIGUSR1 until the inspector set-up unblocks it, most of start-up) and
  // while the child waits for a CPU. Measured: SIGHUP 92% at one pair per
  // 6 ms, 57% at one per 1.4 ms on a loaded 2-CPU machine.
  t.same(silent, [], 'every re-exec\'d generation received SIGUSR1 and SIGHUP');
  t.ok(received.SIGHUP >= sent.SIGHUP * 0.25, `SIGHUP: received ${received.SIGHUP} of ${sent.SIGHUP} (≥ 25%)`);
});
