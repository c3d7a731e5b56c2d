// virtlockd's module for the daemon core: the lock manager, its program,
// and its part of a re-exec ("defaultLockspace", "lockspaces", and each
// connection's owner as privateData).
import type { DaemonModule, DaemonRuntime } from '@virtd/core';
import type { LockSpaceState } from './lockspace.js';
import { LockManager } from './manager.js';
import { lockProgram } from './program.js';

export function lockdModule(rt: DaemonRuntime): DaemonModule {
  const manager = new LockManager(rt.log('locking'));
  return {
    programs: [lockProgram(manager)],
    reexec: {
      // Lock calls are synchronous: once the servers are quiet, so are we.
      quiesce: async () => {},
      unquiesce: () => {},
      fds: () => manager.fds(),
      saveState: () => manager.toState(),
      restoreState: (s) => manager.restore(s as { defaultLockspace?: LockSpaceState; lockspaces?: LockSpaceState[] }),
      clientData: (c) => manager.clientData(c),
      restoreClient: (c, d) => manager.restoreClient(c, d),
    },
  };
}
