// Admin URIs as virt-admin takes them: the scheme names the daemon
// (libvirtd, virtqemud, virtproxyd, virtlogd, …), the path the mode, and
// ?socket= an explicit socket. The default comes from
// LIBVIRT_ADMIN_DEFAULT_URI, then libvirt-admin.conf's uri_default.
import fs from 'node:fs';
import path from 'node:path';
import { VirtError } from '@virtd/errors';
import { parseConf, getString } from '@virtd/conf';
import { parseUri } from '@virtd/protocol/uri';
import { socketDir, configDir, type Env } from './paths.js';

export interface AdminTarget {
  readonly uri: string;
  readonly socket: string;
}

export function adminTarget(uri: string, env: Env): AdminTarget {
  const u = parseUri(uri);
  if (u.transport || u.host) {
    throw new VirtError('CONFIG_UNSUPPORTED', 'ADMIN', `remote admin connections are not supported: ${uri}`);
  }
  for (const k of u.params.keys()) {
    if (k !== 'socket') throw new VirtError('CONFIG_UNSUPPORTED', 'ADMIN', `Unknown URI parameter '${k}'`);
  }
  const explicit = u.params.get('socket');
  if (explicit) return { uri, socket: explicit };
  let prefix: string;
  if (u.scheme === 'libvirtd') prefix = 'libvirt';
  else if (u.scheme.startsWith('virt')) prefix = u.scheme;
  else throw new VirtError('CONFIG_UNSUPPORTED', 'ADMIN', `Unsupported URI scheme '${u.scheme}'`);
  let mode: 'system' | 'session';
  if (u.path === '/system') mode = 'system';
  else if (u.path === '/session') mode = 'session';
  else throw new VirtError('CONFIG_UNSUPPORTED', 'ADMIN', `Invalid URI path '${u.path}', try '/system' or '/session'`);
  return { uri, socket: path.join(socketDir(mode, env), `${prefix}-admin-sock`) };
}

/** The URI virt-admin would use without -c. */
export function defaultAdminUri(env: Env, euid: number): string {
  if (env.LIBVIRT_ADMIN_DEFAULT_URI) return env.LIBVIRT_ADMIN_DEFAULT_URI;
  const mode = euid === 0 ? 'system' : 'session';
  const file = path.join(configDir(mode, env), 'libvirt-admin.conf');
  try {
    const text = fs.readFileSync(file, 'utf8');
    const fromConf = getString(parseConf(text, file), 'uri_default');
    if (fromConf) return fromConf;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return `libvirtd:///${mode}`;
}
