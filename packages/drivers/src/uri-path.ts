// libvirt's rule for local URI paths: a privileged daemon serves /system,
// an unprivileged one /session, and anything else is refused with a hint.
import { VirtError, type DomainName } from '@virtd/errors';
import type { Mode } from '@virtd/core';

export function checkUriPath(path: string, scheme: string, mode: Mode, domain: DomainName): void {
  const want = mode === 'system' ? '/system' : '/session';
  if (path !== want) {
    throw new VirtError('INTERNAL_ERROR', domain, `unexpected ${scheme} URI path '${path}', try ${scheme}://${want}`);
  }
}
