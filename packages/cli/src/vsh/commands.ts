// vsh: virsh's verbs for what the daemons serve so far, with virsh's
// options, output layout and error reports.
import fs from 'node:fs';
import { VirtConnection, SECRET_LIST, type SecretRef, type LockClient } from '@virtd/client';
import type { CommandDef, OptValues } from '../shell/command.js';
import { CommandError, ConnectFailure } from '../shell/command.js';
import { withContext, type GlobalOptions, type Output } from '../shell/shell.js';
import { formatTable } from '../shell/table.js';
import { versionInfo } from '../vadmin/commands.js';
import { helperCommands } from './helpers.js';

export interface VshContext {
  readonly out: Output;
  readonly globals: GlobalOptions;
  /** Connections to the helper daemons, kept for the session (see helpers.ts). */
  readonly helpers: { lock?: LockClient };
  conn(): Promise<VirtConnection>;
  reconnect(uri: string | undefined): void;
  close(): Promise<void>;
}

type Cmd = CommandDef<VshContext>;
const str = (o: OptValues, k: string): string => String(o[k] ?? '');

const GROUP_HOST = 'Host and Hypervisor (help keyword \'host\'):';
const GROUP_SECRET = 'Secret (help keyword \'secret\'):';

const pretty = (v: number): string => `${Math.floor(v / 1e6)}.${Math.floor(v / 1e3) % 1000}.${v % 1000}`;

async function guarded<T>(context: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw withContext(context, e);
  }
}

const usageText = (s: SecretRef): string => (s.usageType === 'none' ? 'Unused' : `${s.usageType} ${s.usageId}`);

/** virsh's timestamp: 2026-11-26 03:52:59.833+0000 (local time). */
function timestamp(ms: number): string {
  const d = new Date(ms);
  const off = -d.getTimezoneOffset();
  const p = (n: number, w = 2): string => String(Math.abs(n)).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`
    + `${off >= 0 ? '+' : '-'}${p(Math.trunc(off / 60))}${p(off % 60)}`;
}

const secretOpt = { name: 'secret', type: 'string', help: 'secret UUID', required: true, positional: true } as const;

const ownCommands: readonly Cmd[] = [
  {
    name: 'uri', group: GROUP_HOST, help: 'print the hypervisor canonical URI', opts: [],
    run: async (ctx) => { ctx.out.print(`${await (await ctx.conn()).getUri()}\n`); },
  },
  {
    name: 'version', group: GROUP_HOST, help: 'show version', opts: [],
    run: async (ctx) => {
      const c = await ctx.conn();
      const { VERSION } = versionInfo();
      ctx.out.print(`Compiled against library: virtd-node ${VERSION}\nUsing library: virtd-node ${VERSION}\n`);
      ctx.out.print(`Using API: ${c.type} ${pretty(await c.libVersion())}\n`);
      const hv = await guarded('failed to get the hypervisor version', () => c.hvVersion());
      ctx.out.print(`Running hypervisor: ${c.type} ${pretty(hv)}\n`);
    },
  },
  {
    name: 'hostname', group: GROUP_HOST, help: 'print the hypervisor hostname', opts: [],
    run: async (ctx) => {
      const c = await ctx.conn();
      ctx.out.print(`${await guarded('failed to get hostname', () => c.hostname())}\n`);
    },
  },
  {
    name: 'nodeinfo', group: GROUP_HOST, help: 'node information', opts: [],
    run: async (ctx) => {
      const c = await ctx.conn();
      const n = await guarded('failed to get node information', () => c.nodeInfo());
      const line = (k: string, v: string | number): string => `${k.padEnd(20)} ${v}\n`;
      ctx.out.print(line('CPU model:', n.model) + line('CPU(s):', n.cpus) + line('CPU frequency:', `${n.mhz} MHz`)
        + line('CPU socket(s):', n.sockets) + line('Core(s) per socket:', n.cores) + line('Thread(s) per core:', n.threads)
        + line('NUMA cell(s):', n.nodes) + line('Memory size:', `${n.memory} KiB`));
    },
  },
  {
    name: 'capabilities', group: GROUP_HOST, help: 'capabilities', opts: [],
    run: async (ctx) => {
      const c = await ctx.conn();
      ctx.out.print(await guarded('failed to get capabilities', () => c.capabilities()));
    },
  },
  {
    name: 'connect', group: GROUP_HOST, help: '(re)connect to hypervisor',
    opts: [{ name: 'name', type: 'string', help: 'hypervisor connection URI', positional: true }],
    run: async (ctx, o) => {
      ctx.reconnect(o.name === undefined ? undefined : str(o, 'name'));
      await ctx.conn();
    },
  },
  {
    name: 'secret-define', group: GROUP_SECRET, help: 'define or modify a secret from an XML file',
    opts: [{ name: 'file', type: 'string', help: 'file containing secret attributes in XML', required: true, positional: true }],
    run: async (ctx, o) => {
      const file = str(o, 'file');
      let xml: string;
      try { xml = fs.readFileSync(file, 'utf8'); } catch (e) {
        throw new CommandError(`Failed to read file '${file}' to define secret`, (e as Error).message);
      }
      const c = await ctx.conn();
      const s = await guarded(`Failed to set attributes from ${file}`, () => c.secretDefine(xml));
      ctx.out.print(`Secret ${s.uuid} created\n`);
    },
  },
  {
    name: 'secret-undefine', group: GROUP_SECRET, help: 'undefine a secret', opts: [secretOpt],
    run: async (ctx, o) => {
      const c = await ctx.conn();
      const uuid = str(o, 'secret');
      const s = await guarded(`failed to get secret '${uuid}'`, () => c.secretLookup(uuid));
      await guarded(`Failed to delete secret ${s.uuid}`, () => c.secretUndefine(s.uuid));
      ctx.out.print(`Secret ${s.uuid} deleted\n`);
    },
  },
  {
    name: 'secret-dumpxml', group: GROUP_SECRET, help: 'secret attributes in XML', opts: [secretOpt],
    run: async (ctx, o) => {
      const c = await ctx.conn();
      const uuid = str(o, 'secret');
      const s = await guarded(`failed to get secret '${uuid}'`, () => c.secretLookup(uuid));
      ctx.out.print(await c.secretXml(s.uuid));
    },
  },
  {
    name: 'secret-list', group: GROUP_SECRET, help: 'list secrets',
    opts: [
      { name: 'ephemeral', type: 'bool', help: 'list ephemeral secrets' },
      { name: 'no-ephemeral', type: 'bool', help: 'list non-ephemeral secrets' },
      { name: 'private', type: 'bool', help: 'list private secrets' },
      { name: 'no-private', type: 'bool', help: 'list non-private secrets' },
    ],
    run: async (ctx, o) => {
      const flags = (o.ephemeral ? SECRET_LIST.EPHEMERAL : 0) | (o['no-ephemeral'] ? SECRET_LIST.NO_EPHEMERAL : 0)
        | (o.private ? SECRET_LIST.PRIVATE : 0) | (o['no-private'] ? SECRET_LIST.NO_PRIVATE : 0);
      const c = await ctx.conn();
      const list = await guarded('Failed to list secrets', () => c.secretList(flags));
      ctx.out.print(formatTable(['UUID', 'Usage'], list.map((s) => [s.uuid, usageText(s)])));
    },
  },
  {
    name: 'secret-set-value', group: GROUP_SECRET, help: 'set a secret value',
    opts: [
      secretOpt,
      { name: 'base64', type: 'string', help: 'base64-encoded secret value', positional: true },
      { name: 'file', type: 'string', help: 'read secret from file' },
      { name: 'plain', type: 'bool', help: 'read the secret from file without converting from base64' },
    ],
    run: async (ctx, o) => {
      let value: Buffer;
      if (o.file !== undefined) {
        let raw: Buffer;
        try { raw = fs.readFileSync(str(o, 'file')); } catch (e) {
          throw new CommandError(`Failed to read secret value from '${str(o, 'file')}'`, (e as Error).message);
        }
        value = o.plain ? raw : Buffer.from(raw.toString('utf8').trim(), 'base64');
      } else if (o.base64 !== undefined) {
        ctx.out.error('Passing secret value as command-line argument is insecure!');
        value = Buffer.from(str(o, 'base64'), 'base64');
      } else {
        throw new CommandError('Input secret value is missing');
      }
      const c = await ctx.conn();
      const uuid = str(o, 'secret');
      const s = await guarded(`failed to get secret '${uuid}'`, () => c.secretLookup(uuid));
      await guarded('Failed to set secret value', () => c.secretSetValue(s.uuid, value));
      ctx.out.print('Secret value set\n');
    },
  },
  {
    name: 'secret-get-value', group: GROUP_SECRET, help: 'Output a secret value',
    opts: [secretOpt, { name: 'plain', type: 'bool', help: 'get value without converting to base64' }],
    run: async (ctx, o) => {
      const c = await ctx.conn();
      const uuid = str(o, 'secret');
      const s = await guarded(`failed to get secret '${uuid}'`, () => c.secretLookup(uuid));
      const v = await c.secretGetValue(s.uuid);
      if (o.plain) ctx.out.printBytes(v);
      else ctx.out.print(`${v.toString('base64')}\n`);
    },
  },
  {
    name: 'secret-event', group: GROUP_SECRET, help: 'Secret Events',
    desc: 'List event types, or wait for secret events to occur',
    opts: [
      { name: 'secret', type: 'string', help: 'filter by secret name or uuid' },
      { name: 'event', type: 'string', help: 'which event type to wait for' },
      { name: 'loop', type: 'bool', help: 'loop until timeout or interrupt, rather than one-shot' },
      { name: 'timeout', type: 'int', help: 'timeout seconds' },
      { name: 'list', type: 'bool', help: 'list valid event types' },
      { name: 'timestamp', type: 'bool', help: 'show timestamp for each printed event' },
    ],
    run: async (ctx, o) => {
      if (o.list) { ctx.out.print('lifecycle\nvalue-changed\n'); return; }
      const kind = o.event === undefined ? undefined : str(o, 'event');
      if (kind === undefined) throw new CommandError('either --list or --event <type> is required');
      if (kind !== 'lifecycle' && kind !== 'value-changed') throw new CommandError(`unknown event type ${kind}`);
      const c = await ctx.conn();
      let uuid: string | undefined;
      if (o.secret !== undefined) uuid = (await guarded(`failed to get secret '${str(o, 'secret')}'`, () => c.secretLookup(str(o, 'secret')))).uuid;
      let count = 0;
      let timedOut = false;
      const sub = c.secretEvents({ ...(uuid ? { uuid } : {}), kind }, (e) => {
        const prefix = o.timestamp ? `${timestamp(e.timestamp)}: ` : '';
        const detail = e.kind === 'lifecycle' ? `: ${e.lifecycle === 'defined' ? 'Defined' : 'Undefined'}` : '';
        ctx.out.print(`${prefix}event '${e.kind}' for secret ${e.secret.uuid}${detail}\n`);
        count++;
        if (!o.loop) sub.cancel();
      });
      const timer = o.timeout !== undefined ? setTimeout(() => { timedOut = true; sub.cancel(); }, Number(o.timeout) * 1000) : undefined;
      await sub.done;
      if (timer) clearTimeout(timer);
      if (timedOut) ctx.out.print('event loop timed out\n');
      ctx.out.print(`events received: ${count}\n`);
    },
  },
];

/** Every vsh verb: virsh's, then the helper daemons'. */
export const commands: readonly Cmd[] = [...ownCommands, ...helperCommands];

export function vshContext(globals: GlobalOptions, out: Output): VshContext {
  let uri = globals.connect;
  let conn: Promise<VirtConnection> | undefined;
  const helpers: { lock?: LockClient } = {};
  return {
    out,
    globals,
    helpers,
    conn: () => (conn ??= VirtConnection.open(uri, { readonly: globals.readonly }).catch((e: unknown) => {
      conn = undefined;
      throw Object.assign(new ConnectFailure('failed to connect to the hypervisor'), { cause: e });
    })),
    reconnect: (u) => {
      const old = conn;
      conn = undefined;
      uri = u;
      void old?.then((c) => c.close(), () => undefined);
    },
    close: async () => {
      helpers.lock?.close();
      const c = conn;
      conn = undefined;
      if (c) await c.then((x) => x.close(), () => undefined);
    },
  };
}
