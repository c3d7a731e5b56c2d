// What a running daemon offers the programs it serves (the admin API reads
// and changes all of it). Built by daemon.ts; programs receive it in load().
import type { Logger } from 'pino';
import type { DaemonDescriptor } from './descriptor.js';
import type { DaemonPaths, HostContext } from './paths.js';
import type { LogManager } from './logging/log.js';
import type { Server } from './server.js';
import type { AutoShutdown } from './auto-shutdown.js';
import type { FdHandoff } from './fd-handoff.js';

export interface DaemonRuntime {
  readonly descriptor: DaemonDescriptor;
  readonly host: HostContext;
  readonly paths: DaemonPaths;
  readonly logs: LogManager;
  /** Servers by name, main server first, then 'admin'. */
  readonly servers: ReadonlyMap<string, Server>;
  readonly autoShutdown: AutoShutdown;
  /** The daemon's typed configuration (family-specific). */
  readonly config: unknown;
  log(module: string): Logger;
  /**
   * Hands fds to clients by ticket; asking for it makes the main socket
   * accept ticket connections too.
   */
  fdHandoff(): FdHandoff;
}
