// Figures: every measured value is the median of repeated runs, with the
// minimum and maximum beside it, so one noisy run cannot make the headline.

export interface Figure {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** The individual runs, in the order they were taken. */
  readonly samples: readonly number[];
}

export function figure(samples: readonly number[]): Figure | undefined {
  if (samples.length === 0) return undefined;
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, samples: [...samples] };
}

/** A number in a table: 3 significant figures, thousands grouped. */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

export function fmtFigure(f: Figure): string {
  return f.samples.length > 1 ? `${fmt(f.median)} (${fmt(f.min)}–${fmt(f.max)})` : fmt(f.median);
}
