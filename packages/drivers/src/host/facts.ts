// The host as /proc and /sys describe it: what nodeinfo and the host part
// of the capabilities report. Read at call time (cheap) so they are never
// stale; nothing here is invented: a fact the kernel does not expose is
// left out rather than guessed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const read = (p: string): string | undefined => {
  try { return fs.readFileSync(p, 'utf8'); } catch { return undefined; }
};

/** "0-3,8,10-11" → [0,1,2,3,8,10,11] */
export function parseCpuList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.trim().split(',').filter(Boolean)) {
    const [a, b] = part.split('-').map(Number);
    for (let i = a!; i <= (b ?? a!); i++) out.push(i);
  }
  return out;
}

export interface HostCpu {
  readonly id: number;
  readonly socketId: number;
  readonly dieId: number;
  readonly coreId: number;
  readonly siblings: string;
}

export interface NumaCell {
  readonly id: number;
  /** KiB */
  readonly memory: number;
  readonly cpus: readonly HostCpu[];
  readonly distances: readonly number[];
}

export interface CpuInfo {
  readonly arch: string;
  readonly vendor?: string;
  readonly modelName?: string;
  readonly family?: number;
  readonly model?: number;
  readonly stepping?: number;
  readonly microcode?: number;
  readonly mhz?: number;
  readonly flags: readonly string[];
}

export function cpuInfo(root = '/'): CpuInfo {
  const text = read(path.join(root, 'proc/cpuinfo')) ?? '';
  const first = text.split(/\n\n/)[0] ?? '';
  const field = (k: string): string | undefined => new RegExp(`^${k}\\s*:\\s*(.*)$`, 'm').exec(first)?.[1]?.trim();
  const num = (v: string | undefined): number | undefined => (v === undefined || v === '' ? undefined : Number(v));
  const vendorId = field('vendor_id');
  const vendor = vendorId === 'AuthenticAMD' ? 'AMD' : vendorId === 'GenuineIntel' ? 'Intel' : vendorId;
  const maxFreq = read(path.join(root, 'sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq'));
  const mhz = maxFreq ? Math.floor(Number(maxFreq) / 1000) : num(field('cpu MHz'));
  return {
    arch: os.machine(),
    ...(vendor ? { vendor } : {}),
    ...(field('model name') ? { modelName: field('model name')! } : {}),
    ...(num(field('cpu family')) !== undefined ? { family: num(field('cpu family'))! } : {}),
    ...(num(field('model')) !== undefined ? { model: num(field('model'))! } : {}),
    ...(num(field('stepping')) !== undefined ? { stepping: num(field('stepping'))! } : {}),
    ...(field('microcode') ? { microcode: Number(field('microcode')) } : {}),
    ...(mhz !== undefined && Number.isFinite(mhz) ? { mhz: Math.floor(mhz) } : {}),
    flags: (field('flags') ?? field('Features') ?? '').split(/\s+/).filter(Boolean),
  };
}

function cpuTopology(root: string, id: number): HostCpu {
  const topo = (f: string): string | undefined => read(path.join(root, `sys/devices/system/cpu/cpu${id}/topology/${f}`))?.trim();
  return {
    id,
    socketId: Number(topo('physical_package_id') ?? 0),
    dieId: Number(topo('die_id') ?? 0),
    coreId: Number(topo('core_id') ?? id),
    siblings: topo('thread_siblings_list') ?? String(id),
  };
}

/** NUMA cells from /sys/devices/system/node, or one cell for the whole host. */
export function numaCells(root = '/'): NumaCell[] {
  const online = parseCpuList(read(path.join(root, 'sys/devices/system/cpu/online')) ?? `0-${os.cpus().length - 1}`);
  const nodeDir = path.join(root, 'sys/devices/system/node');
  let nodes: number[] = [];
  try {
    nodes = fs.readdirSync(nodeDir).filter((n) => /^node\d+$/.test(n)).map((n) => Number(n.slice(4))).sort((a, b) => a - b);
  } catch { /* no NUMA information */ }
  if (!nodes.length) {
    const mem = /^MemTotal:\s+(\d+)/m.exec(read(path.join(root, 'proc/meminfo')) ?? '');
    return [{ id: 0, memory: Number(mem?.[1] ?? 0), cpus: online.map((id) => cpuTopology(root, id)), distances: [10] }];
  }
  return nodes.map((id) => {
    const dir = path.join(nodeDir, `node${id}`);
    const mem = /MemTotal:\s+(\d+)/.exec(read(path.join(dir, 'meminfo')) ?? '');
    const cpus = parseCpuList(read(path.join(dir, 'cpulist')) ?? '').filter((c) => online.includes(c));
    const distances = (read(path.join(dir, 'distance')) ?? '10').trim().split(/\s+/).map(Number);
    return { id, memory: Number(mem?.[1] ?? 0), cpus: cpus.map((c) => cpuTopology(root, c)), distances };
  });
}

/** libvirt's virNodeInfo. */
export interface NodeInfo {
  model: string;
  memory: number;
  cpus: number;
  mhz: number;
  nodes: number;
  sockets: number;
  cores: number;
  threads: number;
}

export function nodeInfo(root = '/'): NodeInfo {
  const cells = numaCells(root);
  const cpu = cpuInfo(root);
  const all = cells.flatMap((c) => c.cpus);
  const sockets = new Set(all.map((c) => c.socketId)).size || 1;
  const cores = new Set(all.map((c) => `${c.socketId}:${c.dieId}:${c.coreId}`)).size || all.length;
  // libvirt reports sockets per NUMA node, cores per socket, threads per core.
  return {
    model: cpu.arch,
    memory: cells.reduce((a, c) => a + c.memory, 0),
    cpus: all.length,
    mhz: cpu.mhz ?? 0,
    nodes: cells.length,
    sockets: Math.max(1, Math.round(sockets / cells.length)),
    cores: Math.max(1, Math.round(cores / sockets)),
    threads: Math.max(1, Math.round(all.length / cores)),
  };
}

export function hostname(): string {
  return os.hostname();
}
