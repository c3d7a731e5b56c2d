// Typed access to a parsed file, with libvirt's type rules and wording
// (virConfGetValue*): a missing key reads as undefined, a present key of the
// wrong type or out of range is an error naming file, position and key.
import type { CodeName } from '@virtd/errors';
import { ConfError } from './errors.js';
import type { ConfFile, ConfSetting, ConfValue } from './grammar.js';

const UINT_MAX = 0xffff_ffffn;
const INT_MIN = -0x8000_0000n;
const INT_MAX = 0x7fff_ffffn;
// size_t is 64-bit in libvirt; we hand out a JS number, so the exact-integer
// limit is the ceiling instead.
const SIZE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

/** Throw a ConfError pointing at a setting's value. */
export function failAt(file: ConfFile, setting: ConfSetting, reason: string, code: CodeName = 'CONF_SYNTAX'): never {
  throw new ConfError({
    file: file.filename, line: setting.value.line, column: setting.value.column, reason, key: setting.name, code,
  });
}

function integerOf(file: ConfFile, s: ConfSetting, unsigned: boolean): bigint {
  const v = s.value;
  if (v.kind !== 'integer' || (unsigned && v.signed)) {
    // libvirt reports type mismatches as internal errors; kept for the numbering.
    failAt(file, s, unsigned
      ? `expected an unsigned integer for '${s.name}' parameter`
      : `expected a signed integer for '${s.name}' parameter`, 'INTERNAL_ERROR');
  }
  return v.value;
}

function inRange(file: ConfFile, s: ConfSetting, n: bigint, min: bigint, max: bigint): number {
  if (n < min || n > max) {
    failAt(file, s, `value for '${s.name}' parameter must be in range ${min}:${max}`, 'INTERNAL_ERROR');
  }
  return Number(n);
}

/** 0 or 1, written unsigned (`-0` is a signed literal and refused, as in libvirt). */
export function getBool(file: ConfFile, key: string): boolean | undefined {
  const s = file.lookup(key);
  if (!s) return undefined;
  if (s.value.kind !== 'integer' || s.value.signed) {
    failAt(file, s, `expected a bool for '${key}' parameter`, 'INTERNAL_ERROR');
  }
  if (s.value.value > 1n) failAt(file, s, `value for '${key}' parameter must be 0 or 1`, 'INTERNAL_ERROR');
  return s.value.value === 1n;
}

/** Unsigned 32-bit. */
export function getUInt(file: ConfFile, key: string): number | undefined {
  const s = file.lookup(key);
  return s && inRange(file, s, integerOf(file, s, true), 0n, UINT_MAX);
}

/** Unsigned size, up to Number.MAX_SAFE_INTEGER. */
export function getSizeT(file: ConfFile, key: string): number | undefined {
  const s = file.lookup(key);
  return s && inRange(file, s, integerOf(file, s, true), 0n, SIZE_MAX);
}

/** Signed 32-bit; an unsigned literal is fine. */
export function getInt(file: ConfFile, key: string): number | undefined {
  const s = file.lookup(key);
  return s && inRange(file, s, integerOf(file, s, false), INT_MIN, INT_MAX);
}

export function getString(file: ConfFile, key: string): string | undefined {
  const s = file.lookup(key);
  if (!s) return undefined;
  if (s.value.kind !== 'string') failAt(file, s, `expected a string for '${key}' parameter`, 'INTERNAL_ERROR');
  return s.value.value;
}

/** A list of strings; a lone string is refused (the daemons read their lists strictly). */
export function getStringList(file: ConfFile, key: string): string[] | undefined {
  const s = file.lookup(key);
  if (!s) return undefined;
  if (s.value.kind !== 'list') failAt(file, s, `expected a string list for '${key}' parameter`, 'INTERNAL_ERROR');
  return s.value.items.map((item: ConfValue) => {
    if (item.kind !== 'string') {
      // Point at the offending item rather than the list.
      throw new ConfError({
        file: file.filename, line: item.line, column: item.column, key,
        reason: `expected a string list for '${key}' parameter`,
      });
    }
    return item.value;
  });
}

/** What every typed loader returns: the frozen config and the keys the file sets that the daemon does not read. */
export interface LoadedConfig<T> {
  config: Readonly<T>;
  unknownKeys: string[];
}

/**
 * The getters bound to one (possibly absent) file, remembering which keys a
 * loader asked for so that whatever else the file sets can be reported as
 * unknown, and so the set of keys a daemon reads can be listed without a
 * second, drifting copy of it.
 */
export class ConfReader {
  private readonly asked = new Set<string>();
  private readonly ignored = new Set<string>();

  constructor(readonly file: ConfFile | undefined) {}

  private get<T>(key: string, getter: (f: ConfFile, k: string) => T | undefined): T | undefined {
    this.asked.add(key);
    return this.file && getter(this.file, key);
  }

  bool(key: string): boolean | undefined { return this.get(key, getBool); }
  uint(key: string): number | undefined { return this.get(key, getUInt); }
  sizeT(key: string): number | undefined { return this.get(key, getSizeT); }
  int(key: string): number | undefined { return this.get(key, getInt); }
  string(key: string): string | undefined { return this.get(key, getString); }
  stringList(key: string): string[] | undefined { return this.get(key, getStringList); }

  /** The setting behind a key already read, to point an error at it. */
  setting(key: string): ConfSetting | undefined {
    return this.file?.lookup(key);
  }

  /** Accept a key without reading it (obsolete keys that old files still carry). */
  ignore(key: string): void {
    this.ignored.add(key);
  }

  /** Throw a ConfError at `key`'s value; `key` must be set in the file. */
  fail(key: string, reason: string, code: CodeName = 'CONF_SYNTAX'): never {
    const s = this.setting(key);
    if (!this.file || !s) throw new Error(`internal: no setting '${key}' to report "${reason}" against`);
    failAt(this.file, s, reason, code);
  }

  /** Keys the loader reads, in the order it read them. */
  readKeys(): string[] {
    return [...this.asked];
  }

  /** Names set in the file that nothing read or ignored, first occurrence order. */
  unknownKeys(): string[] {
    const names = new Set((this.file?.settings ?? []).map((s) => s.name));
    return [...names].filter((n) => !this.asked.has(n) && !this.ignored.has(n));
  }
}
