import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findMaxRate, judgeStep, roundRate, type SearchOptions, type StepVerdict } from './search.ts';

/** A synthetic target that sustains any rate up to `capacity` and fails above it. */
function stub(capacity: number, generatorAbove = Number.POSITIVE_INFINITY) {
  const asked: number[] = [];
  const measure = async (rate: number): Promise<StepVerdict> => {
    asked.push(rate);
    if (rate > generatorAbove)
      return { rate, ok: false, reason: 'generator fell behind', generatorBound: true };
    return rate <= capacity ? { rate, ok: true, reason: 'ok' } : { rate, ok: false, reason: 'p99 too high' };
  };
  return { measure, asked };
}

const options: SearchOptions = {
  startRate: 250,
  maxRate: 64_000,
  minRate: 10,
  bisectSteps: 4,
  resolution: 0.05,
};

describe('findMaxRate', () => {
  it('doubles up to the first failure, then bisects towards the capacity', async () => {
    const { measure, asked } = stub(3000);
    const result = await findMaxRate(measure, options);
    assert.deepEqual(asked.slice(0, 5), [250, 500, 1000, 2000, 4000]);
    assert.deepEqual(asked.slice(5), [3000, 3500, 3250, 3150]);
    assert.equal(result.maxRate, 3000);
    assert.equal(result.best?.rate, 3000);
    assert.equal(result.firstFailure?.rate, 3150);
    assert.equal(result.generatorBound, false);
    assert.equal(result.steps.length, asked.length);
  });

  it('never reports a rate that failed and never exceeds the capacity', async () => {
    for (const capacity of [37, 260, 999, 1234, 7777, 20_000]) {
      const { measure } = stub(capacity);
      const result = await findMaxRate(measure, options);
      assert.ok(result.maxRate <= capacity, `capacity ${capacity}: found ${result.maxRate}`);
      assert.ok(result.steps.every((s) => s.ok === s.rate <= capacity));
      // Four bisection steps from a doubling bracket get within 1/16 of the bracket.
      assert.ok(result.maxRate >= capacity * 0.85, `capacity ${capacity}: found only ${result.maxRate}`);
    }
  });

  it('halves below the start rate when the start already fails', async () => {
    const { measure, asked } = stub(90);
    const result = await findMaxRate(measure, options);
    assert.deepEqual(asked.slice(0, 3), [250, 130, 65]);
    assert.ok(result.maxRate >= 65 && result.maxRate <= 90);
  });

  it('reports 0 when nothing passes down to the minimum rate', async () => {
    const { measure } = stub(5);
    const result = await findMaxRate(measure, options);
    assert.equal(result.maxRate, 0);
    assert.equal(result.best, null);
    assert.equal(result.steps.at(-1)?.rate, 10);
  });

  it('stops at the ceiling without a failure', async () => {
    const { measure, asked } = stub(1e9);
    const result = await findMaxRate(measure, { ...options, maxRate: 3000 });
    assert.deepEqual(asked, [250, 500, 1000, 2000, 3000]);
    assert.equal(result.maxRate, 3000);
    assert.equal(result.firstFailure, null);
  });

  it('says when the generator, not the target, set the limit', async () => {
    const { measure } = stub(1e9, 5000);
    const result = await findMaxRate(measure, options);
    assert.equal(result.generatorBound, true);
    assert.ok(result.maxRate <= 5000 && result.maxRate >= 4000);
  });

  it('retries a failing rate once when asked, so one noisy step does not end the climb', async () => {
    let noisy = true;
    const asked: number[] = [];
    const measure = async (rate: number): Promise<StepVerdict> => {
      asked.push(rate);
      if (rate === 1000 && noisy) {
        noisy = false;
        return { rate, ok: false, reason: 'noise' };
      }
      return rate <= 3000 ? { rate, ok: true, reason: 'ok' } : { rate, ok: false, reason: 'p99 too high' };
    };
    const result = await findMaxRate(measure, { ...options, confirmFailures: true, bisectSteps: 0 });
    assert.deepEqual(asked, [250, 500, 1000, 1000, 2000, 4000, 4000]);
    assert.equal(result.maxRate, 2000);
    assert.equal(result.firstFailure?.rate, 4000);
  });

  it('runs no bisection when asked for none', async () => {
    const { measure, asked } = stub(3000);
    await findMaxRate(measure, { ...options, bisectSteps: 0 });
    assert.deepEqual(asked, [250, 500, 1000, 2000, 4000]);
  });
});

describe('roundRate', () => {
  it('keeps rates readable', () => {
    assert.equal(roundRate(3333), 3350);
    assert.equal(roundRate(456), 460);
    assert.equal(roundRate(12.4), 12);
    assert.equal(roundRate(0.2), 1);
  });
});

describe('judgeStep', () => {
  const step = {
    rate: 1000,
    sent: 2000,
    ok: 2000,
    errors: 0,
    p99Us: 4000,
    throughput: 1000,
    generatorBehind: false,
  };
  it('passes a clean step under the bound', () => {
    assert.equal(judgeStep(step, 50_000).ok, true);
  });
  it('fails on any error, naming it', () => {
    const v = judgeStep({ ...step, ok: 1999, errors: 1, errorSample: 'reset' }, 50_000);
    assert.equal(v.ok, false);
    assert.match(v.reason, /1 failed of 2000 \(reset\)/);
  });
  it('fails on a p99 above the bound', () => {
    const v = judgeStep({ ...step, p99Us: 50_001 }, 50_000);
    assert.equal(v.ok, false);
    assert.notEqual(v.generatorBound, true);
  });
  it('fails and blames the generator when it fell behind', () => {
    const v = judgeStep({ ...step, generatorBehind: true }, 50_000);
    assert.equal(v.ok, false);
    assert.equal(v.generatorBound, true);
  });
});
