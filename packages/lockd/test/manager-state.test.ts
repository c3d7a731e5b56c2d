// The lock manager's re-exec pair: toState() against the golden JSON
// (libvirt's "defaultLockspace" and "lockspaces"), and restore() in a fresh
// manager on duplicated fds, as execve keeps them: the locks never lapse,
// and the restored manager releases them as its own.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { dupCloexec } from '@virtd/posix';
import type { Client } from '@virtd/core';
import { LockManager } from '../src/manager.js';
import type { LockSpaceState } from '../src/lockspace.js';

const GOLDEN = path.join(__dirname, '..', '..', 'test', 'fixtures', 'manager-state.json');
const log = pino({ level: 'silent' });

/** Enough of a Client for the manager: its data map and close hook. */
function fakeClient(pid: number): Client {
  const data = new Map<string | symbol, unknown>();
  return { id: 1, identity: { pid }, data, onClose: () => {} } as unknown as Client;
}

/** Whether this process holds a lock on `file` (our own locks never conflict with us, so ask /proc/locks). */
function heldByUs(file: string): boolean {
  const ino = fs.statSync(file).ino;
  return fs.readFileSync('/proc/locks', 'utf8').split('\n').some((l) => l.includes(`:${ino} `) && l.includes(` ${process.pid} `));
}

t.test('LockManager: golden state; restored locks never lapse', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtd-manager-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const space = path.join(dir, 'space');
  const disk = path.join(dir, 'disk.img');
  const m = new LockManager(log);
  const c = fakeClient(4242);
  m.createLockSpace(c, space);
  m.register(c, { uuid: 'c7a5fdbd-edaf-9455-926a-d65c16db1809', name: 'guest1', id: 3, pid: 4242 }, 0);
  m.acquire(c, space, 'res1', 2);
  m.acquire(c, '', disk, 1 | 2);

  const state = m.toState();
  const masked = JSON.parse(JSON.stringify(state, (k, v: unknown) => (k === 'fd' ? '<fd>' : typeof v === 'string' && v.startsWith(dir) ? v.slice(dir.length) : v))) as unknown;
  if (process.env.VIRTD_UPDATE_GOLDEN) fs.writeFileSync(GOLDEN, `${JSON.stringify(masked, null, 2)}\n`);
  t.same(masked, JSON.parse(fs.readFileSync(GOLDEN, 'utf8')), 'libvirt\'s LOCKSPACE objects');
  t.same(m.clientData(c), { restricted: false, ownerPid: 4242, ownerId: 3, ownerName: 'guest1', ownerUUID: 'c7a5fdbd-edaf-9455-926a-d65c16db1809' },
    'the owner, as privateData');

  // execve keeps the fds (and so the locks); here a dup stands in for that.
  const dupd = (s: LockSpaceState): LockSpaceState => ({ ...s, resources: s.resources.map((r) => ({ ...r, fd: dupCloexec(r.fd) })) });
  const kept = { defaultLockspace: dupd(state.defaultLockspace), lockspaces: state.lockspaces.map(dupd) };
  const fresh = new LockManager(log);
  fresh.restore(kept);
  const c2 = fakeClient(4242);
  fresh.restoreClient(c2, m.clientData(c));
  t.same(fresh.list(c2).map((r) => [r.lockspace, r.name, r.shared, r.owners]),
    [['', disk, true, [4242]], [space, 'res1', false, [4242]]], 'the same resources and owners');
  t.ok(heldByUs(path.join(space, 'res1')) && heldByUs(disk), 'the fcntl locks are still ours');

  // (The old fds are not closed here: closing any fd of a file drops this
  // process's fcntl locks on it, dups included. execve keeps the very same
  // fds, so the real hand-over never closes one.)
  fresh.release(c2, space, 'res1', 0);
  fresh.release(c2, '', disk, 0);
  t.notOk(fs.existsSync(disk), 'released by the restored manager; autocreated file removed');
  t.same(fresh.list(c2), []);
});
