// libvirt's worker pool, as limits on calls in flight: up to max_workers
// ordinary calls run at once, the rest queue; priority calls may also use
// prio_workers extra slots so the admin API and keepalive-style calls still
// get through when every ordinary worker is busy. max_workers 0 means calls
// run inline with no limit (virtlogd, virtlockd).
import { VirtError } from '@virtd/errors';

export interface PoolLimits {
  readonly minWorkers: number;
  readonly maxWorkers: number;
  readonly prioWorkers: number;
}

export interface PoolParams extends PoolLimits {
  /** Workers that exist: min_workers at start, grown on demand up to max. */
  readonly nWorkers: number;
  /** Existing workers with no call. */
  readonly freeWorkers: number;
  /** Calls waiting for a worker. */
  readonly jobQueueDepth: number;
}

export class WorkerPool {
  private limits: PoolLimits;
  private spawned: number;
  private busy = 0;
  private prioBusy = 0;
  private readonly queue: { priority: boolean; start: () => void }[] = [];

  constructor(limits: PoolLimits) {
    this.limits = limits;
    this.spawned = Math.min(limits.minWorkers, limits.maxWorkers || limits.minWorkers);
  }

  params(): PoolParams {
    return {
      ...this.limits,
      nWorkers: this.spawned,
      freeWorkers: Math.max(0, this.spawned - this.busy),
      jobQueueDepth: this.queue.length,
    };
  }

  /** Changes the limits (admin srv-threadpool-set); undefined keeps a value. */
  setLimits(next: Partial<PoolLimits>): void {
    const merged: PoolLimits = {
      minWorkers: next.minWorkers ?? this.limits.minWorkers,
      maxWorkers: next.maxWorkers ?? this.limits.maxWorkers,
      prioWorkers: next.prioWorkers ?? this.limits.prioWorkers,
    };
    if (merged.maxWorkers > 0 && merged.minWorkers > merged.maxWorkers) {
      throw new VirtError('INVALID_ARG', 'NONE', 'minWorkers cannot be larger than maxWorkers');
    }
    if ((this.limits.maxWorkers === 0) !== (merged.maxWorkers === 0)) {
      throw new VirtError('INVALID_ARG', 'NONE',
        'maxWorkers cannot be changed between zero (calls handled inline) and non-zero');
    }
    this.limits = merged;
    this.spawned = Math.max(Math.min(this.spawned, merged.maxWorkers || this.spawned), merged.minWorkers);
    this.drain();
  }

  /** Runs fn when a worker is free. */
  async run<T>(priority: boolean, fn: () => Promise<T> | T): Promise<T> {
    if (this.limits.maxWorkers === 0) return fn();
    const slot = await this.acquire(priority);
    try {
      return await fn();
    } finally {
      this.release(slot);
    }
  }

  private acquire(priority: boolean): Promise<'normal' | 'prio'> {
    const got = this.tryTake(priority);
    if (got) return Promise.resolve(got);
    return new Promise((resolve) => {
      this.queue.push({ priority, start: () => resolve(this.tryTake(priority)!) });
    });
  }

  private tryTake(priority: boolean): 'normal' | 'prio' | undefined {
    if (this.busy < this.limits.maxWorkers) {
      this.busy++;
      if (this.busy > this.spawned) this.spawned = this.busy;
      return 'normal';
    }
    if (priority && this.prioBusy < this.limits.prioWorkers) {
      this.prioBusy++;
      return 'prio';
    }
    return undefined;
  }

  private release(slot: 'normal' | 'prio'): void {
    if (slot === 'normal') this.busy--;
    else this.prioBusy--;
    this.drain();
  }

  private drain(): void {
    for (let i = 0; i < this.queue.length;) {
      const job = this.queue[i]!;
      const canRun = this.busy < this.limits.maxWorkers || (job.priority && this.prioBusy < this.limits.prioWorkers);
      if (!canRun) { i++; continue; }
      this.queue.splice(i, 1);
      job.start();
    }
  }
}
