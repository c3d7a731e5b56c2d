// TLS for the TLS listener: a tls.Server receives each raw connection
// (never a bare TLSSocket, which does not enforce client verification) and
// hands back the secure socket, whose certificate we check (trusted, then
// its DN against tls_allowed_dn_list). The files are re-read by the admin
// UpdateTlsFiles call. Every refusal is reported once, on one line, with
// the reason (test/src/tls-negative.test.ts).
import fs from 'node:fs';
import tls from 'node:tls';
import crypto from 'node:crypto';
import type net from 'node:net';
import { VirtError, checkSignedByCa } from '@virtd/errors';

export interface TlsSettings {
  readonly keyFile: string;
  readonly certFile: string;
  readonly caFile: string;
  /** Used when the file exists, as libvirt does. */
  readonly crlFile: string;
  /** tls_no_verify_certificate: accept clients without a valid certificate. */
  readonly noVerify: boolean;
  /** tls_no_sanity_certificate: skip checking our own certificate at load. */
  readonly noSanity: boolean;
  /** tls_allowed_dn_list: fnmatch-style patterns; undefined allows any. */
  readonly allowedDNs?: readonly string[];
  /** A TLS handshake not done by then is dropped. */
  readonly handshakeTimeoutMs?: number;
}

function read(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new VirtError('SYSTEM_ERROR', 'RPC', undefined, {
      message: `Unable to read TLS ${what} file '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    });
  }
}

function secureOptions(s: TlsSettings): tls.SecureContextOptions {
  const key = read(s.keyFile, 'key');
  const cert = read(s.certFile, 'certificate');
  const ca = read(s.caFile, 'CA certificate');
  const crl = fs.existsSync(s.crlFile) ? read(s.crlFile, 'CRL') : undefined;
  if (!s.noSanity) sanityCheck(s, key, cert, ca);
  return { key, cert, ca, ...(crl ? { crl } : {}) };
}

/** Our own certificate must be current, match its key and chain to the CA. */
function sanityCheck(s: TlsSettings, key: Buffer, certPem: Buffer, caPem: Buffer): void {
  let cert: crypto.X509Certificate;
  try {
    cert = new crypto.X509Certificate(certPem);
    new crypto.X509Certificate(caPem); // an unreadable CA file is named here, before the chain check
  } catch (e) {
    throw new VirtError('SYSTEM_ERROR', 'RPC', undefined, { message: `Unable to parse certificate: ${(e as Error).message}` });
  }
  const fail = (why: string): never => {
    throw new VirtError('SYSTEM_ERROR', 'RPC', undefined, { message: `The server certificate ${s.certFile} ${why}` });
  };
  const now = Date.now();
  if (Date.parse(cert.validFrom) > now) fail('is not yet active');
  if (Date.parse(cert.validTo) < now) fail('has expired');
  if (!cert.checkPrivateKey(crypto.createPrivateKey(key))) fail(`does not match the key ${s.keyFile}`);
  checkSignedByCa(cert, caPem, { cert: s.certFile, ca: s.caFile });
}

/** A DN the way libvirt's documentation writes them: "C=GB,O=Example,CN=client". */
export function dnString(subject: string): string {
  return subject.split('\n').filter(Boolean).map((part) => {
    const eq = part.indexOf('=');
    const value = part.slice(eq + 1).replace(/([,+"\\<>;])/g, '\\$1');
    return `${part.slice(0, eq)}=${value}`;
  }).join(',');
}

function fnmatch(pattern: string, text: string): boolean {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) { re += '\\['; continue; }
      let cls = pattern.slice(i + 1, end).replace(/\\/g, '\\\\');
      if (cls.startsWith('!')) cls = '^' + cls.slice(1);
      re += `[${cls}]`;
      i = end;
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(re + '$').test(text);
}

/**
 * Whether a DN is allowed. Certificates list DN parts most-general first;
 * some tools print them the other way round (RFC 4514), so a pattern may be
 * written in either order.
 */
export function dnAllowed(dn: string, patterns: readonly string[] | undefined): boolean {
  if (!patterns) return true;
  const reversed = dn.split(/(?<!\\),/).reverse().join(',');
  return patterns.some((p) => fnmatch(p, dn) || fnmatch(p, reversed));
}

/** OpenSSL's verification codes, in libvirt's words for a client certificate. */
const VERIFY_REASONS: Record<string, string> = {
  CERT_HAS_EXPIRED: 'the client certificate has expired',
  CERT_NOT_YET_VALID: 'the client certificate is not yet active',
  CERT_REVOKED: 'the client certificate has been revoked',
  UNABLE_TO_GET_ISSUER_CERT: "the client certificate hasn't got a known issuer",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "the client certificate hasn't got a known issuer",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "the client certificate hasn't got a known issuer",
  DEPTH_ZERO_SELF_SIGNED_CERT: "the client certificate hasn't got a known issuer",
  SELF_SIGNED_CERT_IN_CHAIN: "the client certificate hasn't got a known issuer",
};

/** Why a verified client is refused (untrusted, or a DN not allowed), or undefined. */
function refusal(secure: tls.TLSSocket, dn: string | undefined, allowedDNs: readonly string[] | undefined): string | undefined {
  if (dn === undefined) return 'TLS handshake failed: no client certificate was presented';
  if (!secure.authorized) {
    const code = String(secure.authorizationError ?? 'UNKNOWN');
    return `TLS handshake failed: ${VERIFY_REASONS[code] ?? 'the client certificate is not trusted'} (${code}) (DN '${dn}')`;
  }
  if (!dnAllowed(dn, allowedDNs)) return `client certificate DN '${dn}' is not in tls_allowed_dn_list`;
  return undefined;
}

/**
 * A handshake error as one short line: OpenSSL's messages carry a queue
 * prefix, a source location and a trailing newline, which would split the
 * log line; its reason string says it all.
 */
function handshakeError(err: Error & { code?: string; reason?: string }): string {
  if (err.code === 'ECONNRESET') return 'the client closed the connection during the handshake';
  if (err.code === 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA' || err.code === 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE') {
    return `the client refused our certificate (${err.reason ?? err.code})`;
  }
  const text = err.reason ?? err.message.split('\n')[0]!.trim();
  return err.code ? `${text} (${err.code})` : text;
}

export interface TlsOutcome {
  onSecure(secure: tls.TLSSocket, dn: string | undefined): void;
  onReject(reason: string): void;
}

export class TlsEndpoint {
  private readonly settings: TlsSettings;
  private readonly server: tls.Server;
  /** Outcome callbacks per raw socket while its handshake runs. */
  private readonly pending = new WeakMap<net.Socket, TlsOutcome>();

  constructor(settings: TlsSettings) {
    this.settings = settings;
    this.server = tls.createServer({
      ...secureOptions(settings),
      requestCert: true,
      // Node's own rejection drops an untrusted client silently (no error,
      // no event): the log would only say the peer hung up. We check
      // secure.authorized ourselves instead and say why.
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      // gRPC runs over HTTP/2, which TLS clients negotiate with ALPN.
      ALPNProtocols: ['h2'],
      handshakeTimeout: settings.handshakeTimeoutMs ?? 30_000,
    });
    this.server.on('secureConnection', (secure) => {
      const raw = (secure as unknown as { _parent: net.Socket })._parent;
      const outcome = this.pending.get(raw);
      if (!outcome) { secure.destroy(); return; }
      this.pending.delete(raw);
      const peer = secure.getPeerX509Certificate();
      const dn = peer ? dnString(peer.subject) : undefined;
      const reason = settings.noVerify ? undefined : refusal(secure, dn, settings.allowedDNs);
      if (reason) {
        outcome.onReject(reason);
        secure.destroy();
        return;
      }
      outcome.onSecure(secure, dn);
    });
    this.server.on('tlsClientError', (err, secure) => {
      const raw = (secure as unknown as { _parent?: net.Socket })._parent;
      const outcome = raw && this.pending.get(raw);
      if (raw) this.pending.delete(raw);
      if (outcome) outcome.onReject(`TLS handshake failed: ${handshakeError(err)}`);
      secure.destroy();
    });
  }

  /** Starts the handshake on a raw connection. */
  handshake(raw: net.Socket, outcome: TlsOutcome): void {
    this.pending.set(raw, outcome);
    // The TLS socket takes over the raw socket's handle and starts reading
    // itself; resuming the raw socket first could drop a ClientHello.
    this.server.emit('connection', raw);
  }

  /** Re-reads key, certificate, CA and CRL (admin srv-update-tls). */
  reload(): void {
    this.server.setSecureContext(secureOptions(this.settings));
  }
}
