// The admin program (libvirt's ADMIN, 0x06900690): servers, thread pools,
// clients and their limits, logging, TLS files and the auto-shutdown
// timeout. Every change takes effect at once.
import { AdminService, AdminMethods, type AdminMessages } from '@virtd/protocol/admin';
import { VirtError } from '@virtd/errors';
import type { Program, CallContext } from '../program.js';
import type { DaemonRuntime } from '../runtime.js';
import type { Server } from '../server.js';
import type { Client, TypedValue } from '../client.js';
import { parseFilters, parseOutputs, formatFilters, formatOutputs, parsePriority } from '../logging/settings.js';
import { versionNumber, PRODUCT } from '../version.js';

type A = AdminMessages.virtd.admin.v1.IServerRef;
type Ctx<T> = CallContext<T>;
const TRANSPORT = { unix: 0, tcp: 1, tls: 2 } as const;

export function adminProgram(rt: DaemonRuntime, defaultOutputs: () => string): Program {
  const server = (name: string | null | undefined): Server => {
    const s = rt.servers.get(name ?? '');
    if (!s) throw new VirtError('NO_SERVER', 'ADMIN', `No server named '${name ?? ''}'`);
    return s;
  };
  const client = (srv: Server, id: number | null | undefined): Client => {
    const c = srv.client(Number(id));
    if (!c) throw new VirtError('NO_CLIENT', 'ADMIN', `No client with matching ID '${id}'`);
    return c;
  };
  const describe = (c: Client): AdminMessages.virtd.admin.v1.IClient => ({
    server: c.serverName, id: c.id, timestamp: c.connectTime, transport: TRANSPORT[c.transport],
  });
  const param = (v: TypedValue): AdminMessages.virtd.admin.v1.ITypedParam => ({ field: v.field, [v.type]: v.value });

  return {
    name: 'admin',
    service: AdminService,
    methods: AdminMethods,
    handlers: {
      GetLibVersion: () => ({ version: versionNumber(), name: PRODUCT }),
      ListServers: () => ({ servers: [...rt.servers.keys()].map((name) => ({ name })) }),
      LookupServer: ({ request }: Ctx<AdminMessages.virtd.admin.v1.ILookupServerRequest>) => ({ name: server(request.name).name }),
      GetThreadpoolParameters: ({ request }: Ctx<A>) => server(request.server).workers.params(),
      SetThreadpoolParameters: ({ request: r }: Ctx<AdminMessages.virtd.admin.v1.ISetThreadpoolParametersRequest>) => {
        server(r.server).workers.setLimits({
          ...(r.minWorkers != null ? { minWorkers: r.minWorkers } : {}),
          ...(r.maxWorkers != null ? { maxWorkers: r.maxWorkers } : {}),
          ...(r.prioWorkers != null ? { prioWorkers: r.prioWorkers } : {}),
        });
        return {};
      },
      ListClients: ({ request }: Ctx<A>) => ({ clients: server(request.server).clients().map(describe) }),
      LookupClient: ({ request }: Ctx<AdminMessages.virtd.admin.v1.IClientRef>) => describe(client(server(request.server), request.id)),
      GetClientInfo: ({ request }: Ctx<AdminMessages.virtd.admin.v1.IClientRef>) => {
        const c = client(server(request.server), request.id);
        return { client: describe(c), params: c.info().map(param) };
      },
      CloseClient: ({ request }: Ctx<AdminMessages.virtd.admin.v1.IClientRef>) => {
        client(server(request.server), request.id).close();
        return {};
      },
      GetClientLimits: ({ request }: Ctx<A>) => {
        const s = server(request.server);
        const lim = s.clientLimits();
        return {
          nclientsMax: lim.maxClients, nclients: s.clientCount,
          nclientsUnauthMax: lim.maxAnonymousClients, nclientsUnauth: s.anonymousCount,
        };
      },
      SetClientLimits: ({ request: r }: Ctx<AdminMessages.virtd.admin.v1.ISetClientLimitsRequest>) => {
        server(r.server).setClientLimits({
          ...(r.nclientsMax != null ? { maxClients: r.nclientsMax } : {}),
          ...(r.nclientsUnauthMax != null ? { maxAnonymousClients: r.nclientsUnauthMax } : {}),
        });
        return {};
      },
      GetLoggingLevel: () => ({ level: rt.logs.settings().level }),
      SetLoggingLevel: ({ request }: Ctx<AdminMessages.virtd.admin.v1.ILoggingLevel>) => {
        rt.logs.update({ level: parsePriority(String(request.level ?? '')) });
        return {};
      },
      GetLoggingFilters: () => ({ filters: formatFilters(rt.logs.settings().filters) }),
      SetLoggingFilters: ({ request }: Ctx<AdminMessages.virtd.admin.v1.ILoggingFilters>) => {
        rt.logs.update({ filters: parseFilters(request.filters ?? '') });
        return {};
      },
      GetLoggingOutputs: () => ({ outputs: formatOutputs(rt.logs.settings().outputs) }),
      SetLoggingOutputs: ({ request }: Ctx<AdminMessages.virtd.admin.v1.ILoggingOutputs>) => {
        // Empty restores the default output, as libvirt does.
        const text = request.outputs?.trim() ? request.outputs : defaultOutputs();
        rt.logs.update({ outputs: parseOutputs(text) });
        return {};
      },
      UpdateTlsFiles: ({ request }: Ctx<A>) => {
        const endpoints = server(request.server).tlsEndpoints();
        if (!endpoints.length) throw new VirtError('INTERNAL_ERROR', 'ADMIN', 'no tls service found, unable to update tls files');
        for (const t of endpoints) t.reload();
        return {};
      },
      SetDaemonTimeout: ({ request }: Ctx<AdminMessages.virtd.admin.v1.ISetDaemonTimeoutRequest>) => {
        rt.autoShutdown.setTimeout(request.timeout ?? 0);
        return {};
      },
    },
  };
}
