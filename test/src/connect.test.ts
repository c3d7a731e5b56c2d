// Connections: URIs bound to drivers with libvirt's errors, and the host
// reported truthfully (nodeinfo and capabilities from /proc and /sys, the
// QEMU emulators actually installed, absent hypervisors saying so).
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
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
      t.equal((await vsh(`${s}:///system`, 'uri')).stdout, `${s}:///system\n\n`, `${s}:///system opens`);
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

  t.test('session mode: system-only drivers are not offered, qemu is', async (t) => {
    const user = ensureUser('virttest');
    const xdg = runtimeDirFor(user);
    const env = userEnv(user, xdg);
    const h = startDaemon({ name: 'libvirtd', mode: 'session', user, env });
    t.teardown(() => h.kill());
    await h.socketReady(`${xdg}/libvirt/libvirt-sock`);
    const vsh = (uri: string): ReturnType<typeof run> => run(binPath('vsh'), ['-c', uri, 'uri'], { user, env });
    t.equal((await vsh('qemu:///session')).stdout, 'qemu:///session\n\n');
    t.equal((await vsh('secret:///session')).stdout, 'secret:///session\n\n');
    t.match((await vsh('network:///session')).stderr, 'internal error: network state driver is not active',
      'the network driver has no session instance');
    await h.stop();
  });
}
