/**
 * The median of repeated measurements with their range: how every figure of the project is reported
 * (the bench's tables, and the measurement scripts of the console, the microkernel and the unikernel).
 */

/** The median of some repeated measurements, with their range. */
export type Spread = { median: number; min: number; max: number; n: number };

/** Median (the mean of the middle two for an even count), min and max; null when nothing is finite. */
export function spreadOf(values: readonly number[]): Spread | null {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted.at(-1)!, n: sorted.length };
}

/** `median (min–max)` with `digits` decimals; `–` when nothing is finite. */
export function formatSpread(values: readonly number[], digits: number): string {
  const s = spreadOf(values);
  if (!s) return '–';
  return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
}
