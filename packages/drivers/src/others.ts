// Drivers without their objects yet. The hypervisors this host does not
// have say so with libvirt's errors instead of pretending; the host-side
// drivers (network, storage, …) open and answer connection-level calls.
import fs from 'node:fs';
import { VirtError, type DomainName } from '@virtd/errors';
import { canonicalUri, type ParsedUri } from '@virtd/protocol/uri';
import type { Mode } from '@virtd/core';
import { STATE_DRIVER_NAMES, type Driver, type DriverContext, type DriverName } from './driver.js';
import { checkUriPath } from './uri-path.js';

interface Absent {
  name: DriverName;
  typeName: string;
  domain: DomainName;
  modes: readonly Mode[];
  /** What is missing in this mode, or undefined when the hypervisor is present. */
  missing(mode: Mode): VirtError | undefined;
  /** The URI check, in libvirt's order relative to `missing`. */
  checkOpen(uri: ParsedUri, mode: Mode, missing: () => void): void;
}

/** libxl and lxc take '', '/' and '/system' alike, and name the right one when refusing. */
function systemOnlyPath(path: string, scheme: string, label: string, domain: DomainName, message = 'unexpected'): void {
  if (path !== '' && path !== '/' && path !== '/system') {
    throw new VirtError('INTERNAL_ERROR', domain, `${message} ${label} URI path '${path}', try ${scheme}:///system`);
  }
}

const ABSENT: readonly Absent[] = [
  {
    // libxl never loads unprivileged ("Not running privileged, disabling
    // libxenlight driver"), so in session mode it is inactive whatever the host.
    name: 'xen', typeName: 'Xen', domain: 'LIBXL', modes: ['system'],
    missing: (mode) => (mode === 'system' && fs.existsSync('/proc/xen/capabilities') ? undefined
      : new VirtError('INTERNAL_ERROR', 'LIBXL', 'libxenlight state driver is not active')),
    // libxlConnectOpen: the state first, then the path.
    checkOpen: (uri, _mode, missing) => { missing(); systemOnlyPath(uri.path, 'xen', 'Xen', 'LIBXL'); },
  },
  {
    // We do not run containers: the LXC driver reports itself inactive.
    name: 'lxc', typeName: 'LXC', domain: 'LXC', modes: ['system'],
    missing: () => new VirtError('INTERNAL_ERROR', 'LXC', 'lxc state driver is not active'),
    // lxcConnectOpen: the path first ("Unexpected", capitalised), then the state.
    checkOpen: (uri, _mode, missing) => { systemOnlyPath(uri.path, 'lxc', 'LXC', 'LXC', 'Unexpected'); missing(); },
  },
  {
    // bhyve exists only on FreeBSD; libvirt builds no bhyve driver elsewhere.
    name: 'bhyve', typeName: 'BHYVE', domain: 'BHYVE', modes: ['system'],
    missing: () => (process.platform === 'freebsd' ? undefined : new VirtError('NO_CONNECT', 'NONE', 'bhyve:///system')),
    // Without the driver libvirt names the URI the client asked for.
    checkOpen: (uri, mode, missing) => {
      if (process.platform !== 'freebsd') throw new VirtError('NO_CONNECT', 'NONE', canonicalUri(uri));
      missing();
      checkUriPath(uri.path, 'bhyve', mode, 'BHYVE');
    },
  },
  {
    name: 'vbox', typeName: 'VBOX', domain: 'VBOX', modes: ['session'],
    missing: () => (['/usr/lib/virtualbox/VBoxSVC', '/opt/VirtualBox/VBoxSVC'].some((p) => fs.existsSync(p)) ? undefined
      : new VirtError('INTERNAL_ERROR', 'VBOX', 'unable to initialize VirtualBox driver API')),
    checkOpen: (uri, mode, missing) => { missing(); checkUriPath(uri.path, 'vbox', mode, 'VBOX'); },
  },
];

export function absentHypervisor(name: DriverName): (ctx: DriverContext) => Driver {
  const spec = ABSENT.find((a) => a.name === name)!;
  return (ctx) => {
    const missing = (): void => {
      const why = spec.missing(ctx.mode);
      if (why) throw why;
    };
    return {
      name, scheme: name, typeName: spec.typeName, hypervisor: true, modes: spec.modes,
      ...(STATE_DRIVER_NAMES[name] ? { stateName: STATE_DRIVER_NAMES[name] } : {}),
      async stateInit(): Promise<void> {
        const why = spec.missing(ctx.mode);
        if (why) ctx.log.info(`${name} driver inactive on this host: ${why.message}`);
      },
      checkOpen: (uri: ParsedUri) => spec.checkOpen(uri, ctx.mode, missing),
    };
  };
}

interface HostSide {
  typeName: string;
  domain: DomainName;
  modes: readonly Mode[];
  /** The URI path it opens, whatever the mode (nwfilter: only /system). */
  fixedPath?: Mode;
  /** See Driver.opensWithoutInstance. */
  opensWithoutInstance?: boolean;
}

// network, interface and nodedev keep per-user state in session mode (an
// empty network list, the host's interfaces and devices, as libvirt 9.0's
// session instances show); nwfilter's state driver skips itself unless
// privileged, and its open wants /system in any mode.
const HOST_SIDE: Record<string, HostSide> = {
  network: { typeName: 'network', domain: 'NETWORK', modes: ['system', 'session'] },
  interface: { typeName: 'interface', domain: 'INTERFACE', modes: ['system', 'session'] },
  nodedev: { typeName: 'nodedev', domain: 'NODEDEV', modes: ['system', 'session'] },
  nwfilter: { typeName: 'nwfilter', domain: 'NWFILTER', modes: ['system'], fixedPath: 'system', opensWithoutInstance: true },
  storage: { typeName: 'storage', domain: 'STORAGE', modes: ['system', 'session'] },
};

export function hostSideDriver(name: DriverName): (ctx: DriverContext) => Driver {
  const spec = HOST_SIDE[name]!;
  return (ctx) => ({
    name, scheme: name, typeName: spec.typeName, stateName: STATE_DRIVER_NAMES[name]!, hypervisor: false, modes: spec.modes,
    ...(spec.opensWithoutInstance ? { opensWithoutInstance: true } : {}),
    checkOpen: (uri: ParsedUri) => checkUriPath(uri.path, name, spec.fixedPath ?? ctx.mode, spec.domain),
  });
}
