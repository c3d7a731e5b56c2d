// virtlogd's module for the daemon core: the log handler, its program, and
// its part of a re-exec (the "handler" key of the state file).
import type { DaemonModule, DaemonRuntime } from '@virtd/core';
import type { LogdConfig } from '@virtd/conf';
import { LogHandler, type HandlerState } from './handler.js';
import { logProgram } from './program.js';

export function logdModule(rt: DaemonRuntime): DaemonModule {
  const cfg = rt.config as LogdConfig;
  // Only a per-user virtlogd waits for its guests' logs before exiting idle.
  const session = rt.paths.mode === 'session';
  const handler = new LogHandler({ maxSize: cfg.maxSize, maxBackups: cfg.maxBackups }, {
    log: rt.log('logging.handler'),
    ...(session ? { inhibit: () => rt.autoShutdown.inhibit() } : {}),
  });
  return {
    programs: [logProgram(handler, rt.fdHandoff())],
    cleanup: () => handler.close(),
    reexec: {
      quiesce: () => handler.quiesce(),
      unquiesce: () => handler.unquiesce(),
      fds: () => handler.fds(),
      saveState: () => ({ handler: handler.toState() }),
      restoreState: (s) => handler.restore((s.handler ?? { files: [] }) as HandlerState),
    },
  };
}
