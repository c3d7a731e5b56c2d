// Where a daemon keeps its files, by mode. System mode (euid 0) uses fixed
// paths under /etc and /run; session mode follows the XDG variables with
// the $HOME fallbacks glib uses.
import path from 'node:path';
import type { DaemonDescriptor } from './descriptor.js';

export type Mode = 'system' | 'session';

export interface HostContext {
  /** Effective uid. */
  readonly euid: number;
  /** The process environment, read once at the top and passed down. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

export const modeOf = (host: HostContext): Mode => (host.euid === 0 ? 'system' : 'session');

function home(host: HostContext): string {
  const h = host.env.HOME;
  if (!h) throw new Error('HOME is not set; session mode needs it for its directories');
  return h;
}

export const xdgConfigHome = (host: HostContext): string => host.env.XDG_CONFIG_HOME || path.join(home(host), '.config');
export const xdgCacheHome = (host: HostContext): string => host.env.XDG_CACHE_HOME || path.join(home(host), '.cache');
/** glib falls back to the cache directory when XDG_RUNTIME_DIR is unset. */
export const xdgRuntimeDir = (host: HostContext): string => host.env.XDG_RUNTIME_DIR || xdgCacheHome(host);

export interface SocketPaths {
  /** Read-write (main) socket. */
  readonly rw?: string;
  /** Read-only socket: system mode only. */
  readonly ro?: string;
  readonly admin?: string;
}

export interface DaemonPaths {
  readonly mode: Mode;
  /** Default config file (overridden by --config). */
  readonly configFile: string;
  /** /run/libvirt or $XDG_RUNTIME_DIR/libvirt. */
  readonly runDir: string;
  /** Default pid file (overridden by --pid-file). */
  readonly pidFile: string;
  /** Where --daemon logs when journald is absent. */
  readonly logFile: string;
  /** Re-exec state file (virtlogd, virtlockd). */
  readonly restartStateFile: string;
  /** Config directory (/etc/libvirt or $XDG_CONFIG_HOME/libvirt). */
  readonly configDir: string;
  /** What drivers may keep between runs (/var/cache/libvirt or $XDG_CACHE_HOME/libvirt). */
  readonly cacheDir: string;
}

export function daemonPaths(d: DaemonDescriptor, host: HostContext): DaemonPaths {
  if (modeOf(host) === 'system') {
    return {
      mode: 'system',
      configDir: '/etc/libvirt',
      cacheDir: '/var/cache/libvirt',
      configFile: `/etc/libvirt/${d.name}.conf`,
      runDir: '/run/libvirt',
      pidFile: `/run/${d.name}.pid`,
      logFile: `/var/log/libvirt/${d.name}.log`,
      restartStateFile: `/run/${d.name}-restart-exec.json`,
    };
  }
  const runDir = path.join(xdgRuntimeDir(host), 'libvirt');
  const configDir = path.join(xdgConfigHome(host), 'libvirt');
  return {
    mode: 'session',
    configDir,
    cacheDir: path.join(xdgCacheHome(host), 'libvirt'),
    configFile: path.join(configDir, `${d.name}.conf`),
    runDir,
    pidFile: path.join(runDir, `${d.name}.pid`),
    logFile: path.join(xdgCacheHome(host), 'libvirt', `${d.name}.log`),
    restartStateFile: path.join(runDir, `${d.name}-restart-exec.json`),
  };
}

/**
 * The UNIX sockets a daemon binds when not socket-activated (facts §3.1):
 * session mode has no read-only socket, and with unix_sock_dir set a
 * session daemon has only its main socket. virtlogd/virtlockd ignore
 * unix_sock_dir.
 */
export function socketPaths(d: DaemonDescriptor, paths: DaemonPaths, unixSockDir?: string): SocketPaths {
  const system = paths.mode === 'system';
  const dir = d.family === 'remote' && unixSockDir ? unixSockDir : paths.runDir;
  const p = (suffix: string): string => path.join(dir, `${d.sockPrefix}-${suffix}`);
  const hasRo = system && d.family === 'remote';
  const hasAdmin = system || !(d.family === 'remote' && unixSockDir);
  return {
    rw: p('sock'),
    ...(hasRo ? { ro: p('sock-ro') } : {}),
    ...(hasAdmin ? { admin: p('admin-sock') } : {}),
  };
}

export interface TlsFiles {
  readonly key: string;
  readonly cert: string;
  readonly ca: string;
  readonly crl: string;
}

/** libvirt's default x509 locations. */
export function defaultTlsFiles(host: HostContext): TlsFiles {
  if (modeOf(host) === 'system') {
    return {
      key: '/etc/pki/libvirt/private/serverkey.pem',
      cert: '/etc/pki/libvirt/servercert.pem',
      ca: '/etc/pki/CA/cacert.pem',
      crl: '/etc/pki/CA/cacrl.pem',
    };
  }
  const dir = path.join(home(host), '.pki', 'libvirt');
  return {
    key: path.join(dir, 'serverkey.pem'),
    cert: path.join(dir, 'servercert.pem'),
    ca: path.join(dir, 'cacert.pem'),
    crl: path.join(dir, 'cacrl.pem'),
  };
}
