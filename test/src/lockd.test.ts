// virtlockd end to end: real fcntl locks held by the daemon for owner
// processes, checked from another process; the protocol's preconditions;
// owner death releasing locks and stopping an owner that lingers.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { LockClient, LOCK_ACQUIRE } from '@virtd/client';
import { lockHolder, closeFd } from '@virtd/posix';
import { startDaemon, isRoot, tempDir, waitFor, run, binPath, type DaemonHandle } from '@virtd/test-utils';

const SOCK = '/run/libvirt/virtlockd-sock';
const owner = (pid: number, id = 1): { uuid: string; name: string; id: number; pid: number } =>
  ({ uuid: 'c7a5fdbd-edaf-9455-926a-d65c16db1809', name: `guest${id}`, id, pid });

/** A process that connects to virtlockd itself, registers its own pid and takes a lock. */
function ownerProcess(sock: string, lockspace: string, name: string, onClose: 'exit' | 'linger'): ChildProcess {
  return spawn(process.execPath, ['-e', `
    const { LockClient } = require(${JSON.stringify(require.resolve('@virtd/client'))});
    const c = new LockClient(${JSON.stringify(sock)});
    (async () => {
      await c.register({ uuid: 'c7a5fdbd-edaf-9455-926a-d65c16db1809', name: 'owner', id: 7, pid: process.pid });
      await c.acquire(${JSON.stringify(lockspace)}, ${JSON.stringify(name)}, 2);
      console.log('held');
      process.stdin.on('data', () => {
        c.close();
        ${onClose === 'exit' ? 'process.exit(0);' : "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000);"}
      });
    })().catch((e) => { console.error(e.message); process.exit(3); });
  `], { stdio: ['pipe', 'pipe', 'inherit'] });
}

/** Who holds byte 0 of `file` (0: nobody), asked from this process. */
function holderOf(file: string): number {
  let fd: number;
  try { fd = fs.openSync(file, 'r+'); } catch { return 0; }
  try { return lockHolder(fd); } finally { closeFd(fd); }
}

const held = (p: ChildProcess): Promise<void> => new Promise((resolve, reject) => {
  p.stdout!.once('data', () => resolve());
  p.once('exit', (code) => reject(new Error(`owner exited with ${code}`)));
});

if (!isRoot()) {
  t.pass('skipped: needs root');
} else {
  let h: DaemonHandle;
  t.before(async () => {
    h = startDaemon({ name: 'virtlockd', mode: 'system' });
    await h.ready(SOCK);
  });
  t.teardown(() => h.kill());

  t.test('the protocol: owner first, lock spaces, shared and exclusive, release', async (t) => {
    const c = new LockClient(h.path(SOCK));
    t.teardown(() => c.close());
    const dir = path.join(tempDir('virtd-locks-'), 'space');
    await t.rejects(c.acquire('', '/nope', 0), /lock owner details have not been registered/);
    await c.createLockSpace(dir);
    t.equal(fs.statSync(dir).mode & 0o777, 0o700, 'lock space directories are 0700');
    await c.createLockSpace(dir);
    t.pass('creating a lock space twice is fine');

    await t.rejects(c.register({ ...owner(process.pid), id: 0 }), /non-zero/);
    await c.register(owner(process.pid));
    await t.rejects(c.register(owner(process.pid)), /already been registered/);
    await t.rejects(c.newLockSpace(dir), /already exists/);
    await t.rejects(c.newLockSpace(''), /default lockspace already exists/);
    await t.rejects(c.acquire('/no/such/space', 'disk', 0), /Lockspace for path \/no\/such\/space does not exist/);

    await c.createResource(dir, 'disk1');
    t.ok(fs.existsSync(path.join(dir, 'disk1')), 'resource file created');
    await c.acquire(dir, 'disk1', 0);
    t.equal(holderOf(path.join(dir, 'disk1')), h.pid, 'the daemon holds a real fcntl lock on byte 0');
    await t.rejects(c.acquire(dir, 'disk1', LOCK_ACQUIRE.SHARED), /Lockspace resource 'disk1' is locked/, 'exclusive is exclusive');
    await t.rejects(c.deleteResource(dir, 'disk1'), /is locked/, 'a held resource cannot be deleted');
    t.same((await c.list()).map((r) => [r.lockspace, r.name, r.shared, r.owners]), [[dir, 'disk1', false, [process.pid]]]);
    await c.release(dir, 'disk1');
    t.equal(holderOf(path.join(dir, 'disk1')), 0, 'released for real');
    await c.deleteResource(dir, 'disk1');

    // Default lock space: names are full paths; autocreate files go with the last holder.
    const disk = path.join(tempDir('virtd-locks-'), 'disk.img');
    await c.acquire('', disk, LOCK_ACQUIRE.SHARED | LOCK_ACQUIRE.AUTOCREATE);
    const other = new LockClient(h.path(SOCK));
    t.teardown(() => other.close());
    await other.register(owner(process.pid + 100000, 2));
    await other.acquire('', disk, LOCK_ACQUIRE.SHARED | LOCK_ACQUIRE.AUTOCREATE);
    t.same((await c.list()).find((r) => r.path === disk)?.owners, [process.pid, process.pid + 100000], 'shared holders join');
    await t.rejects(other.acquire('', disk, LOCK_ACQUIRE.AUTOCREATE), /is locked/);
    await c.release('', disk);
    t.ok(fs.existsSync(disk), 'still held by the other owner');
    await other.release('', disk);
    t.notOk(fs.existsSync(disk), 'an autocreated file goes with its last holder');

    await c.restrict();
    await t.rejects(c.list(), /restricted/, 'a restricted connection can do nothing more');
  });

  t.test('an owner that dies loses its locks; another process never had them', async (t) => {
    const dir = tempDir('virtd-locks-');
    const file = path.join(dir, 'vm.img');
    const o = ownerProcess(h.path(SOCK), '', file, 'exit');
    await held(o);
    t.equal(holderOf(file), h.pid, 'held by virtlockd on the owner\'s behalf');
    const c = new LockClient(h.path(SOCK));
    t.teardown(() => c.close());
    await c.register(owner(process.pid, 3));
    await t.rejects(c.acquire('', file, LOCK_ACQUIRE.AUTOCREATE), /is locked/);
    o.kill('SIGKILL');
    await waitFor(async () => !(await c.list()).some((r) => r.path === file), 5000, 'locks released');
    await c.acquire('', file, LOCK_ACQUIRE.AUTOCREATE);
    t.pass('the lock is free once its owner is dead');
    await c.release('', file);
  });

  t.test('an owner that closes its connection but lingers is stopped', async (t) => {
    const file = path.join(tempDir('virtd-locks-'), 'vm2.img');
    const o = ownerProcess(h.path(SOCK), '', file, 'linger');
    await held(o);
    const exited = new Promise<NodeJS.Signals | null>((resolve) => o.once('exit', (_c, sig) => resolve(sig)));
    const t0 = Date.now();
    o.stdin!.write('close\n');
    // It ignores SIGTERM, so the SIGKILL at the ninth 200 ms step ends it.
    t.equal(await exited, 'SIGKILL', 'SIGTERM ignored, then SIGKILL');
    const took = Date.now() - t0;
    t.ok(took >= 1500 && took < 4000, `killed after ${took} ms`);
    t.equal(holderOf(file), 0, 'and its lock is gone');
  });

  t.test('vsh: register, acquire, list and release in one session; others see the holder', async (t) => {
    const sock = h.path(SOCK);
    const file = path.join(tempDir('virtd-locks-'), 'vsh.img');
    const sleeper = spawn('sleep', ['600']);
    t.teardown(() => sleeper.kill());
    // vsh reads commands from stdin; the connection (and the lock) lasts until it has read them all.
    const script = [
      `vlock-register --pid ${sleeper.pid} --name admin-test --socket ${sock}`,
      `vlock-acquire ${file} --autocreate --socket ${sock}`,
      `vlock-list --socket ${sock}`,
      `vlock-acquire ${file} --socket ${sock}`,
      `vlock-release ${file} --socket ${sock}`,
      `vlock-list --socket ${sock}`,
    ].join('\n');
    const r = await run(binPath('vsh'), [], { input: `${script}\n` });
    t.match(r.stdout, new RegExp(`Lock owner ${sleeper.pid} registered\nLock on ${file} acquired\n`));
    t.match(r.stdout, new RegExp(`\\(default\\)\\s+${file}\\s+exclusive\\s+${sleeper.pid}`), 'the holder is listed');
    t.match(r.stderr, /failed to acquire the lock\n.*is locked/, 'a second acquire of the same resource is refused');
    t.match(r.stdout, new RegExp(`Lock on ${file} released\n Lock space\\s+Resource\\s+Mode\\s+Owners\n-+\n$`), 'and gone after release');
    t.equal(sleeper.exitCode, null, 'an owner that released everything is left alone when vsh exits');
  });
}
