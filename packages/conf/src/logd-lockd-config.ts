// virtlogd.conf and virtlockd.conf: the two helper daemons read the same
// logging and client-limit keys; virtlogd adds log rotation. Neither reads
// unix_sock_* (their sockets are fixed), whatever docs/daemons.rst says.
import type { ConfFile } from './grammar.js';
import { ConfReader, type LoadedConfig } from './reader.js';

/** virtlogd keeps at most this many rotated files (virRotatingFile). */
export const MAX_LOG_BACKUPS = 32;

export interface LockdConfig {
  /** log_level: 0 keeps the built-in level (3). Default 0. */
  readonly logLevel: number;
  /** log_filters; unset = none. */
  readonly logFilters: string | undefined;
  /** log_outputs; unset = built-in choice. */
  readonly logOutputs: string | undefined;
  /** max_clients of the main server; also its limit of unauthenticated clients. Default 1024. */
  readonly maxClients: number;
  /** admin_max_clients. Default 5000. */
  readonly adminMaxClients: number;
}

export interface LogdConfig extends LockdConfig {
  /** max_size: bytes a log file may reach before rollover; 0 = never roll over. Default 2097152. */
  readonly maxSize: number;
  /** max_backups: rotated files kept besides the live one, at most 32. Default 3. */
  readonly maxBackups: number;
}

function readCommon(r: ConfReader): LockdConfig {
  return {
    logLevel: r.uint('log_level') ?? 0,
    logFilters: r.string('log_filters'),
    logOutputs: r.string('log_outputs'),
    maxClients: r.uint('max_clients') ?? 1024,
    adminMaxClients: r.uint('admin_max_clients') ?? 5000,
  };
}

function loadLogd(r: ConfReader): LogdConfig {
  const common = readCommon(r);
  const maxSize = r.sizeT('max_size') ?? 2 * 1024 * 1024;
  const maxBackups = r.sizeT('max_backups') ?? 3;
  // libvirt only notices when the first log file is opened; refusing at load
  // reports it against the line that causes it.
  if (maxBackups > MAX_LOG_BACKUPS) {
    r.fail('max_backups', `value for 'max_backups' parameter must be at most ${MAX_LOG_BACKUPS}`, 'CONFIG_UNSUPPORTED');
  }
  return Object.freeze({ ...common, maxSize, maxBackups });
}

const loadLockd = (r: ConfReader): LockdConfig => Object.freeze(readCommon(r));

/** virtlogd's typed config; `file` undefined means all defaults. */
export function logdConfig(file: ConfFile | undefined): LoadedConfig<LogdConfig> {
  const r = new ConfReader(file);
  const config = loadLogd(r);
  return { config, unknownKeys: r.unknownKeys() };
}

/** virtlockd's typed config; `file` undefined means all defaults. */
export function lockdConfig(file: ConfFile | undefined): LoadedConfig<LockdConfig> {
  const r = new ConfReader(file);
  const config = loadLockd(r);
  return { config, unknownKeys: r.unknownKeys() };
}

/** Keys virtlogd reads, in reading order. */
export function logdKeys(): string[] {
  const r = new ConfReader(undefined);
  loadLogd(r);
  return r.readKeys();
}

/** Keys virtlockd reads, in reading order. */
export function lockdKeys(): string[] {
  const r = new ConfReader(undefined);
  loadLockd(r);
  return r.readKeys();
}
