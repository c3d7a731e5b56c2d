// Hostile and mistaken clients on a real TLS listener (libvirtd --listen,
// certificates from openssl): plain TCP bytes, a plaintext HTTP/2 preface,
// TLS 1.0 and 1.1, no client certificate, a certificate from another CA,
// expired or revoked ones, a DN outside tls_allowed_dn_list, a client that
// hangs up mid-handshake. Each is one hand-made connection, refused, and
// logged by the daemon on exactly one line that says why; a good client is
// served after each. max_anonymous_clients is tiny, so a refused
// connection that kept its slot would lock good clients out.
// A daemon presenting a certificate for another host name is refused by
// the client: a raw TLS client and our client library alike.
import t from 'tap';
import fs from 'node:fs';
import net from 'node:net';
import { HealthService } from '@virtd/protocol/health';
import { Connection, AdminClient, resolveUri } from '@virtd/client';
import { isVirtError } from '@virtd/errors';
import {
  startDaemon, isRoot, tempDir, freePort, makePki, tlsTarget, tcpTarget, waitFor, run, binPath,
  tlsAttempt, plainAttempt, tlsKeyPair, issueServerCert, pkiPath, type Attempt, type DaemonHandle,
} from '@virtd/test-utils';

const REFUSAL = 'TLS client refused: ';
const VIRSH = '/usr/bin/virsh';

/**
 * Client stderr without what only libvirt prints or cannot be equal: its
 * "info :" lines (version, host name), the time stamp and pid, and the
 * source function:line of its log lines.
 */
const comparable = (stderr: string): string[] => stderr.split('\n').filter((l) => l && !/: info : /.test(l))
  .map((l) => l.replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\+0000: \d+: (\w+) : (\w+:\d+ : )?/, '$1 : '));

/** The daemon's log lines written since `mark` (an offset into its stderr). */
const linesSince = (h: DaemonHandle, mark: number): string[] => h.stderr.slice(mark).split('\n').filter(Boolean);

if (!isRoot()) {
  t.pass('skipped: needs root');
} else {
  const pki = makePki(tempDir('virtd-pki-'));
  const ca = fs.readFileSync(pki.ca.cert);
  const tlsConfig = (port: number, server: { key: string; cert: string }, extra: string[] = []): string => [
    'listen_tls = 1', 'listen_tcp = 0', `tls_port = "${port}"`, 'listen_addr = "127.0.0.1"',
    `key_file = "${server.key}"`, `cert_file = "${server.cert}"`, `ca_file = "${pki.ca.cert}"`, ...extra,
  ].join('\n');

  t.test('bad clients are refused, each logged once with its reason; good clients stay served', async (t) => {
    const port = await freePort();
    const h = startDaemon({
      name: 'libvirtd', mode: 'system', args: ['--listen'],
      config: tlsConfig(port, pki.server, [
        `crl_file = "${pki.crl}"`, 'tls_allowed_dn_list = ["C=GB,O=virtd test,CN=*"]',
        'max_anonymous_clients = 2', 'max_clients = 8',
      ]),
    });
    t.teardown(() => h.kill());
    await h.ready('/run/libvirt/libvirt-admin-sock');
    const admin = AdminClient.open(`libvirtd:///system?socket=${h.path('/run/libvirt/libvirt-admin-sock')}`, {}, 0);
    t.teardown(() => admin.close());

    const good = async (): Promise<unknown> => {
      const c = new Connection(tlsTarget('127.0.0.1', port, pki.ca.cert, pki.client));
      try {
        return await c.unary(HealthService, 'Check', {}, { deadlineMs: 10_000 });
      } finally {
        c.close();
      }
    };
    t.same(await good(), { status: 1 }, 'a good client is served');
    t.same(await tlsAttempt(port, { ca, ...tlsKeyPair(pki.client) }),
      { secure: true, protocol: 'TLSv1.3', served: true, hung: false }, 'the hand-made good client is served too');

    /** Connects, sends nothing, closes: a port scanner, say. */
    const hangUp = (): Promise<Attempt> => new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.end());
      s.on('error', () => undefined);
      s.on('close', () => resolve({ secure: false, served: false, hung: false }));
    });
    const old = (v: 'TLSv1' | 'TLSv1.1') => (): Promise<Attempt> =>
      // OpenSSL 3 will not even offer 1.0/1.1 at its default security level.
      tlsAttempt(port, { ca, ...tlsKeyPair(pki.client), minVersion: v, maxVersion: v, ciphers: 'DEFAULT@SECLEVEL=0' });
    const cases: { name: string; attempt: () => Promise<Attempt>; log: RegExp }[] = [
      {
        name: 'plain TCP bytes (64 KiB, then byte by byte)',
        attempt: () => plainAttempt(port, [
          ...Array.from({ length: 16 }, () => Buffer.alloc(4096, 'x')),
          ...Array.from({ length: 256 }, (_, i) => Buffer.from([i])),
        ]),
        log: /TLS handshake failed: wrong version number/,
      },
      {
        name: 'a plaintext HTTP/2 preface and SETTINGS (gRPC without TLS)',
        attempt: () => plainAttempt(port, [Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]),
        log: /TLS handshake failed: wrong version number/,
      },
      { name: 'a client offering only TLS 1.0', attempt: old('TLSv1'), log: /TLS handshake failed: unsupported protocol/ },
      { name: 'a client offering only TLS 1.1', attempt: old('TLSv1.1'), log: /TLS handshake failed: unsupported protocol/ },
      {
        name: 'no client certificate (TLS 1.3)', attempt: () => tlsAttempt(port, { ca }),
        log: /TLS handshake failed: no client certificate was presented/,
      },
      {
        name: 'no client certificate (TLS 1.2)', attempt: () => tlsAttempt(port, { ca, maxVersion: 'TLSv1.2' }),
        log: /TLS handshake failed: no client certificate was presented/,
      },
      {
        name: 'a certificate signed by another CA', attempt: () => tlsAttempt(port, { ca, ...tlsKeyPair(pki.rogue) }),
        log: /TLS handshake failed: the client certificate hasn't got a known issuer \(\w+\) \(DN 'C=GB,O=virtd test,CN=client1'\)/,
      },
      {
        name: 'an expired certificate', attempt: () => tlsAttempt(port, { ca, ...tlsKeyPair(pki.expired) }),
        log: /TLS handshake failed: the client certificate has expired \(CERT_HAS_EXPIRED\)/,
      },
      {
        name: 'a revoked certificate (CRL)', attempt: () => tlsAttempt(port, { ca, ...tlsKeyPair(pki.revoked) }),
        log: /TLS handshake failed: the client certificate has been revoked \(CERT_REVOKED\)/,
      },
      {
        name: 'a DN outside tls_allowed_dn_list', attempt: () => tlsAttempt(port, { ca, ...tlsKeyPair(pki.outsider) }),
        log: /client certificate DN 'C=GB,O=intruder,CN=client2' is not in tls_allowed_dn_list/,
      },
      {
        name: 'a DN outside tls_allowed_dn_list (TLS 1.2)', attempt: () => tlsAttempt(port, { ca, ...tlsKeyPair(pki.outsider), maxVersion: 'TLSv1.2' }),
        log: /client certificate DN 'C=GB,O=intruder,CN=client2' is not in tls_allowed_dn_list/,
      },
      { name: 'a client that connects and hangs up', attempt: hangUp, log: /TLS handshake failed: the client closed the connection during the handshake/ },
    ];

    // Each case twice: two dozen refusals against max_anonymous_clients = 2,
    // so a refused connection that kept its slot would soon lock good clients out.
    for (const round of [1, 2]) {
      for (const c of cases) {
        const mark = h.stderr.length;
        const r = await c.attempt();
        t.notOk(r.served, `${c.name} (round ${round}): not served`);
        t.notOk(r.hung, `${c.name}: the daemon closed the connection`);
        if (round === 1 && r.error) t.comment(`${c.name}: the client saw "${r.error}"`);
        await waitFor(() => linesSince(h, mark).length > 0, 10_000, `the daemon's log line for ${c.name}`);
        // A good call in between: served, and a barrier for any late duplicate line.
        t.same(await good(), { status: 1 }, `${c.name}: a good client is served afterwards`);
        const lines = linesSince(h, mark);
        t.equal(lines.length, 1, `${c.name}: logged on exactly one line`);
        t.match(lines[0], REFUSAL, `${c.name}: as a refused TLS client`);
        t.match(lines[0], c.log, `${c.name}: with its reason`);
        t.match(lines[0], /peer=127\.0\.0\.1;\d+/, `${c.name}: naming the peer`);
      }
    }

    // A plaintext gRPC client through the library: refused (not counted:
    // grpc-js may try more than one connection).
    const plain = new Connection(tcpTarget('127.0.0.1', port));
    await t.rejects(plain.unary(HealthService, 'Check', {}, { deadlineMs: 10_000 }), 'a plaintext gRPC client is refused');
    plain.close();

    // No refused connection kept a slot.
    await waitFor(async () => (await admin.clientLimits('libvirtd')).nclients === 0, 10_000, 'every connection released');
    const limits = await admin.clientLimits('libvirtd');
    t.same({ nclients: limits.nclients, nclientsUnauth: limits.nclientsUnauth }, { nclients: 0, nclientsUnauth: 0 },
      'no connection left counted, anonymous or not');
    t.same(await good(), { status: 1 }, 'still serving');
    t.equal(h.proc.exitCode, null, 'the daemon is still running');
    t.same(await h.stop(), { code: 0, signal: null });
  });

  t.test('a server certificate for another host name is refused by the client', async (t) => {
    const port = await freePort();
    const elsewhere = issueServerCert(pki, 'elsewhere', ['DNS:elsewhere.example']);
    const h = startDaemon({ name: 'virtproxyd', mode: 'system', config: tlsConfig(port, elsewhere) });
    t.teardown(() => h.kill());
    await h.ready('/run/libvirt/libvirt-admin-sock');

    const mark = h.stderr.length;
    const raw = await tlsAttempt(port, { ca, ...tlsKeyPair(pki.client) });
    t.notOk(raw.served, 'a raw TLS client expecting localhost is not served');
    t.match(raw.error, /Hostname\/IP does not match certificate's altnames/, 'it refuses the certificate itself');

    // Our client library, the way vsh connects (secret+tls://host:port/system?pkipath=…).
    const dir = pkiPath(pki, pki.client);
    const resolved = (uri: string) => resolveUri(uri, { readonly: false, env: {}, euid: 0 });
    const lib = new Connection(resolved(`secret+tls://localhost:${port}/system?pkipath=${dir}`).target);
    const err = await lib.unary(HealthService, 'Check', {}, { deadlineMs: 10_000 }).then(() => undefined, (e: Error) => e);
    lib.close();
    t.ok(err, 'the client library refuses a server certificate for another name');
    t.equal(err?.message, 'authentication failed: Failed to verify peer\'s certificate', 'with libvirt\'s error');
    t.same(isVirtError(err) && [err.code, err.domain, err.warnings], ['AUTH_FAILED', 'RPC',
      ['Certificate check failed Certificate [session] owner does not match the hostname localhost']], 'and the reason libvirt logs');

    // vsh and libvirt's own virsh, side by side on the same URI: the TLS
    // check comes before any RPC, so virsh gets as far as ours does.
    if (fs.existsSync(VIRSH)) {
      const uri = `secret+tls://localhost:${port}/system?pkipath=${dir}`;
      const [ours, real] = await Promise.all([run(binPath('vsh'), ['-c', uri, 'uri']), run(VIRSH, ['-c', uri, 'uri'])]);
      t.equal(ours.code, real.code, 'vsh: the exit status of virsh');
      t.same(comparable(ours.stderr), comparable(real.stderr), `vsh: virsh's warning and errors\n${real.stderr}`);
    }

    // no_verify=1 is libvirt's explicit opt-out of checking the server.
    const lax = new Connection(resolved(`secret+tls://localhost:${port}/system?pkipath=${dir}&no_verify=1`).target);
    t.same(await lax.unary(HealthService, 'Check', {}, { deadlineMs: 10_000 }), { status: 1 }, 'no_verify=1 accepts it, as libvirt does');
    lax.close();

    const refusals = linesSince(h, mark).filter((l) => l.includes(REFUSAL));
    t.ok(refusals.every((l) => /the client closed the connection during the handshake|the client refused our certificate/.test(l)),
      `the daemon's side, if logged, blames the client's hang-up:\n${refusals.join('\n')}`);
    t.same(await h.stop(), { code: 0, signal: null });
  });

  t.test('the client library verifies the server it asked for', async (t) => {
    const port = await freePort();
    const h = startDaemon({ name: 'virtproxyd', mode: 'system', config: tlsConfig(port, pki.server) });
    t.teardown(() => h.kill());
    await h.ready('/run/libvirt/libvirt-admin-sock');
    const dir = pkiPath(pki, pki.client, `${pki.dir}/pkipath-good`);
    const lib = new Connection(resolveUri(`secret+tls://localhost:${port}/system?pkipath=${dir}`, { readonly: false, env: {}, euid: 0 }).target);
    t.same(await lib.unary(HealthService, 'Check', {}, { deadlineMs: 10_000 }), { status: 1 }, 'the right name and CA: served');
    lib.close();
    // A client whose CA file is another one (makePki's second CA), its own
    // certificate signed by that CA: the server's does not chain to it.
    const rogueDir = `${pki.dir}/pkipath-rogue-ca`;
    pkiPath(pki, pki.rogue, rogueDir);
    fs.copyFileSync(`${pki.dir}/rogue-ca.pem`, `${rogueDir}/cacert.pem`);
    const mark = h.stderr.length;
    const wrongCa = new Connection(resolveUri(`secret+tls://localhost:${port}/system?pkipath=${rogueDir}`, { readonly: false, env: {}, euid: 0 }).target);
    const caErr = await wrongCa.unary(HealthService, 'Check', {}, { deadlineMs: 10_000 }).then(() => undefined, (e: Error) => e);
    wrongCa.close();
    t.same(isVirtError(caErr) && [caErr.message, caErr.warnings], ['authentication failed: Failed to verify peer\'s certificate',
      ['Certificate check failed Certificate failed validation: The certificate hasn\'t got a known issuer.']],
    'a server not signed by our CA is refused, in libvirt\'s words');
    // Our own certificate not signed by our CA file: refused before connecting, as libvirt does.
    const mixedDir = `${pki.dir}/pkipath-mixed`;
    pkiPath(pki, pki.client, mixedDir);
    fs.copyFileSync(`${pki.dir}/rogue-ca.pem`, `${mixedDir}/cacert.pem`);
    t.throws(() => resolveUri(`secret+tls://localhost:${port}/system?pkipath=${mixedDir}`, { readonly: false, env: {}, euid: 0 }),
      { message: `Our own certificate ${mixedDir}/clientcert.pem failed validation against ${mixedDir}/cacert.pem: The certificate hasn't got a known issuer.` },
      'our own certificate is checked against our CA first');
    if (fs.existsSync(VIRSH)) {
      for (const d of [rogueDir, mixedDir]) {
        const uri = `secret+tls://localhost:${port}/system?pkipath=${d}`;
        const [ours, real] = await Promise.all([run(binPath('vsh'), ['-c', uri, 'uri']), run(VIRSH, ['-c', uri, 'uri'])]);
        t.same(comparable(ours.stderr), comparable(real.stderr), `vsh: virsh's warning and errors (${d})\n${real.stderr}`);
      }
    }
    await waitFor(() => linesSince(h, mark).length > 0, 10_000, 'the daemon logs the alert');
    t.match(linesSince(h, mark)[0], /the client refused our certificate|the client closed the connection during the handshake/,
      'the daemon logs that the client gave up on it');
    t.same(await h.stop(), { code: 0, signal: null });
  });
}
