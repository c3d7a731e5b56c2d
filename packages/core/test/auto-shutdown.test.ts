import t from 'tap';
import { AutoShutdown } from '../src/auto-shutdown.js';

t.test('arms only with no client, fires after the timeout, held off by inhibitions', async (t) => {
  const clock = t.capture(global, 'setTimeout', ((fn: () => void, ms: number) => {
    const h = { fn, ms, unref() { return h; } };
    return h;
  }) as unknown as typeof setTimeout);
  t.capture(global, 'clearTimeout', (() => {}) as typeof clearTimeout);
  let fired = 0;
  const a = new AutoShutdown(() => fired++);
  a.setTimeout(2);
  t.equal(a.armed, true, 'armed with zero clients');
  t.equal((clock.args().at(-1)![1] as number), 2000);
  a.setClientCount(1);
  t.equal(a.armed, false, 'a client disarms');
  a.setClientCount(0);
  t.equal(a.armed, true, 'the last client leaving re-arms');
  const release = a.inhibit();
  (clock.args().at(-1)![0] as () => void)();
  t.equal(fired, 0, 'inhibited: does not quit');
  t.equal(a.armed, true, 'and fires again a period later');
  release();
  release();
  t.equal(a.inhibited, 0, 'release is idempotent');
  (clock.args().at(-1)![0] as () => void)();
  t.equal(fired, 1, 'quits once nothing inhibits');
  a.setTimeout(0);
  t.equal(a.armed, false, '0 disables');
});
