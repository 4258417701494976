import * as hdr from 'hdr-histogram-js';
import type { LatencySummary } from './types.ts';

export type Histogram = hdr.Histogram;

/** Highest value a histogram tracks: one hour in microseconds. Larger values are clamped to it. */
export const HISTOGRAM_MAX_US = 3_600_000_000;

/** A full-resolution histogram (3 significant digits) of integer microseconds. */
export function createHistogram(significantDigits: 2 | 3 = 3): Histogram {
  return hdr.build({
    bitBucketSize: 32,
    autoResize: false,
    lowestDiscernibleValue: 1,
    highestTrackableValue: HISTOGRAM_MAX_US,
    numberOfSignificantValueDigits: significantDigits,
    useWebAssembly: false,
  });
}

export function recordMicros(histogram: Histogram, us: number): void {
  histogram.recordValue(Math.min(HISTOGRAM_MAX_US, Math.max(0, Math.round(us))));
}

export function summarize(histogram: Histogram): LatencySummary {
  if (histogram.totalCount === 0) return { count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 };
  return {
    count: histogram.totalCount,
    p50: histogram.getValueAtPercentile(50),
    p90: histogram.getValueAtPercentile(90),
    p99: histogram.getValueAtPercentile(99),
    p999: histogram.getValueAtPercentile(99.9),
    max: histogram.maxValue,
    mean: Math.round(histogram.mean),
  };
}

export function encodeHistogram(histogram: Histogram): string {
  return hdr.encodeIntoCompressedBase64(histogram);
}

export function decodeHistogram(base64: string): Histogram {
  return hdr.decodeFromCompressedBase64(base64, 32, false);
}

/**
 * The union of encoded histograms: one histogram whose counts are the sum of theirs, so its count, min,
 * max and percentiles are those of all their values together. Empty (3 digits) when there are none.
 */
export function mergeHistograms(encoded: readonly string[]): Histogram {
  if (encoded.length === 0) return createHistogram();
  const [first, ...rest] = encoded.map(decodeHistogram);
  for (const h of rest) {
    first!.add(h);
    h.destroy();
  }
  return first!;
}

/** Points of the percentile-distribution curve: percentile (0..100) and value at it, up to the max. */
export function percentileCurve(histogram: Histogram): { percentile: number; value: number }[] {
  if (histogram.totalCount === 0) return [];
  const points: { percentile: number; value: number }[] = [];
  const ticks = [0, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 92.5, 95, 96, 97, 97.5, 98, 98.5, 99];
  for (const p of ticks) points.push({ percentile: p, value: histogram.getValueAtPercentile(p) });
  for (let nines = 2; nines <= 6; nines++) {
    const base = 100 - 10 ** (2 - nines);
    for (const step of [0, 0.25, 0.5, 0.75, 0.9]) {
      const p = base + step * 10 ** (2 - nines) * 0.9;
      if (p > 99) points.push({ percentile: p, value: histogram.getValueAtPercentile(p) });
    }
  }
  // The curve ends where the data ends: 1/(1-p) beyond the sample count says nothing.
  const lastMeaningful = 100 * (1 - 1 / histogram.totalCount);
  const kept = points.filter((pt) => pt.percentile <= lastMeaningful);
  kept.push({
    percentile: Math.max(lastMeaningful, kept.at(-1)?.percentile ?? 0),
    value: histogram.maxValue,
  });
  return kept;
}
