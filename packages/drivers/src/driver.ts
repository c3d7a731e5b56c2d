// What a driver is: the URI scheme it serves, the modes it runs in, its
// state lifecycle (init at start-up, reload on SIGHUP, cleanup at stop),
// whether it currently holds auto-shutdown off, and the programs it adds.
import type { Logger } from 'pino';
import type { DaemonRuntime, Program, Mode } from '@virtd/core';
import type { ParsedUri } from '@virtd/protocol/uri';
import type { NodeInfo } from './host/facts.js';

export type DriverName =
  | 'qemu' | 'xen' | 'lxc' | 'bhyve' | 'vbox'
  | 'network' | 'interface' | 'nodedev' | 'nwfilter' | 'secret' | 'storage';

export interface DriverContext {
  readonly rt: DaemonRuntime;
  readonly mode: Mode;
  readonly log: Logger;
}

export interface Driver {
  readonly name: DriverName;
  /** The URI scheme it serves (qemu, secret, …). */
  readonly scheme: string;
  /** What GetType reports (QEMU, secret, …). */
  readonly typeName: string;
  /** Hypervisor drivers answer host-level calls and are picked for an empty URI. */
  readonly hypervisor: boolean;
  /** Modes with an instance of this driver. */
  readonly modes: readonly Mode[];
  /**
   * libvirt's name for its state driver ("LXC", "Xen", "NWFilter"), as its
   * start-up errors print it; unset for a driver libvirt keeps no state for
   * (vbox), which therefore never skips itself.
   */
  readonly stateName?: string;
  /**
   * Opens even in a mode without an instance: libvirt's nwfilter allocates
   * its driver before it skips itself unprivileged, so a session libvirtd
   * still opens nwfilter:///system (and lists no filters).
   */
  readonly opensWithoutInstance?: boolean;
  stateInit?(): Promise<void>;
  stateReload?(): Promise<void>;
  stateCleanup?(): Promise<void>;
  /**
   * Checks the URI is one this driver opens here (right path for the mode,
   * hypervisor present); throws libvirt's error otherwise. Called in a mode
   * without an instance too, since libvirt's drivers check the URI path
   * before (lxc) or instead of (nwfilter) their state.
   */
  checkOpen(uri: ParsedUri): void;
  /** Hypervisor version, libvirt's integer form; undefined when not known. */
  hvVersion?(): number | undefined;
  hostname?(): string;
  capabilities?(): string;
  nodeInfo?(): NodeInfo;
  /** Programs this driver adds to the main server. */
  programs?(): Program[];
}

/** libvirt 9.0's virStateDriver names (vbox has none). */
export const STATE_DRIVER_NAMES: Readonly<Partial<Record<DriverName, string>>> = {
  qemu: 'QEMU', xen: 'Xen', lxc: 'LXC', bhyve: 'bhyve', network: 'bridge', interface: 'udev', nodedev: 'udev',
  nwfilter: 'NWFilter', secret: 'secret', storage: 'storage',
};

export type DriverFactory = (ctx: DriverContext) => Driver;
