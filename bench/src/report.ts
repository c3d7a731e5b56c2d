// Result rows and their rendering. A row is one metric, ours beside real;
// each side is a figure (median, min, max of its runs) or says plainly why
// there is none: "unavailable" (cannot be measured here, with the reason)
// or "pending" (the feature it needs has not landed yet).
import { figure, fmt, fmtFigure, type Figure } from './stats.js';

export type Value = { readonly figure: Figure } | { readonly unavailable: string } | { readonly pending: string };

export interface Row {
  /** Stable id, e.g. `cold.systemctl.libvirtd`; tests look rows up by it. */
  readonly id: string;
  readonly metric: string;
  readonly unit: string;
  readonly better: 'lower' | 'higher';
  readonly ours: Value;
  readonly real: Value;
  /** ours ÷ real, medians; absent unless both sides have a figure. */
  readonly ratio?: number;
  readonly note?: string;
  /** A reference figure that is neither side (the `cat` floor of the log pipe). */
  readonly reference?: { readonly label: string; readonly figure: Figure };
}

export interface Samples { readonly samples: number[]; readonly errors: string[] }

export const newSamples = (): Samples => ({ samples: [], errors: [] });

/** A side's value from its samples: a figure, or unavailable with the first error seen. */
export function valueOf(s: Samples, unavailable?: string): Value {
  if (unavailable) return { unavailable };
  const f = figure(s.samples);
  if (f) return { figure: f };
  return { unavailable: s.errors[0] ?? 'no sample' };
}

export function makeRow(r: Omit<Row, 'ratio'>): Row {
  const o = 'figure' in r.ours ? r.ours.figure : undefined;
  const t = 'figure' in r.real ? r.real.figure : undefined;
  return o && t && t.median !== 0 ? { ...r, ratio: o.median / t.median } : { ...r };
}

function cell(v: Value): string {
  if ('figure' in v) return fmtFigure(v.figure);
  if ('pending' in v) return 'pending';
  return 'unavailable';
}

const esc = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The main table: metric, ours, real, ratio, and a note column for reasons and caveats. */
export function renderTable(rows: readonly Row[]): string {
  const lines = [
    '| metric | ours | real libvirt 9.0 | ratio (ours ÷ real) | note |',
    '|---|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    const notes: string[] = [];
    for (const [side, v] of [['ours', r.ours], ['real', r.real]] as const) {
      if ('unavailable' in v) notes.push(`${side} unavailable: ${v.unavailable}`);
      if ('pending' in v) notes.push(`${side} pending: ${v.pending}`);
    }
    if (r.reference) notes.push(`${r.reference.label}: ${fmtFigure(r.reference.figure)} ${r.unit}`);
    if (r.note) notes.push(r.note);
    const ratio = r.ratio === undefined ? '—' : `${r.ratio.toFixed(2)}×`;
    lines.push(`| ${esc(r.metric)} (${r.unit}, ${r.better} is better) | ${cell(r.ours)} | ${cell(r.real)} | ${ratio} | ${esc(notes.join('; '))} |`);
  }
  return lines.join('\n');
}

export { fmt };
