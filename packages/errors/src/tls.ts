// libvirt's words for a certificate of our own (the daemon's server
// certificate, or a client's) that does not check out against its CA; the
// daemon refuses to start with it, a client to connect.
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
