// The Connect program: Open/Close and the connection-level queries, each
// answered by the driver the connection is bound to. A query the driver
// cannot answer is NO_SUPPORT naming libvirt's API, as libvirt reports it.
import { ConnectService, ConnectMethods, type ConnectMessages } from '@virtd/protocol/connect';
import { VirtError } from '@virtd/errors';
import { versionNumber, type CallContext, type Program, type Client } from '@virtd/core';
import type { DriverRegistry } from './registry.js';
import type { Driver } from './driver.js';

type Ctx<T = unknown> = CallContext<T>;

export function connectProgram(registry: DriverRegistry, mode: () => 'system' | 'session'): Program {
  const driverOf = (client: Client): Driver => registry.connection(client).driver;
  const need = <T>(v: T | undefined, api: string): T => {
    if (v === undefined) throw new VirtError('NO_SUPPORT', 'NONE', api);
    return v;
  };
  return {
    name: 'connect',
    service: ConnectService,
    methods: ConnectMethods,
    handlers: {
      Open: ({ request, client }: Ctx<ConnectMessages.virtd.connect.v1.IOpenRequest>) => {
        const c = registry.open(client, request.uri ?? '', mode(), request.flags ?? 0);
        return { uri: c.uri, type: c.driver.typeName, readonly: c.readonly };
      },
      Close: ({ client }: Ctx) => { registry.close(client); return {}; },
      GetType: ({ client }: Ctx) => ({ type: driverOf(client).typeName }),
      GetVersion: ({ client }: Ctx) => ({ version: need(driverOf(client).hvVersion?.(), 'virConnectGetVersion') }),
      GetLibVersion: ({ client }: Ctx) => { driverOf(client); return { version: versionNumber() }; },
      GetHostname: ({ client }: Ctx) => ({ hostname: need(driverOf(client).hostname?.(), 'virConnectGetHostname') }),
      GetURI: ({ client }: Ctx) => ({ uri: registry.connection(client).uri }),
      GetCapabilities: ({ client }: Ctx) => ({ xml: need(driverOf(client).capabilities?.(), 'virConnectGetCapabilities') }),
      NodeGetInfo: ({ client }: Ctx) => need(driverOf(client).nodeInfo?.(), 'virNodeGetInfo'),
      IsAlive: ({ client }: Ctx) => { driverOf(client); return { value: true }; },
      // A local socket is secure but not encrypted; TLS is both; TCP neither.
      IsSecure: ({ client }: Ctx) => { driverOf(client); return { value: client.transport !== 'tcp' }; },
      IsEncrypted: ({ client }: Ctx) => { driverOf(client); return { value: client.transport === 'tls' }; },
    },
  };
}
