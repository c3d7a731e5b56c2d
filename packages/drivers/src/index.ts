// A daemon's drivers as one module for the core: the Connect program, the
// programs the drivers add, and the drivers' state lifecycle. libvirtd
// loads all drivers in-process; each virt${DRIVER}d exactly its own.
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

export function driverModule(rt: DaemonRuntime, names: readonly DriverName[]): DaemonModule {
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
export { DriverRegistry } from './registry.js';
export { parseSecretXml, formatSecretXml, type SecretDef } from './secret/def.js';
export { nodeInfo, cpuInfo, numaCells } from './host/facts.js';
