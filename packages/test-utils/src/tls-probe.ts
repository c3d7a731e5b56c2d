// Single, hand-made connections to a TLS port, for tests that count what
// the daemon logs per connection (grpc-js may reconnect on its own, so it
// cannot be used for counting), and certificates makePki does not make.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { execFileSync } from 'node:child_process';
import type { KeyPair, Pki } from './pki.js';

/** What a client saw on one connection. */
export interface Attempt {
  /** The TLS handshake completed on the client's side. */
  readonly secure: boolean;
  readonly protocol?: string;
  /** The daemon answered the HTTP/2 preface: the client was served. */
  readonly served: boolean;
  /** The client's error, if any (its own refusal, or the daemon's alert). */
  readonly error?: string;
  /** The daemon kept the connection open until we gave up. */
  readonly hung: boolean;
}

/** The HTTP/2 client preface and an empty SETTINGS frame: what gRPC sends first. */
const H2_PREFACE = Buffer.concat([
  Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
  Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]),
]);

const GIVE_UP_MS = 15_000;

function watch(sock: net.Socket, onSecure?: () => void): Promise<Attempt> {
  return new Promise((resolve) => {
    let secure = false;
    let served = false;
    let error: string | undefined;
    let hung = false;
    let protocol: string | undefined;
    const giveUp = setTimeout(() => { hung = true; sock.destroy(); }, GIVE_UP_MS);
    sock.on('secureConnect', () => {
      secure = true;
      protocol = (sock as tls.TLSSocket).getProtocol() ?? undefined;
      onSecure?.();
    });
    sock.on('data', (d: Buffer) => {
      // A TLS alert record (0x15) on a plain socket is a refusal, not service.
      if (sock instanceof tls.TLSSocket || d[0] !== 0x15) served = true;
      sock.destroy();
    });
    sock.on('error', (e) => { error ??= e.message.split('\n')[0]; });
    sock.on('close', () => {
      clearTimeout(giveUp);
      resolve({ secure, served, hung, ...(error !== undefined ? { error } : {}), ...(protocol ? { protocol } : {}) });
    });
  });
}

/**
 * One TLS connection to 127.0.0.1:port (server name localhost, our CA
 * trusted unless opts say otherwise); once secure it sends the HTTP/2
 * preface and waits for the daemon to answer or hang up.
 */
export function tlsAttempt(port: number, opts: tls.ConnectionOptions = {}): Promise<Attempt> {
  const sock = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ALPNProtocols: ['h2'], ...opts });
  return watch(sock, () => sock.write(H2_PREFACE));
}

/** One plain TCP connection that writes the chunks, one write each. */
export function plainAttempt(port: number, chunks: readonly Buffer[]): Promise<Attempt> {
  const sock = net.connect(port, '127.0.0.1');
  sock.on('connect', () => { for (const c of chunks) if (!sock.destroyed) sock.write(c); });
  return watch(sock);
}

/** A client's key and certificate as tls.connect wants them. */
export const tlsKeyPair = (k: KeyPair): { key: Buffer; cert: Buffer } =>
  ({ key: fs.readFileSync(k.key), cert: fs.readFileSync(k.cert) });

/**
 * A server certificate from the test CA for other names than makePki's
 * localhost/127.0.0.1 (a daemon presenting the wrong host name).
 */
export function issueServerCert(pki: Pki, name: string, altNames: readonly string[]): KeyPair {
  const dir = pki.dir;
  const ext = path.join(dir, `${name}.ext`);
  fs.writeFileSync(ext, [
    'basicConstraints = CA:FALSE', 'keyUsage = digitalSignature, keyEncipherment', 'extendedKeyUsage = serverAuth',
    `subjectAltName = ${altNames.join(', ')}`, '',
  ].join('\n'));
  const openssl = (args: string[]): void => { execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] }); };
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/O=virtd test/CN=${name}`]);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', pki.ca.cert, '-CAkey', pki.ca.key, '-CAcreateserial',
    '-days', '2', '-sha256', '-extfile', ext, '-out', `${name}.pem`]);
  return { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
}

/** A pkipath directory (cacert.pem, clientcert.pem, clientkey.pem) for TLS URIs. */
export function pkiPath(pki: Pki, client: KeyPair, dir = path.join(pki.dir, 'pkipath')): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(pki.ca.cert, path.join(dir, 'cacert.pem'));
  fs.copyFileSync(client.cert, path.join(dir, 'clientcert.pem'));
  fs.copyFileSync(client.key, path.join(dir, 'clientkey.pem'));
  return dir;
}
