// virtlogd's module for the daemon core: the log handler, its program, and
// its part of a re-exec (the "handler" key of the state file).
import type { DaemonModule, DaemonRuntime } from '@virtd/core';
import type { LogdConfig } from '@virtd/conf';
import { LogHandler, type HandlerState } from './handler.js';
import { logProgram } from './program.js';

/** A system virtlogd's pipes: 1 MiB, where the kernel gives 64 KiB. */
const SYSTEM_PIPE_SIZE = 1024 * 1024;

export function logdModule(rt: DaemonRuntime): DaemonModule {
  const cfg = rt.config as LogdConfig;
  const session = rt.paths.mode === 'session';
  const handler = new LogHandler({ maxSize: cfg.maxSize, maxBackups: cfg.maxBackups }, {
    log: rt.log('logging.handler'),
    // Only a per-user virtlogd waits for its guests' logs before exiting
    // idle. Only a system one enlarges its pipes: an ordinary user's count
    // against their pipe quota (fs.pipe-user-pages-soft), past which every
    // new pipe of theirs gets two pages.
    ...(session ? { inhibit: () => rt.autoShutdown.inhibit() } : { pipeSize: SYSTEM_PIPE_SIZE }),
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
