// Where a libvirt URI leads, the way libvirt's remote driver decides it:
//  - qemu+tls://host/system, qemu+tcp://host:port/system: that host, the
//    libvirt port (16514 TLS, 16509 TCP), the legacy daemon (libvirtd or
//    virtproxyd) behind it;
//  - local URIs: the modular daemon's socket (virt${DRIVER}d-sock) when it
//    exists, else libvirt-sock when that exists, else the modular one,
//    started on demand in session mode; ?mode=legacy|direct forces one,
//    ?socket=PATH names it outright; -ro sockets for read-only opens.
// The daemon is sent the URI without transport, host and parameters.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { VirtError, isVirtError, checkSignedByCa } from '@virtd/errors';
import { parseUri, type ParsedUri } from '@virtd/protocol/uri';
import { parseConf, getString } from '@virtd/conf';
import { socketDir, configDir, type Env } from './paths.js';
import { unixTarget, type Target } from './connection.js';

export interface Resolved {
  readonly target: Target;
  /** The URI the daemon is asked to open. */
  readonly name: string;
  /** Local socket path, for autostart. */
  readonly socket?: string;
  /** The daemon binary to start when the socket is missing (session only). */
  readonly autostart?: string;
}

export interface ResolveOptions {
  readonly readonly: boolean;
  readonly env: Env;
  readonly euid: number;
}

/** LIBVIRT_DEFAULT_URI, then uri_default in libvirt.conf, else empty (the daemon's default). */
export function defaultUri(env: Env, euid: number): string {
  if (env.LIBVIRT_DEFAULT_URI) return env.LIBVIRT_DEFAULT_URI;
  const file = path.join(configDir(euid === 0 ? 'system' : 'session', env), 'libvirt.conf');
  try {
    const v = getString(parseConf(fs.readFileSync(file, 'utf8'), file), 'uri_default');
    if (v) return v;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return '';
}

const TRANSPORTS = ['unix', 'tls', 'tcp'];

function pkiFiles(u: ParsedUri, env: Env, euid: number): { ca: string; cert: string; key: string } {
  const dir = u.params.get('pkipath');
  if (dir) return { ca: path.join(dir, 'cacert.pem'), cert: path.join(dir, 'clientcert.pem'), key: path.join(dir, 'clientkey.pem') };
  if (euid === 0) {
    return { ca: '/etc/pki/CA/cacert.pem', cert: '/etc/pki/libvirt/clientcert.pem', key: '/etc/pki/libvirt/private/clientkey.pem' };
  }
  const home = path.join(env.HOME ?? '/', '.pki', 'libvirt');
  return { ca: path.join(home, 'cacert.pem'), cert: path.join(home, 'clientcert.pem'), key: path.join(home, 'clientkey.pem') };
}

/**
 * As libvirt, a client whose own certificate does not chain to its CA file
 * stops before connecting. Files that do not parse are left to the TLS
 * layer, which names them when it fails.
 */
function checkOwnCertificate(certPem: Buffer, caPem: Buffer, pki: { ca: string; cert: string }): void {
  let cert: crypto.X509Certificate;
  try { cert = new crypto.X509Certificate(certPem); } catch { return; }
  try {
    checkSignedByCa(cert, caPem, pki);
  } catch (e) {
    if (isVirtError(e)) throw e;
  }
}

function readPki(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch {
    throw new VirtError('SYSTEM_ERROR', 'RPC', undefined, { message: `Cannot access ${what} '${file}': No such file or directory` });
  }
}

/**
 * No URI: like libvirt's client, find a running hypervisor daemon (modular
 * first, then libvirtd/virtproxyd) and let it pick; in session mode start
 * virtqemud when nothing runs. The daemon receives an empty URI and probes.
 */
/** Without a URI, the drivers whose daemon sockets are tried in turn, as libvirt's remote driver does. */
export const DEFAULT_PROBE = {
  system: ['xen', 'qemu', 'lxc', 'vbox', 'bhyve'],
  session: ['qemu', 'vbox'],
} as const;

function resolveDefault(o: ResolveOptions): Resolved {
  const session = o.euid > 0;
  const dir = socketDir(session ? 'session' : 'system', o.env);
  const suffix = o.readonly && !session ? 'sock-ro' : 'sock';
  const probe = DEFAULT_PROBE[session ? 'session' : 'system'];
  const found = probe.map((d) => path.join(dir, `virt${d}d-${suffix}`)).find((p) => fs.existsSync(p));
  const legacy = path.join(dir, `libvirt-${suffix}`);
  const socket = found ?? (fs.existsSync(legacy) ? legacy : path.join(dir, `virtqemud-${suffix}`));
  const autostart = session && socket.endsWith('virtqemud-sock') && o.env.LIBVIRT_AUTOSTART !== '0' ? 'virtqemud' : undefined;
  return { name: '', target: unixTarget(socket), socket, ...(autostart ? { autostart } : {}) };
}

export function resolve(uriText: string, o: ResolveOptions): Resolved {
  if (!uriText) return resolveDefault(o);
  const u = parseUri(uriText);
  const transport = u.transport ?? (u.host ? 'tls' : 'unix');
  if (!TRANSPORTS.includes(transport)) {
    throw new VirtError('INVALID_ARG', 'REMOTE', 'remote_open: transport in URL not recognised (should be tls|unix|tcp)');
  }
  const name = `${u.scheme}://${u.path}`;
  if (transport !== 'unix') {
    const port = u.port ?? (transport === 'tls' ? 16514 : 16509);
    const host = u.host || 'localhost';
    if (transport === 'tcp') {
      return { name, target: { address: `${host}:${port}`, description: `${host}:${port}`, credentials: grpc.credentials.createInsecure() } };
    }
    const pki = pkiFiles(u, o.env, o.euid);
    // no_verify=1: libvirt then checks nothing about the server's certificate.
    const noVerify = u.params.get('no_verify') === '1';
    const [ca, key, cert] = [readPki(pki.ca, 'CA certificate'), readPki(pki.key, 'client key'), readPki(pki.cert, 'client certificate')];
    checkOwnCertificate(cert, ca, pki);
    const credentials = grpc.credentials.createSsl(ca, key, cert,
      noVerify ? { checkServerIdentity: () => undefined, rejectUnauthorized: false } : {});
    return { name, target: { address: `${host}:${port}`, description: `${host}:${port}`, credentials, serverName: host } };
  }
  if (u.host) throw new VirtError('INVALID_ARG', 'REMOTE', `using unix socket and remote server '${u.host}' is not supported.`);
  const explicit = u.params.get('socket');
  if (explicit) return { name, target: unixTarget(explicit), socket: explicit };
  const session = u.path === '/session' && o.euid > 0;
  const dir = socketDir(session ? 'session' : 'system', o.env);
  const suffix = o.readonly && !session ? 'sock-ro' : 'sock';
  const direct = path.join(dir, `virt${u.scheme}d-${suffix}`);
  const legacy = path.join(dir, `libvirt-${suffix}`);
  let mode = u.params.get('mode') ?? 'auto';
  if (mode === 'auto') mode = fs.existsSync(direct) ? 'direct' : fs.existsSync(legacy) ? 'legacy' : 'direct';
  if (mode !== 'direct' && mode !== 'legacy') throw new VirtError('INVALID_ARG', 'REMOTE', `Unknown remote mode '${mode}'`);
  const socket = mode === 'direct' ? direct : legacy;
  const autostart = session && o.env.LIBVIRT_AUTOSTART !== '0' ? (mode === 'direct' ? `virt${u.scheme}d` : 'libvirtd') : undefined;
  return { name, target: unixTarget(socket), socket, ...(autostart ? { autostart } : {}) };
}
