// The QEMU driver, as far as this daemon family goes today: it finds the
// real emulators (qemu-system-*) and KVM, reports the host and what it
// found, and says so when it found nothing. Domains are not managed yet.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import type { ParsedUri } from '@virtd/protocol/uri';
import type { Driver, DriverContext } from './driver.js';
import { checkUriPath } from './uri-path.js';
import { capabilitiesXml, type GuestArch } from './host/capabilities.js';
import { nodeInfo, hostname, type NodeInfo } from './host/facts.js';
import { hostUuid } from './host/uuid.js';

const WORDSIZE_64 = /^(x86_64|aarch64|ppc64|ppc64le|s390x|riscv64|mips64|mips64el|sparc64|loongarch64)$/;
const SEARCH = ['/usr/local/bin', '/usr/bin', '/usr/libexec', '/bin'];

interface Probe {
  guests: GuestArch[];
  /** QEMU's version in libvirt's integer form, from the first emulator. */
  version?: number;
}

function findEmulators(): string[] {
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

function kvmUsable(): boolean {
  try { fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK); return true; } catch { return false; }
}

function probe(log: DriverContext['log']): Probe {
  const out: Probe = { guests: [] };
  const kvm = kvmUsable();
  for (const emulator of findEmulators()) {
    const arch = path.basename(emulator).replace(/^qemu-system-/, '');
    try {
      const help = execFileSync(emulator, ['-machine', 'help'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] });
      const machines = help.split('\n').slice(1).map((l) => l.trim().split(/\s+/)[0]!).filter((m) => m && m !== 'none');
      if (out.version === undefined) {
        const v = /version (\d+)\.(\d+)\.(\d+)/.exec(execFileSync(emulator, ['--version'], { encoding: 'utf8', timeout: 5000 }));
        if (v) out.version = Number(v[1]) * 1_000_000 + Number(v[2]) * 1000 + Number(v[3]);
      }
      const native = arch === process.arch.replace('x64', 'x86_64').replace('arm64', 'aarch64');
      out.guests.push({
        arch, emulator, machines,
        wordsize: WORDSIZE_64.test(arch) ? 64 : 32,
        domains: kvm && native ? ['qemu', 'kvm'] : ['qemu'],
      });
    } catch (e) {
      log.warn({ err: e, emulator }, 'cannot probe emulator; leaving it out of the capabilities');
    }
  }
  return out;
}

export function qemuDriver(ctx: DriverContext): Driver {
  let cached: Probe | undefined;
  const caps = (): Probe => (cached ??= probe(ctx.log));
  const cfg = ctx.rt.config as { hostUuid?: string; hostUuidSource?: 'smbios' | 'machine-id' };
  return {
    name: 'qemu',
    scheme: 'qemu',
    typeName: 'QEMU',
    stateName: 'QEMU',
    hypervisor: true,
    modes: ['system', 'session'],
    async stateInit(): Promise<void> {
      const p = caps();
      ctx.log.info(p.guests.length
        ? `QEMU emulators found: ${p.guests.map((g) => g.emulator).join(', ')}${kvmUsable() ? '; KVM available' : '; no KVM'}`
        : 'no QEMU emulator (qemu-system-*) found on this host');
    },
    async stateReload(): Promise<void> { cached = undefined; caps(); },
    checkOpen: (uri: ParsedUri) => checkUriPath(uri.path, 'qemu', ctx.mode, 'QEMU'),
    // No emulator found: the version is unknown, not zero.
    hvVersion: () => caps().version,
    hostname,
    capabilities: () => capabilitiesXml(hostUuid({ ...(cfg.hostUuid ? { configured: cfg.hostUuid } : {}), source: cfg.hostUuidSource ?? 'smbios' }), caps().guests),
    nodeInfo: (): NodeInfo => nodeInfo(),
  };
}
