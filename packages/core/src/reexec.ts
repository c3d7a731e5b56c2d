// The daemon-level half of an in-place re-exec (virtlogd, virtlockd on
// SIGUSR1): bring servers and module to rest, gather the state file and
// the fds to keep; in the new image, put it all back. Each layer writes and
// reads its own part (Server, Listener, the module's hooks); this module
// only composes them. The exec itself is exec-self.ts.
import fs from 'node:fs';
import type { Logger } from 'pino';
import type { Server, Role, ServiceOptions } from './server.js';
import type { DaemonModule } from './descriptor.js';
import type { FdHandoff } from './fd-handoff.js';
import { reapPid } from '@virtd/posix';
import type { DaemonState, ServerState } from './exec-state.js';

export interface ReexecParts {
  readonly servers: ReadonlyMap<string, Server>;
  readonly module: DaemonModule;
  readonly handoff: FdHandoff | undefined;
}

/** How long in-flight calls get to finish before a re-exec gives up. */
export const QUIESCE_TIMEOUT_MS = 30_000;

/** Stops accepting, lets calls finish and pipes drain; undone on failure. */
export async function quiesceAll(p: ReexecParts, timeoutMs = QUIESCE_TIMEOUT_MS): Promise<void> {
  try {
    await Promise.all([...p.servers.values()].map((s) => s.quiesce(timeoutMs)));
    await p.module.reexec?.quiesce();
  } catch (e) {
    unquiesceAll(p);
    throw e;
  }
}

export function unquiesceAll(p: ReexecParts): void {
  p.module.reexec?.unquiesce();
  for (const s of p.servers.values()) s.unquiesce();
}

/** The state file's content and the fds the exec must keep (after quiesceAll). */
export function buildState(p: ReexecParts, pid: number): { state: DaemonState; fds: number[] } {
  const hooks = p.module.reexec;
  const servers: Record<string, ServerState> = {};
  const fds: number[] = [];
  for (const [name, s] of p.servers) {
    servers[name] = s.toState((c) => hooks?.clientData?.(c) ?? {});
    fds.push(...s.fds());
  }
  const state: DaemonState = { daemon: { servers }, magic: String(pid), ...(hooks?.saveState() ?? {}) };
  if (hooks) fds.push(...hooks.fds());
  if (p.handoff) {
    state.fdTickets = p.handoff.toState();
    fds.push(...p.handoff.fds());
  }
  const children = childPids();
  if (children.length) state.children = children;
  return { state, fds };
}

/**
 * Rebuilds everything from the state, module first (clients' private data
 * refers to it), then each server's listeners and clients.
 */
export async function restoreAll(p: ReexecParts, state: DaemonState, serviceOptions: (server: Server, role: Role) => ServiceOptions): Promise<void> {
  const hooks = p.module.reexec;
  await hooks?.restoreState(state);
  if (state.fdTickets && p.handoff) p.handoff.restore(state.fdTickets);
  for (const [name, st] of Object.entries(state.daemon.servers)) {
    const s = p.servers.get(name);
    if (!s) throw new Error(`state names a server "${name}" this daemon does not have`);
    s.restore(st, {
      serviceOptions: (role) => serviceOptions(s, role),
      ...(hooks?.restoreClient ? { restoreClient: hooks.restoreClient } : {}),
    });
  }
}

/** Our children, which become the new image's (and its zombies unless reaped). */
export function childPids(): number[] {
  const out: number[] = [];
  let tasks: string[] = [];
  try { tasks = fs.readdirSync('/proc/self/task'); } catch { return out; }
  for (const t of tasks) {
    try {
      for (const w of fs.readFileSync(`/proc/self/task/${t}/children`, 'utf8').split(/\s+/)) if (w) out.push(Number(w));
    } catch { /* thread gone */ }
  }
  return out;
}

/** Reaps children of the previous image as they exit (libuv does not know them). */
export function reapInherited(pids: readonly number[], log: Logger): void {
  let left = [...pids];
  const sweep = (): void => {
    left = left.filter((pid) => {
      const r = reapPid(pid);
      if (r === 'running') return true;
      if (r !== 'unknown') log.debug({ pid, status: r.status }, 'reaped a child of the previous image');
      return false;
    });
    if (!left.length) clearInterval(timer);
  };
  const timer = setInterval(sweep, 1000);
  timer.unref();
  sweep();
}
