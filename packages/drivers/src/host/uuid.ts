// The host UUID reported in the capabilities: host_uuid from the config,
// else SMBIOS (host_uuid_source = "smbios", readable by root only) falling
// back to /etc/machine-id, the source "machine-id" selects directly.
import fs from 'node:fs';

const asUuid = (hex: string): string =>
  `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;

export function hostUuid(opts: { configured?: string; source: 'smbios' | 'machine-id' }): string | undefined {
  if (opts.configured) return opts.configured;
  if (opts.source === 'smbios') {
    try {
      const v = fs.readFileSync('/sys/class/dmi/id/product_uuid', 'utf8').trim().toLowerCase();
      if (/^[0-9a-f-]{36}$/.test(v)) return v;
    } catch { /* not readable: fall back */ }
  }
  try {
    const id = fs.readFileSync('/etc/machine-id', 'utf8').trim().toLowerCase();
    if (/^[0-9a-f]{32}$/.test(id)) return asUuid(id);
  } catch { /* none */ }
  return undefined;
}
