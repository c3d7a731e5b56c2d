// From the family's typed config, the environment and the command line to
// the values the core layers take. Precedence is libvirt's: command line >
// environment > config file > defaults. Nothing below this module reads the
// environment or the config file.
import type { RemoteDaemonConfig, LogdConfig, LockdConfig, AuthScheme } from '@virtd/conf';
import { VirtError } from '@virtd/errors';
import type { DaemonDescriptor } from './descriptor.js';
import type { ServerConfig } from './server.js';
import {
  parseFilters, parseOutputs, DEFAULT_PRIORITY, type LogFilter, type LogOutput, type Priority,
} from './logging/settings.js';
import type { TlsFiles } from './paths.js';
import type { TlsSettings } from './tls.js';

export type FamilyConfig = RemoteDaemonConfig | LogdConfig | LockdConfig;

export interface UnixSettings {
  readonly dir?: string;
  readonly group?: string;
  readonly rwPerms: number;
  readonly roPerms: number;
  readonly adminPerms: number;
  readonly authRw: AuthScheme;
  readonly authRo: AuthScheme;
}

export interface IpSettings {
  readonly listenTcp: boolean;
  readonly listenTls: boolean;
  readonly tcpPort: string;
  readonly tlsPort: string;
  readonly listenAddr?: string;
  readonly authTcp: AuthScheme;
  readonly authTls: AuthScheme;
  readonly tls: TlsSettings;
}

export interface CoreSettings {
  readonly log: { readonly level: Priority; readonly filters: LogFilter[]; readonly outputs?: LogOutput[] };
  readonly main: ServerConfig;
  readonly admin: ServerConfig;
  readonly mainBacklog: number;
  readonly adminBacklog: number;
  readonly unix: UnixSettings;
  /** Only for daemons built with IP listeners. */
  readonly ip?: IpSettings;
}

const LEVEL_NAMES: Record<string, Priority> = { debug: 1, info: 2, warning: 3, warn: 3, error: 4 };

function envPriority(text: string): Priority {
  const t = text.trim().toLowerCase();
  const p = LEVEL_NAMES[t] ?? (/^[1-4]$/.test(t) ? (Number(t) as Priority) : undefined);
  if (!p) throw new VirtError('INVALID_ARG', 'NONE', `Invalid LIBVIRT_DEBUG value '${text}'`);
  return p;
}

export interface SettingsInput {
  readonly descriptor: DaemonDescriptor;
  readonly config: FamilyConfig;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly verbose: boolean;
  readonly tlsDefaults: TlsFiles;
}

const isRemote = (d: DaemonDescriptor, c: FamilyConfig): c is RemoteDaemonConfig => d.family === 'remote' && 'unixSockRwPerms' in c;

export function coreSettings(input: SettingsInput): CoreSettings {
  const { descriptor: d, config: c, env } = input;
  // Logging: config, then environment, then --verbose.
  let level: Priority = c.logLevel >= 1 && c.logLevel <= 4 ? (c.logLevel as Priority) : DEFAULT_PRIORITY;
  let filters = c.logFilters ? parseFilters(c.logFilters) : [];
  let outputs = c.logOutputs ? parseOutputs(c.logOutputs) : undefined;
  if (env.LIBVIRT_DEBUG) level = envPriority(env.LIBVIRT_DEBUG);
  if (env.LIBVIRT_LOG_FILTERS) filters = parseFilters(env.LIBVIRT_LOG_FILTERS);
  if (env.LIBVIRT_LOG_OUTPUTS) outputs = parseOutputs(env.LIBVIRT_LOG_OUTPUTS);
  if (input.verbose && level > 2) level = 2;
  const log = { level, filters, ...(outputs && outputs.length ? { outputs } : {}) };

  if (!isRemote(d, c)) {
    // virtlogd/virtlockd: fixed 0700 sockets, calls handled inline one at a
    // time per client, no keepalive, backlog 30.
    const helper = (name: string, maxClients: number): ServerConfig => ({
      name,
      limits: { maxClients, maxAnonymousClients: maxClients },
      workers: { minWorkers: 0, maxWorkers: 0, prioWorkers: 0 },
      maxClientRequests: 1,
      keepalive: { interval: -1, count: 0 },
      // Their clients stay connected across the SIGUSR1 re-exec.
      resumable: d.execRestart,
    });
    return {
      log,
      main: helper(d.name, c.maxClients),
      admin: helper('admin', c.adminMaxClients),
      mainBacklog: 30,
      adminBacklog: 30,
      unix: { rwPerms: 0o700, roPerms: 0o700, adminPerms: 0o700, authRw: 'none', authRo: 'none' },
    };
  }

  const ip = c.ip && {
    listenTcp: c.ip.listenTcp,
    listenTls: c.ip.listenTls,
    tcpPort: c.ip.tcpPort,
    tlsPort: c.ip.tlsPort,
    ...(c.ip.listenAddr ? { listenAddr: c.ip.listenAddr } : {}),
    authTcp: c.ip.authTcp,
    authTls: c.ip.authTls,
    tls: {
      keyFile: c.ip.keyFile ?? input.tlsDefaults.key,
      certFile: c.ip.certFile ?? input.tlsDefaults.cert,
      caFile: c.ip.caFile ?? input.tlsDefaults.ca,
      crlFile: c.ip.crlFile ?? input.tlsDefaults.crl,
      noVerify: c.ip.tlsNoVerifyCertificate,
      noSanity: c.ip.tlsNoSanityCertificate,
      ...(c.ip.tlsAllowedDnList ? { allowedDNs: c.ip.tlsAllowedDnList } : {}),
    },
  };
  return {
    log,
    main: {
      name: d.name,
      limits: { maxClients: c.maxClients, maxAnonymousClients: c.maxAnonymousClients },
      workers: { minWorkers: c.minWorkers, maxWorkers: c.maxWorkers, prioWorkers: c.prioWorkers },
      maxClientRequests: c.maxClientRequests,
      keepalive: { interval: c.keepaliveInterval, count: c.keepaliveCount },
    },
    admin: {
      name: 'admin',
      limits: { maxClients: c.adminMaxClients, maxAnonymousClients: 0 },
      workers: { minWorkers: c.adminMinWorkers, maxWorkers: c.adminMaxWorkers, prioWorkers: 0 },
      maxClientRequests: c.adminMaxClientRequests,
      keepalive: { interval: c.adminKeepaliveInterval, count: c.adminKeepaliveCount },
    },
    mainBacklog: c.maxQueuedClients,
    adminBacklog: c.adminMaxQueuedClients,
    unix: {
      ...(c.unixSockDir ? { dir: c.unixSockDir } : {}),
      ...(c.unixSockGroup ? { group: c.unixSockGroup } : {}),
      rwPerms: c.unixSockRwPerms,
      roPerms: c.unixSockRoPerms,
      adminPerms: c.unixSockAdminPerms,
      authRw: c.authUnixRw,
      authRo: c.authUnixRo,
    },
    ...(ip ? { ip } : {}),
  };
}

/**
 * Auth schemes this build implements. SASL and polkit are refused at start
 * with the socket and key named, never silently treated as "none".
 */
export function checkAuthSupported(s: CoreSettings, tcpUsed: boolean, tlsUsed: boolean): void {
  const check = (scheme: AuthScheme, key: string): void => {
    if (scheme !== 'none') {
      throw new VirtError('CONFIG_UNSUPPORTED', 'CONF',
        `${key} = "${scheme}" is not supported by this build (only "none" is); refusing to start rather than serve without it`);
    }
  };
  check(s.unix.authRw, 'auth_unix_rw');
  check(s.unix.authRo, 'auth_unix_ro');
  if (s.ip && tcpUsed) check(s.ip.authTcp, 'auth_tcp');
  if (s.ip && tlsUsed) check(s.ip.authTls, 'auth_tls');
}
