// What makes one daemon different from another. libvirt builds libvirtd,
// virtproxyd and every virt${DRIVER}d from one source with a few defines;
// our binaries are each one of these objects handed to runDaemon().
import type { Program } from './program.js';
import type { DaemonRuntime } from './runtime.js';

/** What a daemon's drivers and programs bring, once loaded. */
export interface DaemonModule {
  /** Programs of the main server. */
  readonly programs: readonly Program[];
  /**
   * Driver state initialisation. Runs after the sockets exist; the daemon
   * reports READY=1 and accepts its first client only once it resolves.
   */
  init?(): Promise<void>;
  /** SIGHUP: driver state reload (the daemon config is not re-read). */
  reload?(): Promise<void>;
  /** Shutdown, after clients are gone: driver cleanup. */
  cleanup?(): Promise<void>;
}

export type DaemonFamily = 'remote' | 'logd' | 'lockd';

export interface DaemonDescriptor {
  /** DAEMON_NAME: binary, main server, config and pid file names. */
  readonly name: string;
  /** Socket file prefix: 'libvirt' for libvirtd and virtproxyd, else the name. */
  readonly sockPrefix: string;
  /** Which config keys and command-line options apply. */
  readonly family: DaemonFamily;
  /** The usage text's one-line description ("libvirt management daemon"). */
  readonly summary: string;
  /** Serves TCP and TLS (libvirtd, virtproxyd). */
  readonly withIP: boolean;
  /** Has libvirtd's --listen; without it a withIP daemon always honours listen_tcp/listen_tls. */
  readonly listenFlag: boolean;
  /** Runs as an ordinary user at all; system-only drivers refuse session mode. */
  readonly sessionSupported: boolean;
  /** Re-executes itself in place on SIGUSR1 (virtlogd, virtlockd). */
  readonly execRestart: boolean;
  /** Driver names loaded in-process, in load order. */
  readonly drivers: readonly string[];
  /**
   * Loads the drivers and programs of the main server; called only when the
   * daemon starts serving, so --help and --version never pay for them.
   */
  readonly load: (rt: DaemonRuntime) => DaemonModule | Promise<DaemonModule>;
}
