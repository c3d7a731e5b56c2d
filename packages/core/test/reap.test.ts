// Children started before an in-place re-exec become the new image's, and
// libuv knows nothing of them: unless reaped they stay zombies for the life
// of the daemon.
import t from 'tap';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

t.test('a child of the previous image is reaped after the exec', async (t) => {
  const fixture = path.join(__dirname, 'fixtures', 'reap-child.js');
  // Without tap's NODE_OPTIONS hooks, which would follow the exec too.
  const r = spawnSync('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, fixture], { encoding: 'utf8', timeout: 20_000 });
  t.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { pid: number; children: number[]; states: string[] };
  t.equal(out.children.length, 1, 'the child was found in /proc/self/task/*/children');
  t.same(out.states, ['gone'], 'and reaped once it exited (no zombie left)');
});
