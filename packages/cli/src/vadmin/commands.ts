// vadmin: virt-admin's verbs, options and output layout over our admin API.
import { AdminClient, defaultAdminUri } from '@virtd/client';
import { VirtError } from '@virtd/errors';
import type { CommandDef, OptValues } from '../shell/command.js';
import { CommandError } from '../shell/command.js';
import { withContext, type GlobalOptions, type Output } from '../shell/shell.js';
import { formatTable, kv, localTime } from '../shell/table.js';

export interface AdminContext {
  readonly out: Output;
  readonly globals: GlobalOptions;
  /** The connection, opened on first use; `connect` replaces it. */
  admin(): AdminClient;
  reconnect(uri: string | undefined): void;
  currentUri(): string;
  close(): void;
}

type Cmd = CommandDef<AdminContext>;
const str = (o: OptValues, k: string): string => String(o[k] ?? '');
const num = (o: OptValues, k: string): number | undefined => (o[k] === undefined ? undefined : Number(o[k]));

const server = { name: 'server', type: 'string', help: 'server name', required: true, positional: true } as const;
const clientOpt = { name: 'client', type: 'int', help: 'client ID', required: true, positional: true } as const;

const GROUP_MONITOR = 'Monitoring commands (help keyword \'monitor\'):';
const GROUP_MANAGE = 'Management commands (help keyword \'management\'):';
const GROUP_CONNECT = 'Connection commands (help keyword \'connection\'):';

/** Turns a daemon error into virt-admin's two-line report. */
async function guarded<T>(context: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    // Lookups fail with their own message only, as in virt-admin.
    if (e instanceof VirtError && (e.code === 'NO_SERVER' || e.code === 'NO_CLIENT' || e.message.startsWith('Failed to connect socket'))) throw e;
    throw withContext(context, e);
  }
}

function yesNo(v: string | number | boolean): string {
  return typeof v === 'boolean' ? (v ? 'yes' : 'no') : String(v);
}

export const commands: readonly Cmd[] = [
  {
    name: 'uri', group: GROUP_CONNECT, help: 'print the admin server URI', opts: [],
    run: (ctx) => { ctx.out.print(`${ctx.currentUri()}\n`); },
  },
  {
    name: 'version', group: GROUP_CONNECT, help: 'show version', opts: [],
    run: async (ctx) => {
      const v = await ctx.admin().libVersion();
      const pretty = `${Math.floor(v.version / 1e6)}.${Math.floor(v.version / 1e3) % 1000}.${v.version % 1000}`;
      const { VERSION } = versionInfo();
      ctx.out.print(`Compiled against library: virtd-node ${VERSION}\nUsing library: virtd-node ${VERSION}\nRunning against daemon: ${pretty}\n`);
    },
  },
  {
    name: 'connect', group: GROUP_CONNECT, help: 'connect to daemon\'s admin server',
    opts: [{ name: 'name', type: 'string', help: 'daemon\'s admin server connection URI', positional: true }],
    run: async (ctx, o) => {
      ctx.reconnect(o.name === undefined ? undefined : str(o, 'name'));
      await ctx.admin().listServers();
      ctx.out.print('\nConnected to the admin server\n');
    },
  },
  {
    name: 'server-list', aliases: ['srv-list'], group: GROUP_MONITOR, help: 'list daemon\'s servers', opts: [],
    run: async (ctx) => {
      const names = await guarded('Failed to retrieve list of available servers', () => ctx.admin().listServers());
      ctx.out.print(formatTable(['Id', 'Name'], names.map((n, i) => [String(i), n])));
    },
  },
  {
    name: 'server-threadpool-info', aliases: ['srv-threadpool-info'], group: GROUP_MONITOR,
    help: 'get server workerpool parameters', opts: [server],
    run: async (ctx, o) => {
      const p = await guarded('Unable to get server workerpool parameters', () => ctx.admin().threadpoolInfo(str(o, 'server')));
      for (const [k, v] of Object.entries(p)) ctx.out.print(kv(k, v, 15));
    },
  },
  {
    name: 'server-threadpool-set', aliases: ['srv-threadpool-set'], group: GROUP_MANAGE,
    help: 'set server workerpool parameters',
    opts: [
      server,
      { name: 'min-workers', type: 'int', help: 'Change bottom limit to number of workers.' },
      { name: 'max-workers', type: 'int', help: 'Change upper limit to number of workers.' },
      { name: 'priority-workers', type: 'int', help: 'Change the current number of priority workers' },
    ],
    run: async (ctx, o) => {
      const p = {
        ...(o['min-workers'] !== undefined ? { minWorkers: num(o, 'min-workers')! } : {}),
        ...(o['max-workers'] !== undefined ? { maxWorkers: num(o, 'max-workers')! } : {}),
        ...(o['priority-workers'] !== undefined ? { prioWorkers: num(o, 'priority-workers')! } : {}),
      };
      if (!Object.keys(p).length) {
        throw new CommandError('At least one of options --min-workers, --max-workers, --priority-workers is mandatory');
      }
      if (p.minWorkers !== undefined && p.maxWorkers !== undefined && p.minWorkers > p.maxWorkers) {
        throw new CommandError('--min-workers must be less than or equal to --max-workers');
      }
      await guarded('Unable to change server workerpool parameters', () => ctx.admin().setThreadpool(str(o, 'server'), p));
    },
  },
  {
    name: 'client-list', aliases: ['srv-clients-list'], group: GROUP_MONITOR,
    help: 'list clients connected to <server>', opts: [server],
    run: async (ctx, o) => {
      const list = await guarded(`failed to obtain list of connected clients from server '${str(o, 'server')}'`,
        () => ctx.admin().listClients(str(o, 'server')));
      ctx.out.print(formatTable(['Id', 'Transport', 'Connected since'],
        list.map((c) => [String(c.id), c.transport, localTime(c.timestamp)])));
    },
  },
  {
    name: 'client-info', group: GROUP_MONITOR, help: 'retrieve client\'s identity info from server',
    opts: [server, clientOpt],
    run: async (ctx, o) => {
      const srv = str(o, 'server');
      const id = num(o, 'client')!;
      const c = await guarded(`failed to retrieve client identity information for client '${id}' connected to server '${srv}'`,
        () => ctx.admin().clientInfo(srv, id));
      ctx.out.print(kv('id', c.id, 15) + kv('connection_time', localTime(c.timestamp), 15) + kv('transport', c.transport, 15));
      for (const p of c.params) ctx.out.print(kv(p.field, yesNo(p.value), 15));
    },
  },
  {
    name: 'client-disconnect', group: GROUP_MANAGE, help: 'force disconnect a client from the given server',
    opts: [server, clientOpt],
    run: async (ctx, o) => {
      const srv = str(o, 'server');
      const id = num(o, 'client')!;
      await guarded(`Failed to disconnect client '${id}' from server ${srv}`, async () => {
        await ctx.admin().lookupClient(srv, id);
        await ctx.admin().closeClient(srv, id);
      });
      ctx.out.print(`Client '${id}' disconnected\n`);
    },
  },
  {
    name: 'server-clients-info', aliases: ['srv-clients-info'], group: GROUP_MONITOR,
    help: 'get server\'s client-related configuration limits', opts: [server],
    run: async (ctx, o) => {
      const l = await guarded('Unable to retrieve client limits from server\'s configuration',
        () => ctx.admin().clientLimits(str(o, 'server')));
      ctx.out.print(kv('nclients_max', l.nclientsMax, 20) + kv('nclients', l.nclients, 20)
        + kv('nclients_unauth_max', l.nclientsUnauthMax, 20) + kv('nclients_unauth', l.nclientsUnauth, 20));
    },
  },
  {
    name: 'server-clients-set', aliases: ['srv-clients-set'], group: GROUP_MANAGE,
    help: 'set server\'s client-related configuration limits',
    opts: [
      server,
      { name: 'max-clients', type: 'int', help: 'Change the upper limit to overall number of clients connected to the server.' },
      { name: 'max-unauth-clients', type: 'int', help: 'Change the upper limit to number of clients waiting for authentication to be connected to the server' },
    ],
    run: async (ctx, o) => {
      const p = {
        ...(o['max-clients'] !== undefined ? { nclientsMax: num(o, 'max-clients')! } : {}),
        ...(o['max-unauth-clients'] !== undefined ? { nclientsUnauthMax: num(o, 'max-unauth-clients')! } : {}),
      };
      if (!Object.keys(p).length) throw new CommandError('At least one of options --max-clients, --max-unauth-clients is mandatory');
      if (p.nclientsMax !== undefined && p.nclientsUnauthMax !== undefined && p.nclientsUnauthMax > p.nclientsMax) {
        throw new CommandError('--max-unauth-clients must be less than or equal to --max-clients');
      }
      await guarded('Unable to change server\'s client-related configuration limits', () => ctx.admin().setClientLimits(str(o, 'server'), p));
    },
  },
  {
    name: 'server-update-tls', aliases: ['srv-update-tls'], group: GROUP_MANAGE,
    help: 'notify server to update TLS related files online.', opts: [server],
    run: async (ctx, o) => {
      await guarded('Unable to update server\'s tls related files.', () => ctx.admin().updateTlsFiles(str(o, 'server')));
      ctx.out.print('update tls related files succeed\n');
    },
  },
  {
    name: 'daemon-log-filters', group: GROUP_MANAGE,
    help: 'fetch or set the currently defined set of logging filters on daemon',
    opts: [{ name: 'filters', type: 'string', help: 'redefine the existing set of logging filters', emptyOk: true }],
    run: async (ctx, o) => {
      if (o.filters !== undefined) {
        await guarded('Unable to change daemon logging settings', () => ctx.admin().setLogFilters(str(o, 'filters')));
        return;
      }
      const f = await guarded('Unable to get daemon logging filters information', () => ctx.admin().logFilters());
      ctx.out.print(` ${'Logging filters: '.padEnd(15)}${f}\n`);
    },
  },
  {
    name: 'daemon-log-outputs', group: GROUP_MANAGE,
    help: 'fetch or set the currently defined set of logging outputs on daemon',
    opts: [{ name: 'outputs', type: 'string', help: 'redefine the existing set of logging outputs', emptyOk: true }],
    run: async (ctx, o) => {
      if (o.outputs !== undefined) {
        await guarded('Unable to change daemon logging settings', () => ctx.admin().setLogOutputs(str(o, 'outputs')));
        return;
      }
      const f = await guarded('Unable to get daemon logging outputs information', () => ctx.admin().logOutputs());
      ctx.out.print(` ${'Logging outputs: '.padEnd(15)}${f}\n`);
    },
  },
  {
    // Not in virt-admin: the default priority (log_level) at run time.
    name: 'daemon-log-level', group: GROUP_MANAGE,
    help: 'fetch or set the daemon\'s default logging priority (1 debug … 4 error)',
    opts: [{ name: 'level', type: 'int', help: 'new default priority, 1 to 4' }],
    run: async (ctx, o) => {
      if (o.level !== undefined) {
        await guarded('Unable to change daemon logging settings', () => ctx.admin().setLogLevel(num(o, 'level')!));
        return;
      }
      ctx.out.print(` ${'Logging level: '.padEnd(15)}${await ctx.admin().logLevel()}\n`);
    },
  },
  {
    name: 'daemon-timeout', group: GROUP_MANAGE, help: 'set the auto shutdown timeout of the daemon',
    opts: [{ name: 'timeout', type: 'int', help: 'number of seconds the daemon will run without any active connection', required: true }],
    run: async (ctx, o) => {
      await guarded('Unable to set the daemon timeout', () => ctx.admin().setDaemonTimeout(num(o, 'timeout')!));
    },
  },
];

function versionInfo(): { VERSION: string } {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return { VERSION: (require('../../../package.json') as { version: string }).version };
}

export function adminContext(globals: GlobalOptions, out: Output): AdminContext {
  let uri = globals.connect;
  let client: AdminClient | undefined;
  const env = process.env;
  const euid = process.geteuid?.() ?? 0;
  return {
    out,
    globals,
    admin: () => (client ??= AdminClient.open(uri, env, euid)),
    reconnect: (u) => { client?.close(); client = undefined; uri = u; },
    currentUri: () => uri ?? defaultAdminUri(env, euid),
    close: () => { client?.close(); client = undefined; },
  };
}

export { versionInfo };
