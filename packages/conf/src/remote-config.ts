// libvirtd.conf, virtproxyd.conf and virt${DRIVER}d.conf: one loader for the
// whole remote-daemon family, as in libvirt (remote_daemon_config.c), with
// the IP keys read only by daemons built to listen on IP.
import type { ConfFile } from './grammar.js';
import { clientLimitsProblem } from './limits.js';
import { ConfReader, type LoadedConfig } from './reader.js';

/**
 * Build options that change libvirt's defaults. We build without both, so
 * unix auth defaults to none and auth_tcp to none.
 */
export const BUILD_FEATURES: Readonly<{ polkit: boolean; sasl: boolean }> = Object.freeze({ polkit: false, sasl: false });

export const AUTH_SCHEMES = Object.freeze(['none', 'sasl', 'polkit'] as const);
export type AuthScheme = (typeof AUTH_SCHEMES)[number];
export const HOST_UUID_SOURCES = Object.freeze(['smbios', 'machine-id'] as const);
export type HostUuidSource = (typeof HOST_UUID_SOURCES)[number];

/** libvirt refuses SASL SSF minimums below this (SSF_WARNING_LEVEL). */
export const MIN_TCP_SSF = 112;

export interface RemoteDaemonContext {
  /** DAEMON_NAME: libvirtd, virtproxyd, virtqemud, … */
  readonly daemon: string;
  /** Built with IP listeners (libvirtd, virtproxyd): only then are the IP keys read. */
  readonly withIP: boolean;
  /** System instance (euid 0); picks defaults only where a build feature depends on it. */
  readonly privileged: boolean;
}

/** Keys read only by IP-capable daemons; elsewhere they count as unknown. */
export interface RemoteIpConfig {
  /** listen_tls: open the TLS port (libvirtd only with --listen). Default 1 for libvirtd, 0 otherwise. */
  readonly listenTls: boolean;
  /** listen_tcp: open the plain TCP port. Default 0. */
  readonly listenTcp: boolean;
  /** tls_port: port number or service name. Default "16514". */
  readonly tlsPort: string;
  /** tcp_port: port number or service name. Default "16509". */
  readonly tcpPort: string;
  /** listen_addr: address to bind; unset binds the IPv4 and IPv6 wildcards. */
  readonly listenAddr: string | undefined;
  /** auth_tcp. Default sasl if built with SASL, else none. */
  readonly authTcp: AuthScheme;
  /** auth_tls. Default none. */
  readonly authTls: AuthScheme;
  /** tcp_min_ssf: minimum SASL security strength on TCP. Default 56; an explicit value must be ≥ 112. */
  readonly tcpMinSsf: number;
  /** key_file: unset means the standard path (/etc/pki/libvirt/private/serverkey.pem, or ~/.pki/libvirt/serverkey.pem). */
  readonly keyFile: string | undefined;
  /** cert_file: unset means /etc/pki/libvirt/servercert.pem (or ~/.pki/libvirt/servercert.pem). */
  readonly certFile: string | undefined;
  /** ca_file: unset means /etc/pki/CA/cacert.pem (or ~/.pki/libvirt/cacert.pem). */
  readonly caFile: string | undefined;
  /** crl_file: unset means the standard CRL path, used only if it exists. */
  readonly crlFile: string | undefined;
  /** tls_no_sanity_certificate: skip checks of our own certificate. Default 0. */
  readonly tlsNoSanityCertificate: boolean;
  /** tls_no_verify_certificate: do not require valid client certificates. Default 0. */
  readonly tlsNoVerifyCertificate: boolean;
  /** tls_allowed_dn_list: glob patterns a client certificate's DN must match; unset checks none. */
  readonly tlsAllowedDnList: readonly string[] | undefined;
  /** tls_priority: GnuTLS priority string; unset uses the build default. */
  readonly tlsPriority: string | undefined;
}

export interface RemoteDaemonConfig {
  /** unix_sock_group: group name, or `+<gid>`; unset leaves the group alone. */
  readonly unixSockGroup: string | undefined;
  /** unix_sock_ro_perms as a mode. Default 0o777. */
  readonly unixSockRoPerms: number;
  /** unix_sock_rw_perms as a mode. Default 0o777 when auth_unix_rw is polkit, else 0o700. */
  readonly unixSockRwPerms: number;
  /** unix_sock_admin_perms as a mode. Default 0o700. */
  readonly unixSockAdminPerms: number;
  /** unix_sock_dir: unset means /run/libvirt, or $XDG_RUNTIME_DIR/libvirt for a session daemon. */
  readonly unixSockDir: string | undefined;
  /** auth_unix_ro. Default polkit if built with polkit and privileged, else none. */
  readonly authUnixRo: AuthScheme;
  /** auth_unix_rw. Same default as auth_unix_ro. */
  readonly authUnixRw: AuthScheme;
  /** access_drivers: API access control drivers. Default (and for an empty list) ["none"]. */
  readonly accessDrivers: readonly string[];
  /** sasl_allowed_username_list: glob patterns for SASL user names; unset checks none. */
  readonly saslAllowedUsernameList: readonly string[] | undefined;
  /** max_clients: clients of the main server over all its sockets. Default 5000. */
  readonly maxClients: number;
  /** max_queued_clients: listen() backlog of the main sockets. Default 1000. */
  readonly maxQueuedClients: number;
  /** max_anonymous_clients: connected but not yet authenticated; 0 = no separate limit. Default 20. */
  readonly maxAnonymousClients: number;
  /** min_workers. Default 5. */
  readonly minWorkers: number;
  /** max_workers: at least 1. Default 20. */
  readonly maxWorkers: number;
  /** prio_workers: workers reserved for high-priority calls. Default 5. */
  readonly prioWorkers: number;
  /** max_client_requests: calls in flight per client. Default 5. */
  readonly maxClientRequests: number;
  /** admin_min_workers. Default 5. */
  readonly adminMinWorkers: number;
  /** admin_max_workers. Default 20. */
  readonly adminMaxWorkers: number;
  /** admin_max_clients. Default 5000. */
  readonly adminMaxClients: number;
  /** admin_max_queued_clients: backlog of the admin socket. Default 20. */
  readonly adminMaxQueuedClients: number;
  /** admin_max_client_requests. Default 5. */
  readonly adminMaxClientRequests: number;
  /** log_level: 0 keeps the built-in level (3). Default 0. */
  readonly logLevel: number;
  /** log_filters: space-separated `level:match`; unset = none. */
  readonly logFilters: string | undefined;
  /** log_outputs: space-separated `level:output`; unset = built-in choice. */
  readonly logOutputs: string | undefined;
  /** audit_level: 0 off, 1 if the host supports it, 2 required. Default 1. */
  readonly auditLevel: number;
  /** audit_logging: also copy audit records to the log. Default 0. */
  readonly auditLogging: boolean;
  /** host_uuid, normalised to lower-case 8-4-4-4-12; unset = from host_uuid_source. */
  readonly hostUuid: string | undefined;
  /** host_uuid_source. Default smbios. */
  readonly hostUuidSource: HostUuidSource;
  /** keepalive_interval in seconds; -1 = never ping (still answer). Default 5. */
  readonly keepaliveInterval: number;
  /** keepalive_count: unanswered pings before closing. Default 5. */
  readonly keepaliveCount: number;
  /** admin_keepalive_interval. Default 5. */
  readonly adminKeepaliveInterval: number;
  /** admin_keepalive_count. Default 5. */
  readonly adminKeepaliveCount: number;
  /** ovs_timeout: seconds allowed for ovs-vsctl. Default 5. */
  readonly ovsTimeout: number;
  /** The IP keys; undefined for daemons without IP listeners. */
  readonly ip: Readonly<RemoteIpConfig> | undefined;
}

/** Present in old files (and libvirt's own samples) but read by nothing since. */
const OBSOLETE_KEYS = ['keepalive_required', 'admin_keepalive_required', 'mdns_adv', 'mdns_name'];

function auth(r: ConfReader, key: string): AuthScheme | undefined {
  const s = r.string(key);
  if (s !== undefined && !(AUTH_SCHEMES as readonly string[]).includes(s)) {
    r.fail(key, `unsupported auth '${s}' for '${key}' parameter: expected one of ${AUTH_SCHEMES.join(', ')}`, 'CONFIG_UNSUPPORTED');
  }
  return s as AuthScheme | undefined;
}

function perms(r: ConfReader, key: string): number | undefined {
  const s = r.string(key);
  if (s === undefined) return undefined;
  // Stricter than libvirt's strtol(…, 8): no sign, blanks or bits beyond 07777.
  if (!/^[0-7]+$/.test(s) || parseInt(s, 8) > 0o7777) {
    r.fail(key, `Failed to parse mode '${s}' for '${key}' parameter: expected an octal mode such as "0770"`, 'CONFIG_UNSUPPORTED');
  }
  return parseInt(s, 8);
}

/**
 * libvirt's UUID syntax (virUUIDParse): 32 hex digits, any `-` or space
 * between bytes, blanks around. Returns the 16 bytes, or undefined.
 */
export function parseUuid(text: string): Uint8Array | undefined {
  const s = text.trim();
  const bytes = new Uint8Array(16);
  let i = 0;
  let pos = 0;
  while (i < 16) {
    const c = s[pos];
    if (c === undefined) return undefined;
    if (c === '-' || c === ' ') { pos++; continue; }
    const pair = s.slice(pos, pos + 2);
    if (!/^[0-9a-fA-F]{2}$/.test(pair)) return undefined;
    bytes[i++] = parseInt(pair, 16);
    pos += 2;
  }
  return pos === s.length ? bytes : undefined;
}

const formatUuid = (b: Uint8Array): string => {
  const hex = Buffer.from(b).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
};

function hostUuid(r: ConfReader): string | undefined {
  const s = r.string('host_uuid');
  if (s === undefined) return undefined;
  const bytes = parseUuid(s);
  if (!bytes) r.fail('host_uuid', `Can't setup host uuid: '${s}' is not a valid UUID for 'host_uuid' parameter`, 'CONFIG_UNSUPPORTED');
  // libvirt refuses UUIDs whose bytes are all equal (e.g. all zeros): firmware placeholders.
  if (bytes.every((b) => b === bytes[0])) {
    r.fail('host_uuid', `Can't setup host uuid: '${s}' for 'host_uuid' parameter has all bytes identical`, 'CONFIG_UNSUPPORTED');
  }
  return formatUuid(bytes);
}

function oneOf<T extends string>(r: ConfReader, key: string, allowed: readonly T[]): T | undefined {
  const s = r.string(key);
  if (s !== undefined && !(allowed as readonly string[]).includes(s)) {
    r.fail(key, `unsupported value '${s}' for '${key}' parameter: expected one of ${allowed.join(', ')}`, 'CONFIG_UNSUPPORTED');
  }
  return s as T | undefined;
}

const frozenList = (l: string[] | undefined): readonly string[] | undefined => l && Object.freeze(l);

function readIp(r: ConfReader, ctx: RemoteDaemonContext): RemoteIpConfig {
  const listenTcp = r.bool('listen_tcp') ?? false;
  // libvirtd honours it only with --listen, so it may default on; virtproxyd
  // has no --listen and must not open a TLS port unasked.
  const listenTls = r.bool('listen_tls') ?? ctx.daemon === 'libvirtd';
  const tlsPort = r.string('tls_port') ?? '16514';
  const tcpPort = r.string('tcp_port') ?? '16509';
  const listenAddr = r.string('listen_addr');
  const authTcp = auth(r, 'auth_tcp') ?? (BUILD_FEATURES.sasl ? 'sasl' : 'none');
  const authTls = auth(r, 'auth_tls') ?? 'none';
  const tlsNoSanityCertificate = r.bool('tls_no_sanity_certificate') ?? false;
  const tlsNoVerifyCertificate = r.bool('tls_no_verify_certificate') ?? false;
  const keyFile = r.string('key_file');
  const certFile = r.string('cert_file');
  const caFile = r.string('ca_file');
  const crlFile = r.string('crl_file');
  const tlsAllowedDnList = frozenList(r.stringList('tls_allowed_dn_list'));
  const tlsPriority = r.string('tls_priority');
  const tcpMinSsfSet = r.uint('tcp_min_ssf');
  if (tcpMinSsfSet !== undefined && tcpMinSsfSet < MIN_TCP_SSF) {
    r.fail('tcp_min_ssf', `value for 'tcp_min_ssf' parameter must be at least ${MIN_TCP_SSF}: minimum SSF levels lower than ${MIN_TCP_SSF} are not supported`, 'CONFIG_UNSUPPORTED');
  }
  return Object.freeze({
    listenTls, listenTcp, tlsPort, tcpPort, listenAddr, authTcp, authTls, tcpMinSsf: tcpMinSsfSet ?? 56,
    keyFile, certFile, caFile, crlFile, tlsNoSanityCertificate, tlsNoVerifyCertificate, tlsAllowedDnList, tlsPriority,
  });
}

/** Rules spanning several keys, checked once everything is read. */
function checkRemoteCrossFields(r: ConfReader, c: RemoteDaemonConfig): void {
  if (c.ip) {
    // A custom key, certificate or CA only makes sense as a set; libvirt
    // would otherwise fail later, when the TLS socket is set up.
    const tls = [['key_file', c.ip.keyFile], ['cert_file', c.ip.certFile], ['ca_file', c.ip.caFile]] as const;
    const set = tls.filter(([, v]) => v !== undefined);
    const missing = tls.filter(([, v]) => v === undefined);
    if (set.length > 0 && missing.length > 0) {
      r.fail(set[0]![0], `'key_file', 'cert_file' and 'ca_file' must be set together: ${missing.map(([k]) => `'${k}'`).join(' and ')} not set`, 'CONFIG_UNSUPPORTED');
    }
  }
  const problem = clientLimitsProblem(c.maxClients, c.maxAnonymousClients);
  if (problem) {
    const at = r.setting('max_anonymous_clients') ? 'max_anonymous_clients' : 'max_clients';
    r.fail(at, `${problem} ('max_clients' = ${c.maxClients}, 'max_anonymous_clients' = ${c.maxAnonymousClients})`, 'CONFIG_UNSUPPORTED');
  }
}

// Keys are read in libvirt's order, so the first bad key reported is the one
// libvirt would report.
function load(r: ConfReader, ctx: RemoteDaemonContext): RemoteDaemonConfig {
  const ip = ctx.withIP ? readIp(r, ctx) : undefined;
  const unixAuthDefault: AuthScheme = BUILD_FEATURES.polkit && ctx.privileged ? 'polkit' : 'none';
  const authUnixRw = auth(r, 'auth_unix_rw') ?? unixAuthDefault;
  const authUnixRo = auth(r, 'auth_unix_ro') ?? unixAuthDefault;
  const accessDrivers = r.stringList('access_drivers');
  const unixSockGroup = r.string('unix_sock_group');
  const unixSockAdminPerms = perms(r, 'unix_sock_admin_perms') ?? 0o700;
  const unixSockRoPerms = perms(r, 'unix_sock_ro_perms') ?? 0o777;
  // polkit checks each client itself, so the socket may be open to all.
  const unixSockRwPerms = perms(r, 'unix_sock_rw_perms') ?? (authUnixRw === 'polkit' ? 0o777 : 0o700);
  const unixSockDir = r.string('unix_sock_dir');
  const saslAllowedUsernameList = frozenList(r.stringList('sasl_allowed_username_list'));
  const minWorkers = r.uint('min_workers') ?? 5;
  const maxWorkers = r.uint('max_workers') ?? 20;
  if (maxWorkers < 1) r.fail('max_workers', "'max_workers' must be greater than 0", 'INTERNAL_ERROR');
  const maxClients = r.uint('max_clients') ?? 5000;
  const maxQueuedClients = r.uint('max_queued_clients') ?? 1000;
  const maxAnonymousClients = r.uint('max_anonymous_clients') ?? 20;
  const prioWorkers = r.uint('prio_workers') ?? 5;
  const maxClientRequests = r.uint('max_client_requests') ?? 5;
  const adminMinWorkers = r.uint('admin_min_workers') ?? 5;
  const adminMaxWorkers = r.uint('admin_max_workers') ?? 20;
  const adminMaxClients = r.uint('admin_max_clients') ?? 5000;
  const adminMaxQueuedClients = r.uint('admin_max_queued_clients') ?? 20;
  const adminMaxClientRequests = r.uint('admin_max_client_requests') ?? 5;
  const auditLevel = r.uint('audit_level') ?? 1;
  const auditLogging = r.bool('audit_logging') ?? false;
  const uuid = hostUuid(r);
  const hostUuidSource = oneOf(r, 'host_uuid_source', HOST_UUID_SOURCES) ?? 'smbios';
  const logLevel = r.uint('log_level') ?? 0;
  const logFilters = r.string('log_filters');
  const logOutputs = r.string('log_outputs');
  const keepaliveInterval = r.int('keepalive_interval') ?? 5;
  const keepaliveCount = r.uint('keepalive_count') ?? 5;
  const adminKeepaliveInterval = r.int('admin_keepalive_interval') ?? 5;
  const adminKeepaliveCount = r.uint('admin_keepalive_count') ?? 5;
  const ovsTimeout = r.uint('ovs_timeout') ?? 5;
  for (const k of OBSOLETE_KEYS) r.ignore(k);

  const config: RemoteDaemonConfig = Object.freeze({
    unixSockGroup, unixSockRoPerms, unixSockRwPerms, unixSockAdminPerms, unixSockDir,
    authUnixRo, authUnixRw,
    // libvirt's access manager treats an empty list like no list.
    accessDrivers: Object.freeze(accessDrivers?.length ? accessDrivers : ['none']),
    saslAllowedUsernameList,
    maxClients, maxQueuedClients, maxAnonymousClients, minWorkers, maxWorkers, prioWorkers, maxClientRequests,
    adminMinWorkers, adminMaxWorkers, adminMaxClients, adminMaxQueuedClients, adminMaxClientRequests,
    logLevel, logFilters, logOutputs, auditLevel, auditLogging,
    hostUuid: uuid, hostUuidSource,
    keepaliveInterval, keepaliveCount, adminKeepaliveInterval, adminKeepaliveCount, ovsTimeout,
    ip,
  });
  checkRemoteCrossFields(r, config);
  return config;
}

/**
 * The typed config of libvirtd, virtproxyd or a virt${DRIVER}d from its
 * parsed file (undefined when there is none: all defaults).
 */
export function remoteDaemonConfig(file: ConfFile | undefined, ctx: RemoteDaemonContext): LoadedConfig<RemoteDaemonConfig> {
  const r = new ConfReader(file);
  const config = load(r, ctx);
  return { config, unknownKeys: r.unknownKeys() };
}

/**
 * Every key the loader reads for this daemon, in reading order (for samples
 * and docs). Loading without a file asks for each key and cannot fail, so the
 * list cannot drift from the loader.
 */
export function remoteDaemonKeys(ctx: RemoteDaemonContext): string[] {
  const r = new ConfReader(undefined);
  load(r, ctx);
  return r.readKeys();
}
