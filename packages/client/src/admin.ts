// The admin API as a typed client (what virt-admin's library calls do).
import { AdminService, type AdminMessages } from '@virtd/protocol/admin';
import { Connection, unixTarget } from './connection.js';
import { adminTarget, defaultAdminUri } from './admin-uri.js';
import type { Env } from './paths.js';

type Client = AdminMessages.virtd.admin.v1.IClient;
type TypedParam = AdminMessages.virtd.admin.v1.ITypedParam;

export const TRANSPORT_NAMES = ['unix', 'tcp', 'tls'] as const;

export interface ThreadpoolInfo {
  minWorkers: number; maxWorkers: number; nWorkers: number; freeWorkers: number; prioWorkers: number; jobQueueDepth: number;
}
export interface ClientLimitsInfo { nclientsMax: number; nclients: number; nclientsUnauthMax: number; nclientsUnauth: number }
export interface ClientSummary { server: string; id: number; timestamp: number; transport: 'unix' | 'tcp' | 'tls' }
export interface ClientDetails extends ClientSummary { params: { field: string; value: string | number | boolean }[] }

const summary = (c: Client | null | undefined): ClientSummary => ({
  server: c?.server ?? '',
  id: Number(c?.id ?? 0),
  timestamp: Number(c?.timestamp ?? 0),
  transport: TRANSPORT_NAMES[c?.transport ?? 0] ?? 'unix',
});

const paramValue = (p: TypedParam): string | number | boolean => {
  for (const k of ['int', 'uint', 'llong', 'ullong', 'double', 'boolean', 'string'] as const) {
    const v = p[k];
    if (v !== undefined && v !== null) return v as string | number | boolean;
  }
  return '';
};

export class AdminClient {
  readonly uri: string;
  readonly socket: string;
  private readonly conn: Connection;

  private constructor(uri: string, socket: string) {
    this.uri = uri;
    this.socket = socket;
    this.conn = new Connection(unixTarget(socket));
  }

  /** Connects to the admin socket a URI names (default: virt-admin's default URI). */
  static open(uri: string | undefined, env: Env, euid: number): AdminClient {
    const u = uri ?? defaultAdminUri(env, euid);
    const t = adminTarget(u, env);
    return new AdminClient(u, t.socket);
  }

  private call<Res>(method: keyof typeof AdminService, req: object = {}): Promise<Res> {
    return this.conn.unary<object, Res>(AdminService, method, req);
  }

  async libVersion(): Promise<{ version: number; name: string }> {
    const r = await this.call<{ version?: number; name?: string }>('GetLibVersion');
    return { version: Number(r.version ?? 0), name: r.name ?? '' };
  }

  async listServers(): Promise<string[]> {
    const r = await this.call<{ servers?: { name?: string }[] }>('ListServers');
    return (r.servers ?? []).map((s) => s.name ?? '');
  }

  async lookupServer(name: string): Promise<string> {
    return (await this.call<{ name?: string }>('LookupServer', { name })).name ?? '';
  }

  async threadpoolInfo(server: string): Promise<ThreadpoolInfo> {
    const r = await this.call<Partial<ThreadpoolInfo>>('GetThreadpoolParameters', { server });
    return {
      minWorkers: r.minWorkers ?? 0, maxWorkers: r.maxWorkers ?? 0, nWorkers: r.nWorkers ?? 0,
      freeWorkers: r.freeWorkers ?? 0, prioWorkers: r.prioWorkers ?? 0, jobQueueDepth: r.jobQueueDepth ?? 0,
    };
  }

  async setThreadpool(server: string, p: { minWorkers?: number; maxWorkers?: number; prioWorkers?: number }): Promise<void> {
    await this.call('SetThreadpoolParameters', { server, ...p });
  }

  async listClients(server: string): Promise<ClientSummary[]> {
    const r = await this.call<{ clients?: Client[] }>('ListClients', { server });
    return (r.clients ?? []).map(summary);
  }

  async lookupClient(server: string, id: number): Promise<ClientSummary> {
    return summary(await this.call<Client>('LookupClient', { server, id }));
  }

  async clientInfo(server: string, id: number): Promise<ClientDetails> {
    const r = await this.call<{ client?: Client; params?: TypedParam[] }>('GetClientInfo', { server, id });
    return { ...summary(r.client), params: (r.params ?? []).map((p) => ({ field: p.field ?? '', value: paramValue(p) })) };
  }

  async closeClient(server: string, id: number): Promise<void> {
    await this.call('CloseClient', { server, id });
  }

  async clientLimits(server: string): Promise<ClientLimitsInfo> {
    const r = await this.call<Partial<ClientLimitsInfo>>('GetClientLimits', { server });
    return {
      nclientsMax: r.nclientsMax ?? 0, nclients: r.nclients ?? 0,
      nclientsUnauthMax: r.nclientsUnauthMax ?? 0, nclientsUnauth: r.nclientsUnauth ?? 0,
    };
  }

  async setClientLimits(server: string, p: { nclientsMax?: number; nclientsUnauthMax?: number }): Promise<void> {
    await this.call('SetClientLimits', { server, ...p });
  }

  async logLevel(): Promise<number> {
    return (await this.call<{ level?: number }>('GetLoggingLevel')).level ?? 0;
  }

  async setLogLevel(level: number): Promise<void> {
    await this.call('SetLoggingLevel', { level });
  }

  async logFilters(): Promise<string> {
    return (await this.call<{ filters?: string }>('GetLoggingFilters')).filters ?? '';
  }

  async setLogFilters(filters: string): Promise<void> {
    await this.call('SetLoggingFilters', { filters });
  }

  async logOutputs(): Promise<string> {
    return (await this.call<{ outputs?: string }>('GetLoggingOutputs')).outputs ?? '';
  }

  async setLogOutputs(outputs: string): Promise<void> {
    await this.call('SetLoggingOutputs', { outputs });
  }

  async updateTlsFiles(server: string): Promise<void> {
    await this.call('UpdateTlsFiles', { server });
  }

  async setDaemonTimeout(timeout: number): Promise<void> {
    await this.call('SetDaemonTimeout', { timeout });
  }

  close(): void {
    this.conn.close();
  }
}

