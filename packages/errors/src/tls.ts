// A certificate of our own (the daemon's server certificate, or a client's)
// must chain to a CA in its CA file, as libvirt checks before it listens or
// connects; and the words libvirt uses when it does not.
import crypto from 'node:crypto';
import { VirtError } from './virt-error.js';

/** GnuTLS's reasons, as libvirt prints them. */
export const CERT_REASON = {
  UNKNOWN_ISSUER: 'The certificate hasn\'t got a known issuer.',
  NOT_TRUSTED: 'The certificate is not trusted.',
  REVOKED: 'The certificate has been revoked.',
} as const;

export function ownCertificateError(certFile: string, caFile: string, reason: string): VirtError {
  return new VirtError('SYSTEM_ERROR', 'RPC', undefined, {
    message: `Our own certificate ${certFile} failed validation against ${caFile}: ${reason}`,
  });
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/**
 * Throws libvirt's error unless `cert` is signed by one of the CAs in
 * `caPem` (a bundle may hold several). Throws the parser's error when
 * either file holds no certificate it can read.
 */
export function checkSignedByCa(cert: crypto.X509Certificate, caPem: Buffer, files: { cert: string; ca: string }): void {
  const cas = (caPem.toString('latin1').match(PEM_CERT) ?? []).map((b) => new crypto.X509Certificate(b));
  if (!cas.length) new crypto.X509Certificate(caPem); // no PEM block: let the parser say what is wrong
  if (!cas.some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey))) {
    throw ownCertificateError(files.cert, files.ca, CERT_REASON.UNKNOWN_ISSUER);
  }
}
