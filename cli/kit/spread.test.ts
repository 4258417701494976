import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatSpread, spreadOf } from './spread.ts';

describe('spreadOf', () => {
  it('gives the median with min and max, the middle two averaged for an even count', () => {
    assert.deepEqual(spreadOf([30, 10, 20]), { median: 20, min: 10, max: 30, n: 3 });
    assert.deepEqual(spreadOf([4, 1, 3, 2]), { median: 2.5, min: 1, max: 4, n: 4 });
    assert.deepEqual(spreadOf([7]), { median: 7, min: 7, max: 7, n: 1 });
  });

  it('ignores what is not a number and gives null for nothing', () => {
    assert.equal(spreadOf([]), null);
    assert.equal(spreadOf([Number.NaN]), null);
    assert.deepEqual(spreadOf([5, Number.NaN, 1]), { median: 3, min: 1, max: 5, n: 2 });
  });
});

describe('formatSpread', () => {
  it('writes median (min–max) with the digits asked, and a dash for nothing', () => {
    assert.equal(formatSpread([3.256, 1, 2], 2), '2.00 (1.00–3.26)');
    assert.equal(formatSpread([10, 20], 0), '15 (10–20)');
    assert.equal(formatSpread([], 1), '–');
  });
});
