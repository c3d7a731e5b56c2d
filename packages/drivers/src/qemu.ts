// The QEMU driver, as far as this daemon family goes today: it finds the
// real emulators (qemu-system-*) and KVM, reports the host and what it
// found, and says so when it found nothing. Domains are not managed yet.
import fs from 'node:fs';
import path from 'node:path';
import type { ParsedUri } from '@virtd/protocol/uri';
import type { Driver, DriverContext } from './driver.js';
import { checkUriPath } from './uri-path.js';
import { probeEmulators } from './qemu-probe.js';
import { capabilitiesXml, type GuestArch } from './host/capabilities.js';
import { nodeInfo, hostname, type NodeInfo } from './host/facts.js';
import { hostUuid } from './host/uuid.js';

const WORDSIZE_64 = /^(x86_64|aarch64|ppc64|ppc64le|s390x|riscv64|mips64|mips64el|sparc64|loongarch64)$/;

interface Probe {
  guests: GuestArch[];
  /** QEMU's version in libvirt's integer form, from the first emulator. */
  version?: number;
}

function kvmUsable(): boolean {
  try { fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK); return true; } catch { return false; }
}

async function probe(log: DriverContext['log'], cacheFile: string | undefined): Promise<Probe> {
  const out: Probe = { guests: [] };
  const kvm = kvmUsable();
  for (const p of await probeEmulators(cacheFile)) {
    const { emulator } = p;
    const arch = path.basename(emulator).replace(/^qemu-system-/, '');
    // The version comes from the first emulator that answers; one whose
    // version cannot be asked while it is still needed is left out, as is
    // one that cannot list its machine types.
    const err = p.machinesError ?? (out.version === undefined ? p.versionError : undefined);
    if (err !== undefined || !p.machines) {
      log.warn({ err, emulator }, 'cannot probe emulator; leaving it out of the capabilities');
      continue;
    }
    if (out.version === undefined && p.version !== undefined) out.version = p.version;
    const native = arch === process.arch.replace('x64', 'x86_64').replace('arm64', 'aarch64');
    out.guests.push({
      arch, emulator, machines: [...p.machines],
      wordsize: WORDSIZE_64.test(arch) ? 64 : 32,
      domains: kvm && native ? ['qemu', 'kvm'] : ['qemu'],
    });
  }
  return out;
}

export function qemuDriver(ctx: DriverContext): Driver {
  // Found once by stateInit, before any call is served; a reload swaps in
  // the new answers when they are complete.
  let cached: Probe = { guests: [] };
  const caps = (): Probe => cached;
  // System mode only: a session daemon's cache directory may be its run
  // directory ($HOME/.cache/libvirt without XDG_RUNTIME_DIR), which holds
  // nothing but sockets and the pid file.
  const cacheFile = ctx.mode === 'system' ? path.join(ctx.rt.paths.cacheDir, 'qemu', 'capabilities.json') : undefined;
  const cfg = ctx.rt.config as { hostUuid?: string; hostUuidSource?: 'smbios' | 'machine-id' };
  return {
    name: 'qemu',
    scheme: 'qemu',
    typeName: 'QEMU',
    stateName: 'QEMU',
    hypervisor: true,
    modes: ['system', 'session'],
    async stateInit(): Promise<void> {
      const p = cached = await probe(ctx.log, cacheFile);
      ctx.log.info(p.guests.length
        ? `QEMU emulators found: ${p.guests.map((g) => g.emulator).join(', ')}${kvmUsable() ? '; KVM available' : '; no KVM'}`
        : 'no QEMU emulator (qemu-system-*) found on this host');
    },
    async stateReload(): Promise<void> { cached = await probe(ctx.log, cacheFile); },
    checkOpen: (uri: ParsedUri) => checkUriPath(uri.path, 'qemu', ctx.mode, 'QEMU'),
    // No emulator found: the version is unknown, not zero.
    hvVersion: () => caps().version,
    hostname,
    capabilities: () => capabilitiesXml(hostUuid({ ...(cfg.hostUuid ? { configured: cfg.hostUuid } : {}), source: cfg.hostUuidSource ?? 'smbios' }), caps().guests),
    nodeInfo: (): NodeInfo => nodeInfo(),
  };
}
