// What makes one daemon different from another. libvirt builds libvirtd,
// virtproxyd and every virt${DRIVER}d from one source with a few defines;
// our binaries are each one of these objects handed to runDaemon().
import type { Program } from './program.js';
import type { DaemonRuntime } from './runtime.js';
import type { Client } from './client.js';

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
  /** What an in-place re-exec (SIGUSR1) needs from the module. */
  readonly reexec?: ReexecHooks;
}

/**
 * The module's half of a re-exec: the daemon quiesces its servers, the
 * module its own work; then both write their state and name the fds to keep.
 */
export interface ReexecHooks {
  /** Stops work so that nothing is half done (pipes read out and written). */
  quiesce(): Promise<void>;
  /** Carries on after a re-exec that did not happen. */
  unquiesce(): void;
  /** fds that must survive the exec (pipes, locked files). */
  fds(): number[];
  /** Top-level keys of the state file ("handler", "lockspaces", …). */
  saveState(): Record<string, unknown>;
  /** In the new image, before any client is restored. */
  restoreState(state: Readonly<Record<string, unknown>>): Promise<void> | void;
  /** A client's privateData (virtlockd's owner). */
  clientData?(client: Client): Record<string, unknown>;
  restoreClient?(client: Client, data: Readonly<Record<string, unknown>>): void;
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
  /**
   * Serves an ordinary user (session mode). A modular daemon whose driver is
   * system-only still starts as one, binds its sockets, and then stops with
   * status 0 when its mandatory driver skips itself, as libvirt's does.
   */
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
