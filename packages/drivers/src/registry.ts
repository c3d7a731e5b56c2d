// The drivers one daemon carries, and the connection each client opened.
// Open binds a client's connection to the driver serving the URI; every
// other call finds that binding or fails as libvirt does.
import { VirtError } from '@virtd/errors';
import type { Client } from '@virtd/core';
import { parseUri, canonicalUri, type ParsedUri } from '@virtd/protocol/uri';
import type { Driver, DriverName } from './driver.js';

export interface OpenConnection {
  readonly driver: Driver;
  readonly uri: string;
  readonly readonly: boolean;
}

const CONNECTION = Symbol('virtd.connection');
/** libvirt's VIR_CONNECT_RO. */
export const CONNECT_RO = 1;

export class DriverRegistry {
  readonly drivers: readonly Driver[];

  constructor(drivers: readonly Driver[]) {
    this.drivers = drivers;
  }

  get(name: DriverName): Driver | undefined {
    return this.drivers.find((d) => d.name === name);
  }

  /** Opens (binds) the client's connection; returns what was opened. */
  open(client: Client, uriText: string, mode: 'system' | 'session', flags = 0): OpenConnection {
    if (client.data.has(CONNECTION)) {
      throw new VirtError('OPERATION_INVALID', 'REMOTE', 'connection already open');
    }
    const uri = this.resolve(uriText, mode);
    const driver = this.drivers.find((d) => d.scheme === uri.scheme && !uri.transport && !uri.host);
    if (!driver) throw new VirtError('NO_CONNECT', 'NONE', uriText || canonicalUri(uri));
    // The driver's own URI check comes first: libvirt's lxc and nwfilter
    // refuse a /session path with their hint whether or not they are active.
    driver.checkOpen(uri);
    // A driver without an instance in this mode was never initialised here.
    if (!driver.modes.includes(mode) && !driver.opensWithoutInstance) {
      throw new VirtError('INTERNAL_ERROR', 'NONE', `${driver.name} state driver is not active`);
    }
    if (flags & CONNECT_RO) client.restrictToReadOnly();
    const conn: OpenConnection = { driver, uri: canonicalUri(uri), readonly: client.readonly };
    client.data.set(CONNECTION, conn);
    return conn;
  }

  /**
   * The empty URI: like libvirt's probe, the first hypervisor driver that
   * would open here (present, right mode), else this daemon's only driver.
   */
  private resolve(uriText: string, mode: 'system' | 'session'): ParsedUri {
    if (uriText) return parseUri(uriText);
    const candidate = (d: Driver): ParsedUri | undefined => {
      const u = parseUri(`${d.scheme}:///${mode}`);
      try { d.checkOpen(u); return d.modes.includes(mode) ? u : undefined; } catch { return undefined; }
    };
    for (const d of this.drivers.filter((x) => x.hypervisor)) {
      const u = candidate(d);
      if (u) return u;
    }
    const only = this.drivers[0];
    if (!only) throw new VirtError('NO_CONNECT', 'NONE', 'the default URI');
    return parseUri(`${only.scheme}:///${mode}`);
  }

  close(client: Client): void {
    client.data.delete(CONNECTION);
  }

  /** The client's open connection, or libvirt's "not open" error. */
  connection(client: Client): OpenConnection {
    const c = client.data.get(CONNECTION) as OpenConnection | undefined;
    if (!c) throw new VirtError('INTERNAL_ERROR', 'REMOTE', 'hypervisor connection not open');
    return c;
  }

  /** The driver that serves a secondary API (e.g. secrets) for an open connection. */
  secondary(client: Client, name: DriverName, api: string): Driver {
    this.connection(client);
    const d = this.get(name);
    if (!d) throw new VirtError('NO_SUPPORT', 'NONE', api);
    return d;
  }
}
