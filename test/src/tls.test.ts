// TLS with real certificates made by openssl: a good client is served;
// a wrong CA, an expired or revoked certificate, a DN outside the allowed
// list, no certificate, plain TCP bytes and an old protocol are refused,
// each logged, none of them crashing the daemon. Certificates are re-read
// by srv-update-tls.
import t from 'tap';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { HealthService } from '@virtd/protocol/health';
import { Connection, AdminClient } from '@virtd/client';
import { startDaemon, isRoot, tempDir, freePort, makePki, tlsTarget, type KeyPair } from '@virtd/test-utils';

if (!isRoot()) {
  t.pass('skipped: needs root');
} else {
  const pki = makePki(tempDir('virtd-pki-'));

  t.test('libvirtd --listen with listen_tls on loopback', async (t) => {
    const port = await freePort();
    const h = startDaemon({
      name: 'libvirtd', mode: 'system', args: ['--listen'],
      config: [
        'listen_tls = 1', 'listen_tcp = 0', `tls_port = "${port}"`, 'listen_addr = "127.0.0.1"',
        `key_file = "${pki.server.key}"`, `cert_file = "${pki.server.cert}"`, `ca_file = "${pki.ca.cert}"`,
        `crl_file = "${pki.crl}"`, 'tls_allowed_dn_list = ["C=GB,O=virtd test,CN=*"]',
      ].join('\n'),
    });
    t.teardown(() => h.kill());
    await h.ready('/run/libvirt/libvirt-admin-sock');
    const admin = AdminClient.open(`libvirtd:///system?socket=${h.path('/run/libvirt/libvirt-admin-sock')}`, {}, 0);
    t.teardown(() => admin.close());

    const call = async (client?: KeyPair, ca = pki.ca.cert): Promise<unknown> => {
      const c = new Connection(tlsTarget('127.0.0.1', port, ca, client));
      try {
        return await c.unary(HealthService, 'Check', {}, { deadlineMs: 5000 });
      } finally {
        c.close();
      }
    };

    t.same(await call(pki.client), { status: 1 }, 'a good client is served');
    const good = new Connection(tlsTarget('127.0.0.1', port, pki.ca.cert, pki.client));
    t.teardown(() => good.close());
    await good.unary(HealthService, 'Check', {});
    const [listed] = await admin.listClients('libvirtd');
    t.equal(listed?.transport, 'tls');
    const info = await admin.clientInfo('libvirtd', listed!.id);
    t.same(info.params.find((p) => p.field === 'tls_x509_dname')?.value, 'C=GB,O=virtd test,CN=client1', 'DN recorded');
    t.match(String(info.params.find((p) => p.field === 'sock_addr')?.value), /^127\.0\.0\.1;\d+$/, 'sock_addr as libvirt writes it');

    await t.rejects(call(pki.rogue), 'a certificate from another CA is refused');
    await t.rejects(call(pki.expired), 'an expired certificate is refused');
    await t.rejects(call(pki.revoked), 'a revoked certificate (CRL) is refused');
    await t.rejects(call(pki.outsider), 'a DN outside tls_allowed_dn_list is refused');
    await t.rejects(call(undefined), 'no client certificate is refused');
    t.match(h.stderr, "is not in tls_allowed_dn_list", 'the DN refusal is logged');
    t.match(h.stderr, 'TLS handshake failed', 'handshake failures are logged');

    // Plain bytes on the TLS port, and an old protocol version.
    const plain = net.connect(port, '127.0.0.1');
    plain.on('error', () => {});
    plain.resume();
    plain.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    await new Promise((r) => plain.on('close', r));
    t.pass('plain TCP on the TLS port is dropped');
    const old = tls.connect({ port, host: '127.0.0.1', maxVersion: 'TLSv1.1', minVersion: 'TLSv1', ca: fs.readFileSync(pki.ca.cert), rejectUnauthorized: false });
    const oldResult = await new Promise<string>((resolve) => {
      old.on('secureConnect', () => resolve('connected'));
      old.on('error', (e) => resolve(e.message));
    });
    old.destroy();
    t.not(oldResult, 'connected', `TLS 1.1 refused (${oldResult})`);

    t.same(await good.unary(HealthService, 'Check', {}), { status: 1 }, 'the good client is unaffected');
    await admin.updateTlsFiles('libvirtd');
    t.same(await call(pki.client), { status: 1 }, 'srv-update-tls reloads and still serves');
    t.same(await h.stop(), { code: 0, signal: null });
  });

  t.test('a broken TLS set-up stops start-up with the file named', async (t) => {
    const port = await freePort();
    const h = startDaemon({
      name: 'virtproxyd', mode: 'system',
      config: ['listen_tls = 1', `tls_port = "${port}"`, 'listen_addr = "127.0.0.1"',
        `key_file = "${pki.client.key}"`, `cert_file = "${pki.server.cert}"`, `ca_file = "${pki.ca.cert}"`].join('\n'),
    });
    t.teardown(() => h.kill());
    const exit = await h.exited;
    t.equal(exit.code, 6, 'network stage');
    t.match(h.stderr, `does not match the key ${pki.client.key}`);
  });

  t.test('the server certificate must chain to a CA in ca_file, which may be a bundle', async (t) => {
    const dir = tempDir('virtd-cabundle-');
    const bundle = path.join(dir, 'bundle.pem');
    fs.writeFileSync(bundle, fs.readFileSync(`${pki.dir}/rogue-ca.pem`, 'utf8') + fs.readFileSync(pki.ca.cert, 'utf8'));
    const conf = (ca: string, port: number): string => ['listen_tls = 1', `tls_port = "${port}"`, 'listen_addr = "127.0.0.1"',
      `key_file = "${pki.server.key}"`, `cert_file = "${pki.server.cert}"`, `ca_file = "${ca}"`].join('\n');
    const ok = startDaemon({ name: 'virtproxyd', mode: 'system', config: conf(bundle, await freePort()) });
    t.teardown(() => ok.kill());
    await ok.ready('/run/libvirt/libvirt-admin-sock');
    t.pass('our CA second in a bundle: the daemon starts');
    t.same(await ok.stop(), { code: 0, signal: null });

    const bad = startDaemon({ name: 'virtproxyd', mode: 'system', config: conf(`${pki.dir}/rogue-ca.pem`, await freePort()) });
    t.teardown(() => bad.kill());
    t.equal((await bad.exited).code, 6, 'signed by no CA in ca_file: start-up stops');
    t.match(bad.stderr, `Our own certificate ${pki.server.cert} failed validation against ${pki.dir}/rogue-ca.pem: The certificate hasn't got a known issuer.`,
      'in libvirt\'s words');
  });

  t.test('virtproxyd honours listen_tcp without --listen; libvirtd needs --listen', async (t) => {
    const port = await freePort();
    const cfg = ['listen_tcp = 1', 'listen_tls = 0', `tcp_port = "${port}"`, 'listen_addr = "127.0.0.1"'].join('\n');
    const proxy = startDaemon({ name: 'virtproxyd', mode: 'system', config: cfg });
    t.teardown(() => proxy.kill());
    await proxy.ready('/run/libvirt/libvirt-sock');
    const ok = await new Promise<boolean>((r) => net.connect(port, '127.0.0.1').on('connect', function (this: net.Socket) { this.destroy(); r(true); }).on('error', () => r(false)));
    t.ok(ok, 'virtproxyd listens on TCP');
    await proxy.stop();
    const lv = startDaemon({ name: 'libvirtd', mode: 'system', config: cfg });
    t.teardown(() => lv.kill());
    await lv.ready('/run/libvirt/libvirt-sock');
    const no = await new Promise<boolean>((r) => net.connect(port, '127.0.0.1').on('connect', function (this: net.Socket) { this.destroy(); r(true); }).on('error', () => r(false)));
    t.notOk(no, 'libvirtd without --listen does not');
    await lv.stop();
  });
}
