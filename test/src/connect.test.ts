// Connections: URIs bound to drivers with libvirt's errors, and the host
// reported truthfully (nodeinfo and capabilities from /proc and /sys, the
// QEMU emulators actually installed, absent hypervisors saying so).
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import { spawn } from 'node:child_process';
import { VirtConnection, Connection, unixTarget } from '@virtd/client';
import { ConnectService } from '@virtd/protocol/connect';
import { startDaemon, isRoot, run, binPath, ensureUser, runtimeDirFor, userEnv } from '@virtd/test-utils';

if (!isRoot()) {
  t.pass('skipped: needs root');
} else {
  t.test('libvirtd: every driver scheme, and the host facts', async (t) => {
    const h = startDaemon({ name: 'libvirtd', mode: 'system' });
    t.teardown(() => h.kill());
    await h.ready('/run/libvirt/libvirt-sock');
    const sock = h.path('/run/libvirt/libvirt-sock');
    const vsh = (uri: string, ...args: string[]): ReturnType<typeof run> => run(binPath('vsh'), ['-c', `${uri}?socket=${sock}`, ...args]);

    for (const s of ['qemu', 'network', 'interface', 'nodedev', 'nwfilter', 'secret', 'storage']) {
      t.equal((await vsh(`${s}:///system`, 'uri')).stdout, `${s}:///system?socket=${sock}\n\n`, `${s}:///system opens`);
    }
    t.equal((await vsh('xen:///system', 'uri')).stderr, 'error: failed to connect to the hypervisor\nerror: internal error: libxenlight state driver is not active\n');
    t.equal((await vsh('lxc:///system', 'uri')).stderr, 'error: failed to connect to the hypervisor\nerror: internal error: lxc state driver is not active\n');
    t.equal((await vsh('bhyve:///system', 'uri')).stderr, 'error: failed to connect to the hypervisor\nerror: no connection driver available for bhyve:///system\n');
    t.equal((await vsh('bogus:///system', 'uri')).stderr, 'error: failed to connect to the hypervisor\nerror: no connection driver available for bogus:///system\n');
    t.equal((await vsh('qemu:///session', 'uri')).stderr,
      "error: failed to connect to the hypervisor\nerror: internal error: unexpected qemu URI path '/session', try qemu:///system\n");

    // nodeinfo from the kernel's own accounting.
    const info = await vsh('qemu:///system', 'nodeinfo');
    t.equal(info.code, 0, info.stderr);
    t.match(info.stdout, `CPU model:           ${os.machine()}\n`);
    t.match(info.stdout, `CPU(s):              ${fs.readFileSync('/sys/devices/system/cpu/online', 'utf8').trim().split(',').reduce((n, r) => {
      const [a, b] = r.split('-').map(Number); return n + (b === undefined ? 1 : b - a! + 1);
    }, 0)}\n`);
    t.match(info.stdout, /Memory size:         \d+ KiB\n/);

    const caps = (await vsh('qemu:///system', 'capabilities')).stdout;
    t.match(caps, `<arch>${os.machine()}</arch>`);
    t.match(caps, /<cells num='\d+'>/);
    const emulators = fs.readdirSync('/usr/bin').filter((f) => /^qemu-system-/.test(f));
    if (emulators.length) {
      t.match(caps, `<emulator>/usr/bin/${emulators[0]}</emulator>`, 'the installed emulators are listed');
      t.match((await vsh('qemu:///system', 'version')).stdout, /Running hypervisor: QEMU \d+\.\d+\.\d+\n/);
    } else {
      t.notMatch(caps, '<guest>', 'no emulator installed: no guest section, nothing invented');
      t.match((await vsh('qemu:///system', 'version')).stderr, 'failed to get the hypervisor version');
    }
    t.equal((await vsh('qemu:///system', 'hostname')).stdout, `${os.hostname()}\n\n`);
    const c = await VirtConnection.open(`qemu:///system?socket=${sock}`);
    t.same([await c.isAlive(), await c.isSecure(), await c.isEncrypted()], [true, true, false], 'a local socket is secure, not encrypted');
    await c.close();
    // An empty URI lets the daemon pick its default hypervisor.
    const raw = new Connection(unixTarget(sock));
    t.match(await raw.unary(ConnectService, 'Open', { uri: '' }), { uri: 'qemu:///system', type: 'QEMU' });
    raw.close();
    await h.stop();
  });

  t.test('read-only opens, unserved APIs, binary values, help keywords', async (t) => {
    const qemud = startDaemon({ name: 'virtqemud', mode: 'system' });
    t.teardown(() => qemud.kill());
    await qemud.ready('/run/libvirt/virtqemud-sock');
    const sock = qemud.path('/run/libvirt/virtqemud-sock');
    const list = await run(binPath('vsh'), ['-c', `qemu:///system?socket=${sock}`, 'secret-list']);
    t.equal(list.stderr, 'error: Failed to list secrets\nerror: this function is not supported by the connection driver: virConnectListAllSecrets\n',
      'a daemon without the secret driver: libvirt\'s "not supported", not a gRPC message');
    const secretd = qemud.companion('virtsecretd');
    t.teardown(() => secretd.kill());
    await secretd.ready('/run/libvirt/virtsecretd-sock');
    // VIR_CONNECT_RO on the full socket: that connection may read but not write.
    const ro = await VirtConnection.open(`secret:///system?socket=${qemud.path('/run/libvirt/virtsecretd-sock')}`, { readonly: true });
    t.same(await ro.secretList(), []);
    await t.rejects(ro.secretDefine('<secret/>'), /operation forbidden: read only access prevents virSecretDefineXML/);
    await ro.close();
    const rw = await VirtConnection.open(`secret:///system?socket=${qemud.path('/run/libvirt/virtsecretd-sock')}`);
    const s = await rw.secretDefine("<secret><usage type='ceph'><name>bin</name></usage></secret>");
    const bytes = Buffer.from([0, 1, 2, 0x80, 0xfe, 0xff, 10]);
    await rw.secretSetValue(s.uuid, bytes);
    await rw.close();
    const plain = await new Promise<Buffer>((resolve) => {
      const p = spawn(binPath('vsh'), ['-q', '-c', `secret:///system?socket=${qemud.path('/run/libvirt/virtsecretd-sock')}`, 'secret-get-value', s.uuid, '--plain']);
      const chunks: Buffer[] = [];
      p.stdout.on('data', (d: Buffer) => chunks.push(d));
      p.on('close', () => resolve(Buffer.concat(chunks)));
    });
    t.same(plain, bytes, '--plain prints the value\'s bytes unchanged');
    const help = await run(binPath('vsh'), ['help', 'secret']);
    t.match(help.stdout, 'secret-define', 'help takes a group keyword');
    await secretd.stop();
    await qemud.stop();
  });

  t.test('session mode: system-only drivers are not offered, qemu and network are', async (t) => {
    const user = ensureUser('virttest');
    const xdg = runtimeDirFor(user);
    const env = userEnv(user, xdg);
    const h = startDaemon({ name: 'libvirtd', mode: 'session', user, env });
    t.teardown(() => h.kill());
    await h.socketReady(`${xdg}/libvirt/libvirt-sock`);
    const vsh = (uri: string): ReturnType<typeof run> => run(binPath('vsh'), ['-c', uri, 'uri'], { user, env });
    t.equal((await vsh('qemu:///session')).stdout, 'qemu:///session\n\n');
    t.equal((await vsh('secret:///session')).stdout, 'secret:///session\n\n');
    t.equal((await vsh('network:///session')).stdout, 'network:///session\n\n', 'network has a session instance, as in libvirt 9.0');
    t.match((await vsh('nwfilter:///session')).stderr, "internal error: unexpected nwfilter URI path '/session', try nwfilter:///system",
      'nwfilter has none');
    const given = `secret:///session?socket=${xdg}/libvirt/libvirt-sock`;
    t.equal((await vsh(given)).stdout, `${given}\n\n`, 'a URI given is printed as given, as virsh does (session.test pins virsh)');
    const noUri = await run(binPath('vsh'), ['uri'], { user, env });
    t.equal(noUri.stdout, 'qemu:///session\n\n', 'no URI: the running daemon picks its default hypervisor');
    await h.stop();
  });
}
