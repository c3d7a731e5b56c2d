// Privilege is the server a connection lands on. The read-only socket
// refuses every write method (walked from the generated method table, so a
// new method cannot slip through); admin sockets and session sockets refuse
// any peer uid other than the daemon's, checked by SO_PEERCRED even when
// file modes are loosened.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ALL_METHODS } from '@virtd/protocol/methods';
import {
  startDaemon, isRoot, ensureUser, runtimeDirFor, userEnv, run, rawCall, probeScript, tempDir, type TestUser,
} from '@virtd/test-utils';

if (!isRoot()) {
  t.pass('skipped: needs root');
} else {
  const unix = (socket: string): { address: string; description: string; credentials: grpc.ChannelCredentials } =>
    ({ address: `unix://${socket}`, description: socket, credentials: grpc.credentials.createInsecure() });

  /** The services a socket offers, as its reflection lists them. */
  async function servicesOn(socket: string): Promise<string[]> {
    const client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure());
    const call = client.makeBidiStreamRequest('/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
      (b: Buffer) => b, (b: Buffer) => b, new grpc.Metadata());
    // ServerReflectionRequest{ list_services = "" } is field 7, an empty string.
    call.write(Buffer.from([0x3a, 0x00]));
    const reply: Buffer = await new Promise((resolve, reject) => { call.once('data', resolve); call.once('error', reject); });
    call.end();
    client.close();
    // The names are plain strings inside the reply; pull them out.
    return [...reply.toString('latin1').matchAll(/[a-z][\w]*(?:\.[\w]+)+/g)].map((m) => m[0]).filter((n) => /\.[A-Z]\w*$/.test(n));
  }

  t.test('the read-only socket refuses every write method, serves every read one', async (t) => {
    const h = startDaemon({ name: 'libvirtd', mode: 'system' });
    t.teardown(() => h.kill());
    await h.socketReady('/run/libvirt/libvirt-sock-ro');
    const ro = h.path('/run/libvirt/libvirt-sock-ro');
    const services = await servicesOn(ro);
    t.ok(services.includes('grpc.health.v1.Health'), `services listed: ${services.join(', ')}`);
    t.notOk(services.includes('virtd.admin.v1.Admin'), 'no admin service on the main server');
    const walked = Object.entries(ALL_METHODS).filter(([, m]) => services.includes(m.service));
    t.ok(walked.length >= 3, `${walked.length} methods walked`);
    for (const [p, m] of walked) {
      const r = await rawCall(unix(ro), p, m);
      if (m.access === 'write') {
        t.equal(r.code, grpc.status.PERMISSION_DENIED, `${p} refused`);
        t.equal(r.details, `operation forbidden: read only access prevents ${m.api ?? `${m.service}.${m.method}`}`);
        t.equal(r.metadata['virt-error-code'], '29', 'VIR_ERR_OPERATION_DENIED');
      } else {
        t.not(r.code, grpc.status.PERMISSION_DENIED, `${p} served (${grpc.status[r.code]})`);
      }
    }
    // The admin program is not reachable through the main sockets at all.
    for (const [p, m] of Object.entries(ALL_METHODS).filter(([, x]) => x.service === 'virtd.admin.v1.Admin')) {
      const r = await rawCall(unix(ro), p, m);
      t.equal(r.code, grpc.status.UNIMPLEMENTED, `${p} not on the ro socket`);
    }
    // And every admin method exists on the admin socket.
    const admin = h.path('/run/libvirt/libvirt-admin-sock');
    for (const [p, m] of Object.entries(ALL_METHODS).filter(([, x]) => x.service === 'virtd.admin.v1.Admin')) {
      const r = await rawCall(unix(admin), p, m);
      t.not(r.code, grpc.status.UNIMPLEMENTED, `${p} served on the admin socket`);
    }
    await h.stop();
  });

  const other = ensureUser('virttest2');
  const root: TestUser = { name: 'root', uid: 0, gid: 0, home: '/root' };
  const probe = async (socket: string, as = other): Promise<{ ok: boolean; error?: string }> => {
    const r = await run(process.execPath, [probeScript, socket], as.uid === 0 ? {} : { user: as });
    return JSON.parse(r.stdout || '{"ok":false,"error":"no output"}') as { ok: boolean; error?: string };
  };

  t.test('admin sockets serve only the daemon\'s uid, whatever their mode', async (t) => {
    // Other users cannot follow /proc/PID/root: expose the run dir instead.
    const runDir = tempDir('virtd-run-');
    const h = startDaemon({ name: 'virtqemud', mode: 'system', exposeRunDir: runDir });
    t.teardown(() => h.kill());
    await h.ready('/run/libvirt/virtqemud-sock');
    const adminSock = path.join(runDir, 'virtqemud-admin-sock');
    const rwSock = path.join(runDir, 'virtqemud-sock');
    t.match((await probe(rwSock)).error, 'Permission denied', 'file mode 0700 keeps others out');
    fs.chmodSync(adminSock, 0o777);
    fs.chmodSync(rwSock, 0o777);
    t.same((await probe(rwSock)).ok, true, 'a loosened rw socket serves others (system mode: file modes rule)');
    const refused = await probe(adminSock);
    t.equal(refused.ok, false, 'the admin socket refuses another uid even at mode 0777');
    t.match(h.stderr, /connection refused: peer uid \d+ is not 0/);
    await h.stop();
  });

  t.test('virtlogd\'s main socket serves only root in system mode', async (t) => {
    const runDir = tempDir('virtd-run-');
    const h = startDaemon({ name: 'virtlogd', mode: 'system', exposeRunDir: runDir });
    t.teardown(() => h.kill());
    await h.socketReady('/run/libvirt/virtlogd-sock');
    fs.chmodSync(path.join(runDir, 'virtlogd-sock'), 0o777);
    t.equal((await probe(path.join(runDir, 'virtlogd-sock'))).ok, false, 'another uid is refused');
    t.same((await probe(path.join(runDir, 'virtlogd-sock'), root)).ok, true, 'root is served');
    t.match(h.stderr, /connection refused: peer uid \d+ is not 0/);
    await h.stop();
  });

  t.test('session sockets refuse another user, checked by SO_PEERCRED not only file modes', async (t) => {
    const user = ensureUser('virttest');
    const xdg = runtimeDirFor(user);
    const h = startDaemon({ name: 'virtsecretd', mode: 'session', user, env: userEnv(user, xdg) });
    t.teardown(() => h.kill());
    const sock = path.join(xdg, 'libvirt', 'virtsecretd-sock');
    await h.socketReady(sock);
    t.same((await probe(sock, user)).ok, true, 'the owner is served');
    t.match((await probe(sock)).error, 'Permission denied', 'another user is kept out by the 0700 directory');
    // Loosen every mode on the way: the peer-credential check still refuses.
    fs.chmodSync(path.dirname(xdg), 0o755);
    fs.chmodSync(xdg, 0o755);
    fs.chmodSync(path.join(xdg, 'libvirt'), 0o755);
    fs.chmodSync(sock, 0o777);
    fs.chmodSync(path.join(xdg, 'libvirt', 'virtsecretd-admin-sock'), 0o777);
    t.equal((await probe(sock)).ok, false, 'main socket refuses another uid');
    t.equal((await probe(path.join(xdg, 'libvirt', 'virtsecretd-admin-sock'))).ok, false, 'admin socket too');
    t.same((await probe(sock, user)).ok, true, 'the owner still is');
    t.match(h.stderr, `peer uid ${other.uid} is not ${user.uid}`);
    await h.stop();
  });
}
