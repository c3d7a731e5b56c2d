// What the QEMU emulators on this host offer (machine types, version),
// learnt by running them, the way libvirt's QEMU capabilities cache does:
// the answers are kept under the daemon's cache directory, keyed by each
// binary's inode, size, mtime and ctime, so a start after the first runs no
// emulator at all and a replaced or upgraded binary is probed again.
// Emulators that must be run are run at once, not one after the other:
// probing was libvirtd's largest start-up cost (four to eight synchronous
// child processes before READY).
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';

const SEARCH = ['/usr/local/bin', '/usr/bin', '/usr/libexec', '/bin'];
const PROBE_TIMEOUT_MS = 5000;
/** Bump when the cached shape or the way it is derived changes. */
const CACHE_FORMAT = 1;

/** One emulator's answers, or why it could not be asked. */
export interface EmulatorProbe {
  readonly emulator: string;
  /** `-machine help`, without "none"; absent when it failed. */
  readonly machines?: readonly string[];
  readonly machinesError?: unknown;
  /** `--version` in libvirt's integer form; undefined if not recognised. */
  readonly version?: number;
  readonly versionError?: unknown;
}

interface CacheEntry { key: string; machines: string[]; version?: number }
interface CacheFile { format: number; emulators: Record<string, CacheEntry> }

export function findEmulators(): string[] {
  const seen = new Map<string, string>();
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), ...SEARCH];
  for (const dir of dirs) {
    let names: string[] = [];
    try { names = fs.readdirSync(dir); } catch { continue; }
    for (const n of names) {
      if (!/^qemu-system-[\w.-]+$/.test(n) || seen.has(n)) continue;
      const p = path.join(dir, n);
      try { fs.accessSync(p, fs.constants.X_OK); seen.set(n, p); } catch { /* not executable */ }
    }
  }
  return [...seen.values()].sort();
}

function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { encoding: 'utf8', timeout: PROBE_TIMEOUT_MS }, (err, stdout) => {
      if (err) reject(err);
      else resolve(stdout);
    });
    child.stdin?.end();
  });
}

async function ask(emulator: string): Promise<EmulatorProbe> {
  const [help, ver] = await Promise.allSettled([run(emulator, ['-machine', 'help']), run(emulator, ['--version'])]);
  const machines = help.status === 'fulfilled'
    ? help.value.split('\n').slice(1).map((l) => l.trim().split(/\s+/)[0]!).filter((m) => m && m !== 'none')
    : undefined;
  let version: number | undefined;
  if (ver.status === 'fulfilled') {
    const v = /version (\d+)\.(\d+)\.(\d+)/.exec(ver.value);
    if (v) version = Number(v[1]) * 1_000_000 + Number(v[2]) * 1000 + Number(v[3]);
  }
  return {
    emulator,
    ...(machines ? { machines } : { machinesError: (help as PromiseRejectedResult).reason }),
    ...(version !== undefined ? { version } : {}),
    ...(ver.status === 'rejected' ? { versionError: ver.reason } : {}),
  };
}

/** What identifies one build of a binary: any change to the file changes it. */
function fileKey(file: string): string | undefined {
  try {
    const st = fs.statSync(file);
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  } catch {
    return undefined;
  }
}

function readCache(file: string): Record<string, CacheEntry> {
  try {
    const c = JSON.parse(fs.readFileSync(file, 'utf8')) as CacheFile;
    return c.format === CACHE_FORMAT && c.emulators && typeof c.emulators === 'object' ? c.emulators : {};
  } catch {
    return {};
  }
}

function writeCache(file: string, emulators: Record<string, CacheEntry>): void {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    // Whole or not at all: a reader never sees half a file.
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify({ format: CACHE_FORMAT, emulators } satisfies CacheFile), { mode: 0o600 });
    fs.renameSync(tmp, file);
  } catch {
    /* a read-only or full cache directory only costs the next start a probe */
  }
}

/**
 * Every emulator found, in path order, each from the cache when its binary
 * is unchanged, else by running it. `cacheFile` undefined: no cache.
 */
export async function probeEmulators(cacheFile: string | undefined): Promise<EmulatorProbe[]> {
  const cached = cacheFile ? readCache(cacheFile) : {};
  const emulators = findEmulators();
  const keys = new Map(emulators.map((e) => [e, fileKey(e)]));
  const probes = await Promise.all(emulators.map((e): EmulatorProbe | Promise<EmulatorProbe> => {
    const hit = cached[e];
    const key = keys.get(e);
    if (hit && key && hit.key === key && Array.isArray(hit.machines)) {
      return { emulator: e, machines: hit.machines, ...(hit.version !== undefined ? { version: hit.version } : {}) };
    }
    return ask(e);
  }));
  if (cacheFile) {
    // Only complete answers are kept; an emulator that failed is asked again next time.
    const next: Record<string, CacheEntry> = {};
    for (const p of probes) {
      const key = keys.get(p.emulator);
      if (key && p.machines && p.versionError === undefined) {
        next[p.emulator] = { key, machines: [...p.machines], ...(p.version !== undefined ? { version: p.version } : {}) };
      }
    }
    if (JSON.stringify(next) !== JSON.stringify(cached)) writeCache(cacheFile, next);
  }
  return probes;
}
