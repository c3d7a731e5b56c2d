// The behaviours libvirt's virlockspacetest pins down, with real fcntl locks
// checked from another process.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { LockSpace, ACQUIRE } from '../src/lockspace.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'virtd-ls-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Whether another process could take the lock on byte 0 (shared or not). */
function otherCanLock(file: string, shared = false): boolean {
  const r = spawnSync(process.execPath, ['-e', `
    const p = require(${JSON.stringify(require.resolve('@virtd/posix'))});
    const fd = require('fs').openSync(${JSON.stringify(file)}, 'r+');
    process.stdout.write(String(p.tryLockByte0(fd, { shared: ${shared} })));
  `], { encoding: 'utf8' });
  return r.stdout === 'true';
}

t.test('directory lock spaces are created 0700; a file in the way is refused', async (t) => {
  const dir = path.join(tmp, 'space');
  LockSpace.create(dir);
  t.equal(fs.statSync(dir).mode & 0o777, 0o700);
  fs.writeFileSync(path.join(tmp, 'file'), '');
  t.throws(() => LockSpace.create(path.join(tmp, 'file')), /is not a directory/);
});

t.test('create and delete resources; both refused while held', async (t) => {
  const ls = LockSpace.create(path.join(tmp, 'cd'));
  ls.createResource('disk');
  t.equal(fs.statSync(path.join(tmp, 'cd', 'disk')).mode & 0o777, 0o600);
  ls.acquire('disk', 100, 0);
  t.throws(() => ls.deleteResource('disk'), /Lockspace resource 'disk' is locked/);
  t.throws(() => ls.createResource('disk'), /is locked/);
  ls.release('disk', 100);
  ls.deleteResource('disk');
  t.notOk(fs.existsSync(path.join(tmp, 'cd', 'disk')));
  ls.deleteResource('disk');
  t.pass('deleting a missing resource is fine');
});

t.test('exclusive locks block everyone; shared ones admit shared only', async (t) => {
  const ls = LockSpace.create(path.join(tmp, 'ex'));
  const file = ls.resourcePath('img');
  ls.createResource('img');
  ls.acquire('img', 1, 0);
  t.throws(() => ls.acquire('img', 2, 0), /is locked/, 'a second exclusive is busy');
  t.throws(() => ls.acquire('img', 2, ACQUIRE.SHARED), /is locked/, 'shared behind exclusive is busy');
  t.notOk(otherCanLock(file, true), 'another process cannot lock it at all');
  ls.release('img', 1);
  t.ok(otherCanLock(file), 'released: free for others');
  ls.acquire('img', 1, ACQUIRE.SHARED);
  ls.acquire('img', 2, ACQUIRE.SHARED);
  t.same(ls.resources.get('img')!.owners, [1, 2], 'a shared holder is joined');
  t.throws(() => ls.acquire('img', 3, 0), /is locked/, 'exclusive behind shared is busy');
  t.ok(otherCanLock(file, true), 'another process may share it');
  t.notOk(otherCanLock(file, false), 'but not take it exclusively');
  t.throws(() => ls.release('img', 9), /does not hold/);
  t.equal(ls.releaseOwner(1), 1);
  t.equal(ls.releaseOwner(2), 1);
  t.equal(ls.resources.size, 0);
});

t.test('autocreated files go away after the last release', async (t) => {
  const ls = LockSpace.create(path.join(tmp, 'auto'));
  ls.acquire('new', 1, ACQUIRE.AUTOCREATE);
  t.ok(fs.existsSync(ls.resourcePath('new')));
  ls.release('new', 1);
  t.notOk(fs.existsSync(ls.resourcePath('new')));
  t.throws(() => ls.acquire('missing', 1, 0), /Unable to open\/create resource/, 'without autocreate the file must exist');
});

t.test('the default lock space names resources by full path', async (t) => {
  const ls = LockSpace.default();
  const file = path.join(tmp, 'default-disk.img');
  fs.writeFileSync(file, '');
  ls.acquire(file, 5, 0);
  t.equal(ls.resources.get(file)!.path, file);
  t.notOk(otherCanLock(file));
  t.same(ls.toState(), { resources: [{ name: file, path: file, fd: ls.resources.get(file)!.fd, lockHeld: true, flags: 0, owners: [5] }] });
  ls.release(file, 5);
});
