// libvirt's capabilities XML, host part from /proc and /sys and guest part
// from the emulators actually found. Only what the host really reports.
import { escapeAttr, escapeText } from '../xml.js';
import { cpuInfo, numaCells } from './facts.js';

export interface GuestArch {
  readonly arch: string;
  readonly wordsize: number;
  readonly emulator: string;
  readonly machines: readonly string[];
  /** Domain types available: qemu always, kvm when /dev/kvm is usable. */
  readonly domains: readonly string[];
}

export function capabilitiesXml(hostUuid: string | undefined, guests: readonly GuestArch[]): string {
  const cpu = cpuInfo();
  const cells = numaCells();
  const all = cells.flatMap((c) => c.cpus);
  const sockets = new Set(all.map((c) => c.socketId)).size || 1;
  const dies = new Set(all.map((c) => `${c.socketId}:${c.dieId}`)).size / sockets || 1;
  const cores = new Set(all.map((c) => `${c.socketId}:${c.dieId}:${c.coreId}`)).size || all.length;
  const out: string[] = ['<capabilities>', '', '  <host>'];
  if (hostUuid) out.push(`    <uuid>${hostUuid}</uuid>`);
  out.push('    <cpu>', `      <arch>${escapeText(cpu.arch)}</arch>`);
  if (cpu.vendor) out.push(`      <vendor>${escapeText(cpu.vendor)}</vendor>`);
  if (cpu.microcode !== undefined) out.push(`      <microcode version='${cpu.microcode}'/>`);
  if (cpu.family !== undefined && cpu.model !== undefined && cpu.stepping !== undefined) {
    out.push(`      <signature family='${cpu.family}' model='${cpu.model}' stepping='${cpu.stepping}'/>`);
  }
  out.push(`      <topology sockets='${sockets}' dies='${Math.round(dies)}' cores='${Math.round(cores / sockets / dies)}' threads='${Math.max(1, Math.round(all.length / cores))}'/>`);
  for (const f of cpu.flags) out.push(`      <feature name='${escapeAttr(f)}'/>`);
  out.push('    </cpu>');
  out.push('    <topology>', `      <cells num='${cells.length}'>`);
  for (const c of cells) {
    out.push(`        <cell id='${c.id}'>`, `          <memory unit='KiB'>${c.memory}</memory>`, '          <distances>');
    c.distances.forEach((d, i) => out.push(`            <sibling id='${cells[i]?.id ?? i}' value='${d}'/>`));
    out.push('          </distances>', `          <cpus num='${c.cpus.length}'>`);
    for (const p of c.cpus) {
      out.push(`            <cpu id='${p.id}' socket_id='${p.socketId}' die_id='${p.dieId}' core_id='${p.coreId}' siblings='${escapeAttr(p.siblings)}'/>`);
    }
    out.push('          </cpus>', '        </cell>');
  }
  out.push('      </cells>', '    </topology>');
  out.push('    <secmodel>', '      <model>none</model>', '      <doi>0</doi>', '    </secmodel>', '  </host>', '');
  for (const g of guests) {
    out.push('  <guest>', '    <os_type>hvm</os_type>', `    <arch name='${escapeAttr(g.arch)}'>`,
      `      <wordsize>${g.wordsize}</wordsize>`, `      <emulator>${escapeText(g.emulator)}</emulator>`);
    for (const m of g.machines) out.push(`      <machine>${escapeText(m)}</machine>`);
    for (const d of g.domains) out.push(`      <domain type='${d}'/>`);
    out.push('    </arch>', '  </guest>', '');
  }
  out.push('</capabilities>');
  return out.join('\n') + '\n';
}
