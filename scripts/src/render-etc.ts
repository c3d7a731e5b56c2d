// The default config files shipped as etc/libvirt/<daemon>.conf: one per
// descriptor, rendered by @virtd/conf so that the comments show the very
// defaults the loaders apply.
import { renderSampleConf } from '@virtd/conf';
import { DAEMONS } from '@virtd/daemons';

/** Repo-relative path → file text. */
export function renderEtc(): Map<string, string> {
  return new Map(DAEMONS.map((d) => [
    `etc/libvirt/${d.name}.conf`,
    renderSampleConf(d.family, { daemon: d.name, withIP: d.withIP }),
  ]));
}
