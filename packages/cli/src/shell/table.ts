// virsh's table layout: a leading space, columns three spaces apart, a
// dashed rule under the header two characters longer than the widest row.
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    ` ${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('   ')}`.trimEnd();
  const rule = '-'.repeat(1 + widths.reduce((a, b) => a + b, 0) + 3 * (widths.length - 1) + 2);
  return [line(header), rule, ...rows.map(line)].join('\n') + '\n';
}

/** "key    : value" lines with the key padded, as virt-admin prints parameters. */
export const kv = (key: string, value: string | number, width: number): string => `${key.padEnd(width)}: ${value}\n`;

/** libvirt's timestamp form for connection times: 2026-11-26 03:37:00+0000 (local time). */
export function localTime(epochSec: number): string {
  const d = new Date(epochSec * 1000);
  const off = -d.getTimezoneOffset();
  const pad = (n: number, w = 2): string => String(Math.abs(n)).padStart(w, '0');
  const sign = off >= 0 ? '+' : '-';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} `
    + `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}${sign}${pad(Math.trunc(off / 60))}${pad(off % 60)}`;
}
