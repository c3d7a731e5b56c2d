// The re-exec state, layer by layer: the state file's reading rules, and
// the server's serialiser and restorer as a pair — a real server with a
// real listener and a real gRPC client, written down, compared with the
// golden JSON, then rebuilt from it in a fresh Server as a new image would
// (on duplicated fds, since this process does not exec), after which the
// client's next call works on its old connection.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { dupCloexec } from '@virtd/posix';
import { HealthService } from '@virtd/protocol/health';
import { Server, type ServerConfig } from '../src/server.js';
import { bindUnix } from '../src/listener.js';
import { healthProgram, HealthState } from '../src/rpc/health.js';
import { takeStateFile, writeStateFile, StateFileError, type ServerState, type DaemonState } from '../src/exec-state.js';

const GOLDEN = path.join(__dirname, '..', '..', 'test', 'fixtures', 'server-state.json');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'virtd-state-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

t.test('the state file: absent, foreign, corrupt, symlinked, ours', async (t) => {
  const f = path.join(tmp, 'virtlogd-restart-exec.json');
  t.same(takeStateFile(f, 123), { kind: 'none' }, 'absent: a cold start');

  const state: DaemonState = { daemon: { servers: {} }, magic: '123' };
  writeStateFile(f, state);
  t.equal(fs.statSync(f).mode & 0o777, 0o700, 'written 0700, as libvirt');
  t.same(takeStateFile(f, 456), { kind: 'foreign', magic: '123' }, 'another pid\'s file is ignored');
  t.notOk(fs.existsSync(f), 'and removed at once');

  writeStateFile(f, state);
  t.same(takeStateFile(f, 123), { kind: 'ours', state });
  t.notOk(fs.existsSync(f), 'ours is removed at once too');

  for (const [what, text] of [['invalid JSON', '{"magic": '], ['no magic', '{"daemon": {"servers": {}}}'], ['no servers', '{"magic": "123"}']]) {
    fs.writeFileSync(f, text!);
    t.throws(() => takeStateFile(f, 123), StateFileError, `${what}: refused (the daemon exits 3)`);
    t.notOk(fs.existsSync(f), `${what}: removed all the same`);
  }

  const victim = path.join(tmp, 'victim');
  fs.writeFileSync(victim, 'precious');
  fs.symlinkSync(victim, f);
  t.throws(() => takeStateFile(f, 123), /it is a symbolic link; refusing to follow it/, 'never read through a symlink');
  t.ok(fs.lstatSync(f).isSymbolicLink(), 'which is left for the administrator to see');
  writeStateFile(f, state);
  t.notOk(fs.lstatSync(f).isSymbolicLink(), 'writing replaces the link with a file of our own, never writes through it');
  t.equal(fs.readFileSync(victim, 'utf8'), 'precious', 'the symlink target is untouched');
  t.same(takeStateFile(f, 123), { kind: 'ours', state }, 'and the state reads back');
});

const config: ServerConfig = {
  name: 'virtlockd',
  limits: { maxClients: 10, maxAnonymousClients: 10 },
  workers: { minWorkers: 0, maxWorkers: 0, prioWorkers: 0 },
  maxClientRequests: 1,
  keepalive: { interval: -1, count: 0 },
  resumable: true,
};

function newServer(): Server {
  const health = new HealthState();
  return new Server(config, [healthProgram(health, () => ['grpc.health.v1.Health'])], pino({ level: 'silent' }));
}

/** Stable across runs: fds, times and pids become placeholders. */
function normalise(st: ServerState): unknown {
  return JSON.parse(JSON.stringify(st, (k, v: unknown) => {
    if (k === 'fd' || k === 'conn_time') return `<${k}>`;
    if (k === 'pid' && typeof v === 'number' && v !== 0) return '<pid>';
    if (k === 'address' || k === 'path') return typeof v === 'string' ? path.basename(v) : v;
    if (k === 'relay') return '<relay>';
    if (k === 'userName' || k === 'groupName') return `<${k}>`;
    return v;
  }));
}

t.test('Server: toState matches the golden JSON; restore keeps the client\'s connection', async (t) => {
  const sock = path.join(tmp, 'virtlockd-sock');
  const srv = newServer();
  srv.addService('rw', [bindUnix(sock, { mode: 0o700, backlog: 30 })], { requiredUid: 0 });
  srv.start();
  let accepted = 0;
  srv.on('client', () => { accepted++; });
  const client = new grpc.Client(`unix://${sock}`, grpc.credentials.createInsecure());
  t.teardown(() => client.close());
  const check = (): Promise<unknown> => new Promise((resolve, reject) => {
    client.makeUnaryRequest(HealthService.Check.path, HealthService.Check.requestSerialize, HealthService.Check.responseDeserialize,
      {}, (e, r) => (e ? reject(e) : resolve(r)));
  });
  t.same(await check(), { status: 1 }, 'served before');
  t.equal(accepted, 1);

  await srv.quiesce(5000);
  const state = srv.toState(() => ({ restricted: false }));
  const got = normalise(state);
  if (process.env.VIRTD_UPDATE_GOLDEN) fs.writeFileSync(GOLDEN, `${JSON.stringify(got, null, 2)}\n`);
  t.same(got, JSON.parse(fs.readFileSync(GOLDEN, 'utf8')), 'libvirt\'s SERVER shape, our extra keys beside');
  t.equal(state.keepaliveInterval, 4294967295, 'keepalive -1 stored as libvirt stores it');
  t.type(state.clients[0]!.relay, 'object', 'the relay\'s state rides along');

  // What execve would do: the listed fds survive, the objects do not.
  const dup = new Map<number, number>();
  const json = JSON.parse(JSON.stringify(state, (k, v: unknown) => {
    if (k === 'fd' && typeof v === 'number' && v >= 0) {
      if (!dup.has(v)) dup.set(v, dupCloexec(v));
      return dup.get(v);
    }
    return v;
  })) as ServerState;
  for (const { listener } of srv.boundListeners()) listener.pause();
  for (const c of srv.clients()) c.socket.destroy();

  const again = newServer();
  t.teardown(() => again.close());
  let reaccepted = 0;
  again.on('client', () => { reaccepted++; });
  again.restore(json, { restoreClient: (c, data) => { c.data.set('private', data); } });
  t.equal(again.clients().length, 1, 'one client restored');
  t.same(again.clients()[0]!.data.get('private'), { restricted: false }, 'with its private data');
  t.equal(again.clients()[0]!.id, state.clients[0]!.id, 'and its id');
  again.start();
  t.same(await check(), { status: 1 }, 'the next call works');
  t.equal(reaccepted, 1, 'restored, not reconnected: no new accept');
  t.equal(accepted, 1, 'the old server accepted nothing more');
  t.equal(client.getChannel().getConnectivityState(false), grpc.connectivityState.READY, 'the client never left READY');

  // And once more from the restored server, to show the pair closes on itself.
  await again.quiesce(5000);
  t.same(normalise(again.toState(() => ({ restricted: false }))), got, 'a restored server writes the same state');
  again.unquiesce();
  t.same(await check(), { status: 1 }, 'and serves on after a re-exec that did not happen');
});
