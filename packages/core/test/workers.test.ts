import t from 'tap';
import { WorkerPool } from '../src/workers.js';

const gate = (): { promise: Promise<void>; open: () => void } => {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
};

t.test('max_workers limits calls in flight; the rest queue', async (t) => {
  const pool = new WorkerPool({ minWorkers: 1, maxWorkers: 2, prioWorkers: 1 });
  t.same(pool.params(), { minWorkers: 1, maxWorkers: 2, prioWorkers: 1, nWorkers: 1, freeWorkers: 1, jobQueueDepth: 0 });
  const g = gate();
  const started: number[] = [];
  const calls = [1, 2, 3].map((n) => pool.run(false, async () => { started.push(n); await g.promise; return n; }));
  await new Promise((r) => setImmediate(r));
  t.same(started, [1, 2], 'two run, one waits');
  t.equal(pool.params().jobQueueDepth, 1);
  t.equal(pool.params().nWorkers, 2, 'workers grow on demand');
  t.equal(pool.params().freeWorkers, 0);
  // A priority call still gets through on the priority worker.
  t.equal(await pool.run(true, () => 'prio'), 'prio');
  g.open();
  t.same(await Promise.all(calls), [1, 2, 3]);
  t.equal(pool.params().jobQueueDepth, 0);
  t.equal(pool.params().freeWorkers, 2);
});

t.test('limits change at once and are validated like libvirt', async (t) => {
  const pool = new WorkerPool({ minWorkers: 5, maxWorkers: 20, prioWorkers: 5 });
  t.throws(() => pool.setLimits({ minWorkers: 30 }), /minWorkers cannot be larger than maxWorkers/);
  t.throws(() => pool.setLimits({ maxWorkers: 0, minWorkers: 0 }), /zero/);
  pool.setLimits({ minWorkers: 2, maxWorkers: 8, prioWorkers: 3 });
  t.match(pool.params(), { minWorkers: 2, maxWorkers: 8, prioWorkers: 3 });
  const inline = new WorkerPool({ minWorkers: 0, maxWorkers: 0, prioWorkers: 0 });
  t.equal(await inline.run(false, () => 7), 7, 'max 0 runs inline');
});
