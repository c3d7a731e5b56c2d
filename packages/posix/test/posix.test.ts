import t from 'tap';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import {
  tryLockByte0, unlockByte0, lockHolder, getCloexec, setCloexec, dupCloexec, pipe, closeFd,
  peerCred, userName, groupName, groupId, listenUnix, connectUnix, sendWithFds, recvWithFds,
  getRlimit, RLIMIT_NOFILE, PosixError,
} from '../src/index.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'posix-test-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

t.test('byte-0 locks conflict across processes, not within one', async (t) => {
  const file = path.join(tmp, 'lock');
  const fd = fs.openSync(file, 'w');
  t.equal(tryLockByte0(fd), true);
  // Another process must see our lock and be refused.
  const child = spawn(process.execPath, ['-e', `
    const p = require(${JSON.stringify(require.resolve('../src/index.js'))});
    const fd = require('fs').openSync(${JSON.stringify(file)}, 'r+');
    process.stdout.write(JSON.stringify({ got: p.tryLockByte0(fd), holder: p.lockHolder(fd) }));
  `]);
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  await new Promise((r) => child.on('exit', r));
  t.same(JSON.parse(out), { got: false, holder: process.pid });
  unlockByte0(fd);
  t.equal(lockHolder(fd), 0, 'free after unlock');
  fs.closeSync(fd);
});

t.test('close-on-exec flag round trip and dup', async (t) => {
  const [r, w] = pipe();
  t.equal(getCloexec(r), true, 'pipe ends are close-on-exec');
  setCloexec(r, false);
  t.equal(getCloexec(r), false);
  const d = dupCloexec(r, 50);
  t.ok(d >= 50);
  t.equal(getCloexec(d), true);
  for (const fd of [r, w, d]) closeFd(fd);
  t.throws(() => getCloexec(r), PosixError);
});

t.test('listenUnix sets the exact mode and passes fds over a connection', async (t) => {
  const sock = path.join(tmp, 's');
  fs.writeFileSync(sock, 'stale');
  const lfd = listenUnix(sock, { backlog: 5, mode: 0o640 });
  t.equal(fs.statSync(sock).mode & 0o777, 0o640);
  t.ok(fs.statSync(sock).isSocket(), 'stale file replaced by a socket');
  const server = net.createServer().listen({ fd: lfd });
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const cfd = connectUnix(sock);
  const conn = await accepted;
  conn.pause();
  const cred = peerCred((conn as unknown as { _handle: { fd: number } })._handle.fd);
  t.same(cred, { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });

  const [r, w] = pipe();
  const sfd = (conn as unknown as { _handle: { fd: number } })._handle.fd;
  t.equal(sendWithFds(sfd, Buffer.from('F'), [w]), 1);
  let got = recvWithFds(cfd, 16, 4);
  for (let i = 0; !got && i < 100; i++) { await new Promise((res) => setTimeout(res, 5)); got = recvWithFds(cfd, 16, 4); }
  t.ok(got);
  t.equal(got!.data.toString(), 'F');
  t.equal(got!.fds.length, 1);
  fs.writeSync(got!.fds[0]!, 'through the passed fd');
  const buf = Buffer.alloc(64);
  const n = fs.readSync(r, buf);
  t.equal(buf.toString('utf8', 0, n), 'through the passed fd');
  t.equal(recvWithFds(cfd, 16, 1), null, 'nothing more to read');
  for (const fd of [r, w, got!.fds[0]!, cfd]) closeFd(fd);
  conn.destroy();
  await new Promise((res) => server.close(res));
});

t.test('names behind ids', async (t) => {
  t.equal(userName(0), 'root');
  t.equal(groupName(0), 'root');
  t.equal(groupId('root'), 0);
  t.equal(groupId('no-such-group-here'), undefined);
  t.equal(userName(4000000000), undefined);
});

t.test('rlimits', async (t) => {
  const lim = getRlimit(RLIMIT_NOFILE);
  t.ok(lim.cur > 0 && lim.cur <= lim.max);
});
