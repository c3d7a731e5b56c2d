// The secret driver: definitions and values kept in memory, persistent ones
// mirrored to disk through the store, ephemeral ones never written. Private
// values are never returned over RPC. Changes raise events; while any
// ephemeral secret exists the daemon does not auto-shutdown (it would lose
// them).
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { VirtError } from '@virtd/errors';
import type { ParsedUri } from '@virtd/protocol/uri';
import type { Driver, DriverContext } from '../driver.js';
import { checkUriPath } from '../uri-path.js';
import { parseSecretXml, formatSecretXml, normalizeUuid, type SecretDef, type UsageType } from './def.js';
import { SecretStore, type StoredSecret } from './store.js';

export type SecretEvent =
  | { kind: 'lifecycle'; def: SecretDef; lifecycle: 'defined' | 'undefined'; timestamp: number }
  | { kind: 'value-changed'; def: SecretDef; timestamp: number };

/** libvirt's VIR_CONNECT_LIST_SECRETS_* flags. */
export const LIST = { EPHEMERAL: 1, NO_EPHEMERAL: 2, PRIVATE: 4, NO_PRIVATE: 8 } as const;

export class SecretDriver implements Driver {
  readonly name = 'secret' as const;
  readonly scheme = 'secret';
  readonly typeName = 'secret';
  readonly stateName = 'secret';
  readonly hypervisor = false;
  readonly modes = ['system', 'session'] as const;
  readonly events = new EventEmitter<{ event: [SecretEvent] }>();
  private readonly ctx: DriverContext;
  private readonly store: SecretStore;
  private readonly secrets = new Map<string, StoredSecret>();
  private releaseInhibit: (() => void) | undefined;

  constructor(ctx: DriverContext) {
    this.ctx = ctx;
    this.store = new SecretStore(path.join(ctx.rt.paths.configDir, 'secrets'), ctx.log);
    this.events.setMaxListeners(0);
  }

  async stateInit(): Promise<void> {
    for (const s of this.store.load()) this.secrets.set(s.def.uuid, s);
    this.ctx.log.info(`loaded ${this.secrets.size} secret(s) from ${this.store.dir}`);
  }

  async stateReload(): Promise<void> {
    // Persistent secrets are re-read from disk; ephemeral ones stay as they are.
    const ephemeral = [...this.secrets.values()].filter((s) => s.def.ephemeral);
    this.secrets.clear();
    for (const s of this.store.load()) this.secrets.set(s.def.uuid, s);
    for (const s of ephemeral) if (!this.secrets.has(s.def.uuid)) this.secrets.set(s.def.uuid, s);
  }

  async stateCleanup(): Promise<void> {
    this.releaseInhibit?.();
    this.releaseInhibit = undefined;
  }

  checkOpen(uri: ParsedUri): void {
    checkUriPath(uri.path, 'secret', this.ctx.mode, 'SECRET');
  }

  // ---- operations ----------------------------------------------------------

  define(xml: string): SecretDef {
    const def = parseSecretXml(xml);
    const existing = this.secrets.get(def.uuid);
    if (existing) {
      if (existing.def.usageType !== def.usageType || existing.def.usageId !== def.usageId) {
        throw new VirtError('INTERNAL_ERROR', 'SECRET',
          `a secret with UUID ${def.uuid} already defined for use with ${existing.def.usageId}`);
      }
      if (existing.def.private && !def.private) {
        throw new VirtError('INVALID_SECRET', 'SECRET', 'cannot change private flag on existing secret');
      }
    } else if (def.usageType !== 'none') {
      const clash = this.byUsage(def.usageType, def.usageId);
      if (clash) {
        throw new VirtError('INTERNAL_ERROR', 'SECRET',
          `a secret with UUID ${clash.def.uuid} already defined for use with ${def.usageId}`);
      }
    }
    if (!def.ephemeral) {
      // An ephemeral secret made persistent goes to disk whole: value, then definition.
      if (existing?.def.ephemeral) this.store.saveNew(def, existing.value);
      else this.store.saveDef(def);
    } else if (existing && !existing.def.ephemeral) {
      this.store.remove(def.uuid);
    }
    this.secrets.set(def.uuid, { def, ...(existing?.value ? { value: existing.value } : {}) });
    this.updateInhibit();
    this.emit({ kind: 'lifecycle', def, lifecycle: 'defined', timestamp: Date.now() });
    return def;
  }

  undefine(uuid: string): void {
    const s = this.lookup(uuid);
    if (!s.def.ephemeral) this.store.remove(s.def.uuid);
    this.secrets.delete(s.def.uuid);
    this.updateInhibit();
    this.emit({ kind: 'lifecycle', def: s.def, lifecycle: 'undefined', timestamp: Date.now() });
  }

  lookup(uuid: string): StoredSecret {
    const u = normalizeUuid(uuid);
    const s = u ? this.secrets.get(u) : undefined;
    if (!s) throw new VirtError('NO_SECRET', 'SECRET', `no secret with matching uuid '${uuid}'`);
    return s;
  }

  lookupByUsage(type: UsageType, id: string): StoredSecret {
    const s = this.byUsage(type, id);
    if (!s) throw new VirtError('NO_SECRET', 'SECRET', `no secret with matching usage '${id}'`);
    return s;
  }

  list(flags: number): SecretDef[] {
    return [...this.secrets.values()].map((s) => s.def).filter((d) =>
      !((flags & LIST.EPHEMERAL) && !d.ephemeral) && !((flags & LIST.NO_EPHEMERAL) && d.ephemeral)
      && !((flags & LIST.PRIVATE) && !d.private) && !((flags & LIST.NO_PRIVATE) && d.private))
      .sort((a, b) => a.uuid.localeCompare(b.uuid));
  }

  xml(uuid: string): string {
    return formatSecretXml(this.lookup(uuid).def);
  }

  setValue(uuid: string, value: Buffer): void {
    const s = this.lookup(uuid);
    if (!s.def.ephemeral) this.store.saveValue(s.def.uuid, value);
    s.value = Buffer.from(value);
    this.emit({ kind: 'value-changed', def: s.def, timestamp: Date.now() });
  }

  /** The value for a client: never for private secrets. */
  value(uuid: string): Buffer {
    const s = this.lookup(uuid);
    if (s.def.private) throw new VirtError('INVALID_SECRET', 'SECRET', 'secret is private');
    if (!s.value) throw new VirtError('NO_SECRET', 'SECRET', `secret '${s.def.uuid}' does not have a value`);
    return s.value;
  }

  private byUsage(type: UsageType, id: string): StoredSecret | undefined {
    return [...this.secrets.values()].find((s) => s.def.usageType === type && s.def.usageId === id);
  }

  private emit(e: SecretEvent): void {
    this.events.emit('event', e);
  }

  private updateInhibit(): void {
    const any = [...this.secrets.values()].some((s) => s.def.ephemeral);
    if (any && !this.releaseInhibit) this.releaseInhibit = this.ctx.rt.autoShutdown.inhibit();
    else if (!any && this.releaseInhibit) { this.releaseInhibit(); this.releaseInhibit = undefined; }
  }
}
