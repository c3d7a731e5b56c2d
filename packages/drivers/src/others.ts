// Drivers without their objects yet. The hypervisors this host does not
// have say so with libvirt's errors instead of pretending; the host-side
// drivers (network, storage, …) open and answer connection-level calls.
import fs from 'node:fs';
import { VirtError, type DomainName } from '@virtd/errors';
import type { ParsedUri } from '@virtd/protocol/uri';
import type { Driver, DriverContext, DriverName } from './driver.js';
import { checkUriPath } from './uri-path.js';

interface Absent {
  name: DriverName;
  typeName: string;
  domain: DomainName;
  modes: readonly ('system' | 'session')[];
  /** What is missing, or undefined when the hypervisor is present. */
  missing(): VirtError | undefined;
}

const ABSENT: readonly Absent[] = [
  {
    name: 'xen', typeName: 'Xen', domain: 'LIBXL', modes: ['system'],
    missing: () => (fs.existsSync('/proc/xen/capabilities') ? undefined
      : new VirtError('INTERNAL_ERROR', 'LIBXL', 'libxenlight state driver is not active')),
  },
  {
    // We do not run containers: the LXC driver reports itself inactive.
    name: 'lxc', typeName: 'LXC', domain: 'LXC', modes: ['system'],
    missing: () => new VirtError('INTERNAL_ERROR', 'LXC', 'lxc state driver is not active'),
  },
  {
    // bhyve exists only on FreeBSD; libvirt builds no bhyve driver elsewhere.
    name: 'bhyve', typeName: 'BHYVE', domain: 'BHYVE', modes: ['system'],
    missing: () => (process.platform === 'freebsd' ? undefined : new VirtError('NO_CONNECT', 'NONE', 'bhyve:///system')),
  },
  {
    name: 'vbox', typeName: 'VBOX', domain: 'VBOX', modes: ['session'],
    missing: () => (['/usr/lib/virtualbox/VBoxSVC', '/opt/VirtualBox/VBoxSVC'].some((p) => fs.existsSync(p)) ? undefined
      : new VirtError('INTERNAL_ERROR', 'VBOX', 'unable to initialize VirtualBox driver API')),
  },
];

export function absentHypervisor(name: DriverName): (ctx: DriverContext) => Driver {
  const spec = ABSENT.find((a) => a.name === name)!;
  return (ctx) => ({
    name, scheme: name, typeName: spec.typeName, hypervisor: true, modes: spec.modes,
    async stateInit(): Promise<void> {
      const why = spec.missing();
      if (why) ctx.log.info(`${name} driver inactive on this host: ${why.message}`);
    },
    checkOpen(uri: ParsedUri): void {
      const why = spec.missing();
      if (why) throw why;
      checkUriPath(uri.path, name, ctx.mode, spec.domain);
    },
  });
}

const HOST_SIDE: Record<string, { typeName: string; domain: DomainName; modes: readonly ('system' | 'session')[] }> = {
  network: { typeName: 'network', domain: 'NETWORK', modes: ['system'] },
  interface: { typeName: 'interface', domain: 'INTERFACE', modes: ['system'] },
  nodedev: { typeName: 'nodedev', domain: 'NODEDEV', modes: ['system'] },
  nwfilter: { typeName: 'nwfilter', domain: 'NWFILTER', modes: ['system'] },
  storage: { typeName: 'storage', domain: 'STORAGE', modes: ['system', 'session'] },
};

export function hostSideDriver(name: DriverName): (ctx: DriverContext) => Driver {
  const spec = HOST_SIDE[name]!;
  return (ctx) => ({
    name, scheme: name, typeName: spec.typeName, hypervisor: false, modes: spec.modes,
    checkOpen: (uri: ParsedUri) => checkUriPath(uri.path, name, ctx.mode, spec.domain),
  });
}
