// A daemon's drivers as one module for the core: the Connect program, the
// programs the drivers add, and the drivers' state lifecycle. libvirtd
// loads all drivers in-process; each virt${DRIVER}d exactly its own.
import { VirtError } from '@virtd/errors';
import type { DaemonModule, DaemonRuntime } from '@virtd/core';
import type { Driver, DriverFactory, DriverName } from './driver.js';
import { DriverRegistry } from './registry.js';
import { connectProgram } from './connect.js';
import { qemuDriver } from './qemu.js';
import { absentHypervisor, hostSideDriver } from './others.js';
import { SecretDriver } from './secret/driver.js';
import { secretProgram } from './secret/program.js';

const FACTORIES: Record<DriverName, DriverFactory> = {
  qemu: qemuDriver,
  xen: absentHypervisor('xen'),
  lxc: absentHypervisor('lxc'),
  bhyve: absentHypervisor('bhyve'),
  vbox: absentHypervisor('vbox'),
  network: hostSideDriver('network'),
  interface: hostSideDriver('interface'),
  nodedev: hostSideDriver('nodedev'),
  nwfilter: hostSideDriver('nwfilter'),
  storage: hostSideDriver('storage'),
  secret: (ctx) => new SecretDriver(ctx),
};

export interface DriverModuleOptions {
  /**
   * Every driver must initialise, none may skip itself: a modular daemon
   * (libvirt's MODULE_NAME build) exists for its one driver, so a driver
   * with no instance in this mode fails start-up there, while libvirtd
   * carries on with the others.
   */
  readonly mandatory?: boolean;
}

/** libvirt's virStateInitialize failure for a mandatory driver that skipped itself. */
export class DriverSkippedError extends VirtError {
  constructor(stateName: string) {
    super('OPERATION_FAILED', 'NONE', undefined, { message: `Initialization of mandatory ${stateName} state driver skipped` });
    this.name = 'DriverSkippedError';
  }
}

export function driverModule(rt: DaemonRuntime, names: readonly DriverName[], options: DriverModuleOptions = {}): DaemonModule {
  const mode = rt.paths.mode;
  const drivers: Driver[] = names.map((n) => FACTORIES[n]({ rt, mode, log: rt.log(`driver.${n}`) }));
  const registry = new DriverRegistry(drivers);
  const programs = [connectProgram(registry, () => mode)];
  if (registry.get('secret')) programs.push(secretProgram(registry));
  const log = rt.log('driver');
  return {
    programs,
    async init(): Promise<void> {
      for (const d of drivers) {
        if (!d.modes.includes(mode)) {
          // libvirt's drivers say "Not running privileged, disabling driver".
          if (options.mandatory && d.stateName) throw new DriverSkippedError(d.stateName);
          log.info(`${d.name} driver has no ${mode} instance; skipped`);
          continue;
        }
        await d.stateInit?.();
      }
    },
    async reload(): Promise<void> {
      for (const d of drivers) await d.stateReload?.();
    },
    async cleanup(): Promise<void> {
      for (const d of [...drivers].reverse()) await d.stateCleanup?.();
    },
  };
}

export type { Driver, DriverContext, DriverName } from './driver.js';
export { STATE_DRIVER_NAMES } from './driver.js';
export { DriverRegistry } from './registry.js';
export { parseSecretXml, formatSecretXml, type SecretDef } from './secret/def.js';
export { nodeInfo, cpuInfo, numaCells } from './host/facts.js';
