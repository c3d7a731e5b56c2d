// The fifteen daemons, as data over one core. Everything that differs
// between them is here: names, socket prefix, which drivers and programs
// they carry, whether they listen on IP, run per user, re-exec on SIGUSR1.
// The binaries, the unit files, the default config files and the docs are
// all generated from or checked against this one table.
import type { DaemonDescriptor, DaemonModule, DaemonRuntime } from '@virtd/core';
import type { DriverName } from '@virtd/drivers';
import { libvirtdUnit, virtproxydUnit, modularUnit, virtlogdUnit, virtlockdUnit, type UnitFacts } from './units.js';

export type { DriverName };

/** libvirtd's load order (facts §0), restricted to the drivers we ship. */
export const ALL_DRIVERS: readonly DriverName[] = [
  'network', 'interface', 'secret', 'storage', 'nodedev', 'nwfilter', 'xen', 'qemu', 'lxc', 'vbox', 'bhyve',
];

/**
 * Drivers with a per-user (session) instance, as in libvirt 9.0: network,
 * interface and nodedev serve network:///session and the like too. The
 * rest (xen, lxc, bhyve, nwfilter) skip themselves unless privileged.
 */
export const SESSION_DRIVERS: readonly DriverName[] = ['qemu', 'vbox', 'network', 'interface', 'nodedev', 'secret', 'storage'];

/**
 * The drivers are loaded only when the daemon starts serving. A modular
 * daemon's one driver is mandatory: if it has no instance in this mode the
 * daemon stops after start-up, as libvirt's does.
 */
const withDrivers = (names: readonly DriverName[], mandatory = false) => (rt: DaemonRuntime): DaemonModule => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { driverModule } = require('@virtd/drivers') as typeof import('@virtd/drivers');
  return driverModule(rt, names, { mandatory });
};

interface ModularSpec { driver: DriverName; title: string }

/** virt${DRIVER}d: the daemon binary name for each driver. */
const MODULAR: readonly ModularSpec[] = [
  { driver: 'qemu', title: 'qemu' },
  { driver: 'xen', title: 'xen' },
  { driver: 'lxc', title: 'lxc' },
  { driver: 'bhyve', title: 'bhyve' },
  { driver: 'vbox', title: 'vbox' },
  { driver: 'interface', title: 'interface' },
  { driver: 'network', title: 'network' },
  { driver: 'nodedev', title: 'nodedev' },
  { driver: 'nwfilter', title: 'nwfilter' },
  { driver: 'secret', title: 'secret' },
  { driver: 'storage', title: 'storage' },
];

/** xen's modular daemon is virtxend (libxl driver). */
export const daemonForDriver = (driver: DriverName): string => `virt${driver}d`;

export interface VirtdDescriptor extends DaemonDescriptor {
  readonly drivers: readonly DriverName[];
  /** "Libvirt qemu", the prefix of unit descriptions. */
  readonly unitTitle: string;
  /** What its systemd units say. */
  readonly unit: UnitFacts;
}

export const libvirtd: VirtdDescriptor = {
  name: 'libvirtd',
  sockPrefix: 'libvirt',
  family: 'remote',
  summary: 'libvirt management daemon',
  unitTitle: 'Libvirt',
  withIP: true,
  listenFlag: true,
  sessionSupported: true,
  execRestart: false,
  drivers: ALL_DRIVERS,
  load: withDrivers(ALL_DRIVERS),
  unit: libvirtdUnit,
};

export const virtproxyd: VirtdDescriptor = {
  name: 'virtproxyd',
  sockPrefix: 'libvirt',
  family: 'remote',
  summary: 'libvirt proxy daemon',
  unitTitle: 'Libvirt proxy',
  withIP: true,
  listenFlag: false,
  sessionSupported: true,
  execRestart: false,
  drivers: [],
  unit: virtproxydUnit,
  load: (rt) => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { proxyModule } = require('@virtd/proxy') as typeof import('@virtd/proxy');
    return proxyModule(rt);
  },
};

export const modular: readonly VirtdDescriptor[] = MODULAR.map(({ driver, title }) => ({
  name: daemonForDriver(driver),
  sockPrefix: daemonForDriver(driver),
  family: 'remote' as const,
  summary: `libvirt ${title} management daemon`,
  unitTitle: `Libvirt ${title}`,
  withIP: false,
  listenFlag: false,
  sessionSupported: SESSION_DRIVERS.includes(driver),
  execRestart: false,
  drivers: [driver],
  load: withDrivers([driver], true),
  unit: modularUnit(driver, daemonForDriver(driver)),
}));

export const virtlogd: VirtdDescriptor = {
  name: 'virtlogd',
  sockPrefix: 'virtlogd',
  family: 'logd',
  summary: 'libvirt log management daemon',
  unitTitle: 'Virtual machine log manager',
  unit: virtlogdUnit,
  withIP: false,
  listenFlag: false,
  sessionSupported: true,
  execRestart: true,
  drivers: [],
  load: (rt) => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { logdModule } = require('@virtd/logd') as typeof import('@virtd/logd');
    return logdModule(rt);
  },
};

export const virtlockd: VirtdDescriptor = {
  name: 'virtlockd',
  sockPrefix: 'virtlockd',
  family: 'lockd',
  summary: 'libvirt lock management daemon',
  unitTitle: 'Virtual machine lock manager',
  unit: virtlockdUnit,
  withIP: false,
  listenFlag: false,
  sessionSupported: true,
  execRestart: true,
  drivers: [],
  load: (rt) => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { lockdModule } = require('@virtd/lockd') as typeof import('@virtd/lockd');
    return lockdModule(rt);
  },
};

/** Every daemon, in the order the docs and units list them. */
export const DAEMONS: readonly VirtdDescriptor[] = [libvirtd, ...modular, virtproxyd, virtlogd, virtlockd];

export function descriptor(name: string): VirtdDescriptor {
  const d = DAEMONS.find((x) => x.name === name);
  if (!d) throw new Error(`no daemon named '${name}'`);
  return d;
}
