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
  stateInit?(): Promise<void>;
  stateReload?(): Promise<void>;
  stateCleanup?(): Promise<void>;
  /**
   * Checks the URI is one this driver opens here (right path for the mode,
   * hypervisor present); throws libvirt's error otherwise.
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

export type DriverFactory = (ctx: DriverContext) => Driver;
