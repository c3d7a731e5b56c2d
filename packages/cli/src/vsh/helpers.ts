// vsh verbs for the helper daemons: who holds which lock in virtlockd, and
// which log files virtlogd has open. The lock verbs share one connection
// per vsh session, as a lock owner's connection is what holds its locks:
// register, acquire, list and release in one interactive vsh keep them;
// vsh exiting releases them (and virtlockd then stops the owner process,
// as for a dead guest, if that owner was vsh itself).
import { LockClient, LogManagerClient, helperSocket, LOCK_ACQUIRE } from '@virtd/client';
import type { CommandDef, OptValues } from '../shell/command.js';
import { withContext } from '../shell/shell.js';
import { formatTable } from '../shell/table.js';
import type { VshContext } from './commands.js';

type Cmd = CommandDef<VshContext>;

const GROUP = 'Lock and log daemons (help keyword \'helpers\'):';
const str = (o: OptValues, k: string, d = ''): string => (o[k] === undefined ? d : String(o[k]));

const sockOpt = { name: 'socket', type: 'string', help: 'daemon socket (default: root\'s or your own)' } as const;
const spaceOpt = { name: 'lockspace', type: 'string', help: 'lock space directory (default: resources are full paths)' } as const;
const resourceOpt = { name: 'resource', type: 'string', help: 'resource name (a full path in the default lock space)', required: true, positional: true } as const;

/** The vsh session's virtlockd connection, opened on first use. */
function lockd(ctx: VshContext, o: OptValues): LockClient {
  const sock = str(o, 'socket') || helperSocket('virtlockd', process.geteuid!(), process.env);
  if (!ctx.helpers.lock || ctx.helpers.lock.socket !== sock) {
    ctx.helpers.lock?.close();
    ctx.helpers.lock = new LockClient(sock);
  }
  return ctx.helpers.lock;
}

async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw withContext(what, e);
  }
}

export const helperCommands: readonly Cmd[] = [
  {
    name: 'vlock-register', group: GROUP, help: 'register a lock owner on this session\'s virtlockd connection', noConnect: true,
    opts: [
      { name: 'pid', type: 'int', help: 'owner process (default: vsh itself)' },
      { name: 'name', type: 'string', help: 'owner name (default: vsh)' },
      { name: 'uuid', type: 'string', help: 'owner UUID' },
      { name: 'id', type: 'int', help: 'owner id, non-zero (default: 1)' },
      sockOpt,
    ],
    run: async (ctx, o) => {
      const pid = Number(o.pid ?? process.pid);
      await call('failed to register the lock owner', () => lockd(ctx, o).register({
        pid, name: str(o, 'name', 'vsh'), uuid: str(o, 'uuid', '00000000-0000-0000-0000-000000000000'), id: Number(o.id ?? 1),
      }));
      ctx.out.print(`Lock owner ${pid} registered\n`);
    },
  },
  {
    name: 'vlock-acquire', group: GROUP, help: 'acquire a resource lock for the registered owner', noConnect: true,
    opts: [
      resourceOpt, spaceOpt,
      { name: 'shared', type: 'bool', help: 'a shared lock (default: exclusive)' },
      { name: 'autocreate', type: 'bool', help: 'create the resource file if missing (removed on release)' },
      sockOpt,
    ],
    run: async (ctx, o) => {
      const flags = (o.shared ? LOCK_ACQUIRE.SHARED : 0) | (o.autocreate ? LOCK_ACQUIRE.AUTOCREATE : 0);
      await call('failed to acquire the lock', () => lockd(ctx, o).acquire(str(o, 'lockspace'), str(o, 'resource'), flags));
      ctx.out.print(`Lock on ${str(o, 'resource')} acquired\n`);
    },
  },
  {
    name: 'vlock-release', group: GROUP, help: 'release a resource lock of the registered owner', noConnect: true,
    opts: [resourceOpt, spaceOpt, sockOpt],
    run: async (ctx, o) => {
      await call('failed to release the lock', () => lockd(ctx, o).release(str(o, 'lockspace'), str(o, 'resource')));
      ctx.out.print(`Lock on ${str(o, 'resource')} released\n`);
    },
  },
  {
    name: 'vlock-list', group: GROUP, help: 'list the resources virtlockd holds and their owners', noConnect: true,
    opts: [sockOpt],
    run: async (ctx, o) => {
      const held = await call('failed to list locks', () => lockd(ctx, o).list());
      ctx.out.print(formatTable(['Lock space', 'Resource', 'Mode', 'Owners'],
        held.map((r) => [r.lockspace || '(default)', r.name, r.shared ? 'shared' : 'exclusive', r.owners.join(',')])));
    },
  },
  {
    name: 'log-list', group: GROUP, help: 'list the log files virtlogd has open', noConnect: true,
    opts: [sockOpt],
    run: async (ctx, o) => {
      const c = new LogManagerClient(str(o, 'socket') || helperSocket('virtlogd', process.geteuid!(), process.env));
      try {
        const files = await call('failed to list log files', () => c.list());
        ctx.out.print(formatTable(['Path', 'Driver', 'Domain', 'Size'],
          files.map((f) => [f.path, f.driver, f.dom.name, String(f.pos.offset)])));
      } finally {
        c.close();
      }
    },
  },
];
