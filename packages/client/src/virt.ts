// A libvirt connection: open a URI (starting a session daemon if needed),
// then the connection-level queries and the secret APIs.
import { ConnectService } from '@virtd/protocol/connect';
import { SecretService } from '@virtd/protocol/secret';
import { VirtError } from '@virtd/errors';
import type * as grpc from '@grpc/grpc-js';
import { Connection } from './connection.js';
import { resolve, defaultUri } from './transport.js';
import { autostart } from './autostart.js';
import type { Env } from './paths.js';

export const USAGE_TYPES = ['none', 'volume', 'ceph', 'iscsi', 'tls', 'vtpm'] as const;
export type UsageType = (typeof USAGE_TYPES)[number];

export interface SecretRef { uuid: string; usageType: UsageType; usageId: string }
export interface NodeInfo { model: string; memory: number; cpus: number; mhz: number; nodes: number; sockets: number; cores: number; threads: number }
export interface SecretEventInfo { secret: SecretRef; kind: 'lifecycle' | 'value-changed'; lifecycle: 'defined' | 'undefined'; timestamp: number }

/** libvirt's VIR_CONNECT_RO open flag. */
export const CONNECT_RO = 1;

/** libvirt's list flags for ListAllSecrets. */
export const SECRET_LIST = { EPHEMERAL: 1, NO_EPHEMERAL: 2, PRIVATE: 4, NO_PRIVATE: 8 } as const;

const secretRef = (r: { uuid?: string | null; usageType?: number | null; usageId?: string | null }): SecretRef =>
  ({ uuid: r.uuid ?? '', usageType: USAGE_TYPES[r.usageType ?? 0] ?? 'none', usageId: r.usageId ?? '' });

export interface OpenOptions {
  readonly readonly?: boolean;
  readonly env?: Env;
  readonly euid?: number;
}

export class VirtConnection {
  readonly conn: Connection;
  readonly uri: string;
  readonly type: string;

  private constructor(conn: Connection, uri: string, type: string) {
    this.conn = conn;
    this.uri = uri;
    this.type = type;
  }

  static async open(uri: string | undefined, o: OpenOptions = {}): Promise<VirtConnection> {
    const env = o.env ?? process.env;
    const euid = o.euid ?? process.geteuid?.() ?? 0;
    // An empty URI means the default, as in libvirt.
    const text = uri || defaultUri(env, euid);
    const r = resolve(text, { readonly: !!o.readonly, env, euid });
    if (r.autostart && r.socket) await autostart(r.autostart, r.socket, env);
    const conn = new Connection(r.target);
    try {
      const reply = await conn.unary<object, { uri?: string; type?: string }>(ConnectService, 'Open',
        { uri: r.name, flags: o.readonly ? CONNECT_RO : 0 });
      // As libvirt's client: the connection is known by the URI it was
      // opened with, transport and parameters included; with none, by the
      // one the daemon picked.
      return new VirtConnection(conn, text || (reply.uri ?? r.name), reply.type ?? '');
    } catch (e) {
      conn.close();
      throw e;
    }
  }

  private call<Res>(def: grpc.ServiceDefinition, method: string, req: object = {}): Promise<Res> {
    return this.conn.unary<object, Res>(def, method, req);
  }

  async getType(): Promise<string> { return (await this.call<{ type?: string }>(ConnectService, 'GetType')).type ?? ''; }
  async hvVersion(): Promise<number> { return Number((await this.call<{ version?: number }>(ConnectService, 'GetVersion')).version ?? 0); }
  async libVersion(): Promise<number> { return Number((await this.call<{ version?: number }>(ConnectService, 'GetLibVersion')).version ?? 0); }
  async hostname(): Promise<string> { return (await this.call<{ hostname?: string }>(ConnectService, 'GetHostname')).hostname ?? ''; }
  /** The connection's URI, as virConnectGetURI: known on this side, no call. */
  async getUri(): Promise<string> { return this.uri; }
  async capabilities(): Promise<string> { return (await this.call<{ xml?: string }>(ConnectService, 'GetCapabilities')).xml ?? ''; }
  async isAlive(): Promise<boolean> { return !!(await this.call<{ value?: boolean }>(ConnectService, 'IsAlive')).value; }
  async isSecure(): Promise<boolean> { return !!(await this.call<{ value?: boolean }>(ConnectService, 'IsSecure')).value; }
  async isEncrypted(): Promise<boolean> { return !!(await this.call<{ value?: boolean }>(ConnectService, 'IsEncrypted')).value; }

  async nodeInfo(): Promise<NodeInfo> {
    const r = await this.call<Partial<NodeInfo>>(ConnectService, 'NodeGetInfo');
    return {
      model: r.model ?? '', memory: Number(r.memory ?? 0), cpus: r.cpus ?? 0, mhz: r.mhz ?? 0,
      nodes: r.nodes ?? 0, sockets: r.sockets ?? 0, cores: r.cores ?? 0, threads: r.threads ?? 0,
    };
  }

  async secretDefine(xml: string): Promise<SecretRef> {
    return secretRef(await this.call(SecretService, 'DefineXML', { xml }));
  }

  async secretUndefine(uuid: string): Promise<void> { await this.call(SecretService, 'Undefine', { uuid }); }

  async secretLookup(uuid: string): Promise<SecretRef> {
    return secretRef(await this.call(SecretService, 'LookupByUUID', { uuid }));
  }

  async secretLookupByUsage(usageType: UsageType, usageId: string): Promise<SecretRef> {
    return secretRef(await this.call(SecretService, 'LookupByUsage', { usageType: USAGE_TYPES.indexOf(usageType), usageId }));
  }

  async secretList(flags = 0): Promise<SecretRef[]> {
    const r = await this.call<{ secrets?: { uuid?: string; usageType?: number; usageId?: string }[] }>(SecretService, 'ListAll', { flags });
    return (r.secrets ?? []).map(secretRef);
  }

  async secretXml(uuid: string): Promise<string> { return (await this.call<{ xml?: string }>(SecretService, 'GetXMLDesc', { uuid })).xml ?? ''; }
  async secretSetValue(uuid: string, value: Buffer): Promise<void> { await this.call(SecretService, 'SetValue', { uuid, value }); }

  async secretGetValue(uuid: string): Promise<Buffer> {
    const r = await this.call<{ value?: Uint8Array }>(SecretService, 'GetValue', { uuid });
    return Buffer.from(r.value ?? new Uint8Array());
  }

  /** Secret events as they happen; cancel() stops them. */
  secretEvents(filter: { uuid?: string; kind?: 'lifecycle' | 'value-changed' }, onEvent: (e: SecretEventInfo) => void): { cancel(): void; done: Promise<void> } {
    const req = { uuid: filter.uuid ?? '', ...(filter.kind ? { kind: filter.kind === 'lifecycle' ? 0 : 1 } : {}) };
    const stream = this.conn.serverStream<object, { secret?: object; kind?: number; lifecycle?: number; timestamp?: number }>(SecretService, 'Events', req);
    stream.on('data', (e) => onEvent({
      secret: secretRef(e.secret ?? {}),
      kind: e.kind === 1 ? 'value-changed' : 'lifecycle',
      lifecycle: e.lifecycle === 1 ? 'undefined' : 'defined',
      timestamp: Number(e.timestamp ?? 0),
    }));
    const done = new Promise<void>((resolveDone, reject) => {
      stream.on('error', (err: grpc.ServiceError) => (err.code === 1 ? resolveDone() : reject(this.conn.error(err))));
      stream.on('end', () => resolveDone());
    });
    return { cancel: () => stream.cancel(), done };
  }

  async close(): Promise<void> {
    try { await this.call(ConnectService, 'Close'); } catch (e) { if (!(e instanceof VirtError)) throw e; }
    this.conn.close();
  }
}
