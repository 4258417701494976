import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  createHistogram,
  decodeHistogram,
  encodeHistogram,
  mergeHistograms,
  recordMicros,
} from './histogram.ts';
import { createPrng } from './request-mix.ts';

test('merged histograms are the sum of their parts: count, min, max and every percentile of the union', () => {
  for (const digits of [2, 3] as const) {
    const random = createPrng(7);
    const whole = createHistogram(digits);
    const parts = [createHistogram(digits), createHistogram(digits), createHistogram(digits)];
    // Long-tailed values from 1 µs to ~10 s, each to one part chosen at random (parts get unequal shares).
    for (let i = 0; i < 50_000; i++) {
      const us = 1 + random() ** 6 * 10_000_000;
      recordMicros(whole, us);
      recordMicros(parts[Math.floor(random() * random() * 3)]!, us);
    }
    const merged = mergeHistograms(parts.map(encodeHistogram));
    assert.equal(merged.totalCount, whole.totalCount);
    assert.equal(
      merged.totalCount,
      parts.reduce((n, p) => n + p.totalCount, 0),
    );
    assert.equal(merged.minNonZeroValue, whole.minNonZeroValue);
    // Encoded, a histogram keeps buckets: its max is the top of the largest value's bucket, as the whole's is.
    assert.equal(merged.maxValue, decodeHistogram(encodeHistogram(whole)).maxValue);
    assert.ok(Math.abs(merged.maxValue - whole.maxValue) <= whole.maxValue * 10 ** -digits);
    for (const p of [0, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100])
      assert.equal(merged.getValueAtPercentile(p), whole.getValueAtPercentile(p), `p${p}, ${digits} digits`);
    assert.equal(merged.mean, whole.mean);
  }
});

test('merging nothing gives an empty histogram', () => {
  assert.equal(mergeHistograms([]).totalCount, 0);
});
