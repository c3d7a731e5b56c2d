import t from 'tap';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { Activation, stripListenEnv, createNotifier } from '../src/index.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nss-test-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

t.test('not activated unless LISTEN_PID is ours and LISTEN_FDS > 0', async (t) => {
  t.equal(Activation.fromEnv({}, 42), undefined);
  t.equal(Activation.fromEnv({ LISTEN_PID: '41', LISTEN_FDS: '1', LISTEN_FDNAMES: 'a' }, 42), undefined);
  t.equal(Activation.fromEnv({ LISTEN_PID: '42', LISTEN_FDS: '0', LISTEN_FDNAMES: '' }, 42), undefined);
  t.equal(Activation.fromEnv({ LISTEN_PID: '42x', LISTEN_FDS: '1' }, 42), undefined);
});

t.test('missing or miscounted names fail loudly', async (t) => {
  t.throws(() => Activation.fromEnv({ LISTEN_PID: '42', LISTEN_FDS: '1' }, 42), /without LISTEN_FDNAMES/);
  t.throws(() => Activation.fromEnv({ LISTEN_PID: '42', LISTEN_FDS: '2', LISTEN_FDNAMES: 'a' }, 42), /has 1 name/);
});

t.test('strip removes the variables', async (t) => {
  const env: Record<string, string | undefined> = { LISTEN_PID: '1', LISTEN_FDS: '1', LISTEN_FDNAMES: 'x', KEEP: 'y' };
  stripListenEnv(env);
  t.same(env, { KEEP: 'y' });
});

// A child run under systemd-socket-activate claims its fds by name and
// accepts on them; what it prints is checked here.
const child = `
const { Activation } = require(${JSON.stringify(require.resolve('../src/index.js'))});
const net = require('net');
const a = Activation.fromEnv(process.env, process.pid);
const rw = a.claim('virtfoo.socket'); const admin = a.claim('virtfoo-admin.socket');
const missing = a.claim('virtfoo-ro.socket');
let err = null; try { a.complete(); } catch (e) { err = e.message; }
if (process.argv[1] === 'complete') {
  const s = net.createServer((c) => { c.end('hello from ' + rw[0]); s.close(); }).listen({ fd: rw[0] });
  console.log(JSON.stringify({ rw, admin, missing, err, left: a.unclaimed() }));
} else {
  console.log(JSON.stringify({ rw, admin, missing, err, left: a.unclaimed() }));
}
`;

t.test('claims fds by name under systemd-socket-activate', { skip: !hasActivate() && 'systemd-socket-activate not installed' }, async (t) => {
  const rw = path.join(tmp, 'rw.sock');
  const admin = path.join(tmp, 'admin.sock');
  const proc = spawn('systemd-socket-activate', ['-l', rw, '-l', admin, '--fdname=virtfoo.socket:virtfoo-admin.socket',
    process.execPath, '-e', child, 'complete'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => proc.kill());
  // The activator spawns the child on the first connection.
  const c = await connectWhenListening(rw);
  const reply = await new Promise<string>((resolve, reject) => {
    let buf = '';
    c.on('data', (d) => (buf += d)).on('end', () => resolve(buf)).on('error', reject);
  });
  t.equal(reply, 'hello from 3');
  const out = await new Promise<string>((resolve) => {
    let s = '';
    proc.stdout.on('data', (d) => (s += d));
    proc.on('exit', () => resolve(s));
    setTimeout(() => proc.kill(), 2000);
  });
  t.same(JSON.parse(out.trim().split('\n')[0]!), { rw: [3], admin: [4], missing: [], err: null, left: [] });
});

t.test('an unclaimed name fails completion', { skip: !hasActivate() && 'systemd-socket-activate not installed' }, async (t) => {
  const a = path.join(tmp, 'a.sock');
  const b = path.join(tmp, 'b.sock');
  const c = path.join(tmp, 'c.sock');
  const proc = spawn('systemd-socket-activate', ['-l', a, '-l', b, '-l', c,
    '--fdname=virtfoo.socket:virtfoo-admin.socket:virtfoo-tcp.socket', process.execPath, '-e', child, 'partial'],
  { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => proc.kill());
  (await connectWhenListening(a)).on('error', () => {});
  const out = await new Promise<string>((resolve) => {
    let s = '';
    proc.stdout.on('data', (d) => { s += d; if (s.includes('\n')) resolve(s); });
  });
  const r = JSON.parse(out.trim());
  t.same(r.left, ['virtfoo-tcp.socket']);
  t.match(r.err, /unclaimed: virtfoo-tcp.socket/);
});

t.test('sd_notify reaches NOTIFY_SOCKET', async (t) => {
  const sock = path.join(tmp, 'notify.sock');
  // Node has no datagram UNIX sockets; python3 (always on Debian) stands in for systemd here.
  const py = spawn('python3', ['-c', `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); print('up', flush=True)
for _ in range(3): print(repr(s.recv(4096).decode()), flush=True)
`, sock], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => py.kill());
  let out = '';
  py.stdout.on('data', (d) => (out += d));
  await waitFor(() => out.startsWith('up'));
  process.env.NOTIFY_SOCKET = sock;
  const n = createNotifier();
  t.equal(n.active, true);
  n.status('Starting');
  n.ready('Serving 3 sockets');
  n.stopping();
  await waitFor(() => out.split('\n').length >= 5);
  t.same(out.trim().split('\n').slice(1), [`'STATUS=Starting'`, `'READY=1\\nSTATUS=Serving 3 sockets'`, `'STOPPING=1'`]);
  delete process.env.NOTIFY_SOCKET;
  const off = createNotifier();
  t.equal(off.active, false);
  off.ready();
});

function hasActivate(): boolean {
  return spawnSync('sh', ['-c', 'command -v systemd-socket-activate']).status === 0;
}

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A connection once the path listens: the activator binds (the file
 * appears) before it listens, and a connect in between is refused.
 */
async function connectWhenListening(p: string, ms = 5000): Promise<net.Socket> {
  const end = Date.now() + ms;
  for (;;) {
    const c = net.connect(p);
    const ok = await new Promise<boolean>((resolve) => c.once('connect', () => resolve(true)).once('error', () => resolve(false)));
    if (ok) return c;
    c.destroy();
    if (Date.now() > end) throw new Error(`${p} is not listening`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
