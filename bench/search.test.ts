import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  contradictingRound,
  decideStep,
  findMaxRate,
  judgeStep,
  type Ladder,
  ladderResolution,
  rateAt,
  roundRate,
  rungAtOrBelow,
  rungRange,
  type SearchOptions,
  type StepVerdict,
} from './search.ts';

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

const ladder: Ladder = { base: 250, perDoubling: 4, min: 10, max: 64_000 };
const firstRound: SearchOptions = { ladder, startRung: 0, step: 4, accelerate: false };

describe('the ladder', () => {
  it('doubles every perDoubling rungs, rounded to readable rates', () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4, 8].map((k) => rateAt(ladder, k)),
      [250, 300, 350, 420, 500, 1000],
    );
    assert.equal(rateAt(ladder, -4), 130);
  });

  it('finds the rung at or below a rate and keeps within [min, max]', () => {
    assert.equal(rungAtOrBelow(ladder, 1000), 8);
    assert.equal(rungAtOrBelow(ladder, 999), 7);
    assert.equal(rungAtOrBelow(ladder, 1), rungRange(ladder).low);
    assert.equal(rungAtOrBelow(ladder, 1e9), rungRange(ladder).high);
    assert.equal(rateAt(ladder, rungRange(ladder).high), 64_000);
    // The quick ladder's rung 11 is 1000 × 2^(11/6) = 3,564, rounded to 3,550: a median of 3,550 (a
    // later round's start) is that rung, not the one below (3,150).
    const quick: Ladder = { base: 1000, perDoubling: 6, min: 10, max: 64_000 };
    assert.equal(rateAt(quick, 11), 3550);
    assert.equal(rungAtOrBelow(quick, 3550), 11);
    assert.equal(rungAtOrBelow(quick, 3549), 10);
  });

  it('says its resolution', () => {
    assert.ok(Math.abs(ladderResolution(ladder) - 0.189) < 0.001);
  });
});

describe('findMaxRate', () => {
  it('doubles up to the first failure, then bisects to adjacent rungs', async () => {
    const { measure, asked } = stub(3000);
    const result = await findMaxRate(measure, firstRound);
    assert.deepEqual(asked.slice(0, 5), [250, 500, 1000, 2000, 4000]);
    // Bisection between rungs 12 (2000) and 16 (4000): 14 (2850), 15 (3350).
    assert.deepEqual(asked.slice(5), [2850, 3350]);
    assert.equal(result.maxRate, 2850);
    assert.equal(result.best?.rate, 2850);
    assert.equal(result.firstFailure?.rate, 3350);
    assert.equal(result.generatorBound, false);
    assert.equal(result.steps.length, asked.length);
  });

  it('never reports a rate that failed and ends within one rung of the capacity', async () => {
    for (const capacity of [37, 260, 999, 1234, 7777, 20_000]) {
      const { measure } = stub(capacity);
      const result = await findMaxRate(measure, firstRound);
      assert.ok(result.maxRate <= capacity, `capacity ${capacity}: found ${result.maxRate}`);
      assert.ok(result.steps.every((s) => s.ok === s.rate <= capacity));
      assert.ok(
        result.maxRate * (1 + ladderResolution(ladder)) * 1.02 >= capacity,
        `capacity ${capacity}: found only ${result.maxRate}`,
      );
    }
  });

  it('halves below the start rate when the start already fails', async () => {
    const { measure, asked } = stub(90);
    const result = await findMaxRate(measure, firstRound);
    assert.deepEqual(asked.slice(0, 3), [250, 130, 63]);
    assert.ok(result.maxRate >= 63 && result.maxRate <= 90);
  });

  it('reports 0 when nothing passes down to the minimum rate', async () => {
    const { measure } = stub(5);
    const result = await findMaxRate(measure, firstRound);
    assert.equal(result.maxRate, 0);
    assert.equal(result.best, null);
    assert.equal(result.steps.at(-1)?.rate, rateAt(ladder, rungRange(ladder).low));
  });

  it('stops at the ceiling without a failure', async () => {
    const { measure, asked } = stub(1e9);
    const result = await findMaxRate(measure, { ...firstRound, ladder: { ...ladder, max: 3000 } });
    assert.deepEqual(asked, [250, 500, 1000, 2000, 2850]);
    assert.equal(result.maxRate, 2850);
    assert.equal(result.firstFailure, null);
  });

  it('says when the generator, not the target, set the limit', async () => {
    const { measure } = stub(1e9, 5000);
    const result = await findMaxRate(measure, firstRound);
    assert.equal(result.generatorBound, true);
    assert.ok(result.maxRate <= 5000 && result.maxRate >= 4000);
  });

  it('starts a later round near the earlier ones: one rung, then two, four…', async () => {
    const near = stub(3000);
    const up = await findMaxRate(near.measure, {
      ladder,
      startRung: rungAtOrBelow(ladder, 2400),
      step: 1,
      accelerate: true,
    });
    assert.deepEqual(near.asked, [2400, 2850, 4000, 3350]);
    assert.equal(up.maxRate, 2850);

    const fallen = stub(700);
    const down = await findMaxRate(fallen.measure, {
      ladder,
      startRung: rungAtOrBelow(ladder, 2850),
      step: 1,
      accelerate: true,
    });
    // 2850 ✗, 2400 ✗ (−1 rung), 1700 ✗ (−2), 840 ✗ (−4), then 210 ✓ (−8) and bisection back up.
    assert.deepEqual(fallen.asked.slice(0, 5), [2850, 2400, 1700, 840, 210]);
    assert.ok(down.maxRate <= 700 && down.maxRate >= 590, `found ${down.maxRate}`);
  });
});

describe('decideStep', () => {
  const undecided: StepVerdict = {
    rate: 1000,
    ok: false,
    undecided: true,
    reason: 'p99 50.4 ms within the noise floor',
  };
  it('measures an undecided step again and takes the decided answer', async () => {
    const answers = [undecided, { rate: 1000, ok: false, reason: 'p99 70 ms > 50 ms' }];
    const taken = await decideStep(async () => answers.shift()!, 2);
    assert.equal(taken.length, 2);
    assert.equal(taken.at(-1)!.ok, false);
  });

  it('decides on errors and schedule when the p99 stays within the noise floor', async () => {
    const taken = await decideStep(async () => undecided, 2);
    assert.equal(taken.length, 2);
    assert.equal(taken.at(-1)!.ok, true);
    assert.equal(taken.at(-1)!.undecided, false);
    assert.match(taken.at(-1)!.reason, /decided on errors and schedule/);
  });

  it('measures a step the generator fell behind in again, and takes it if it holds', async () => {
    const behind: StepVerdict = {
      rate: 2000,
      ok: false,
      generatorBound: true,
      undecided: true,
      reason: 'generator fell behind (p99 33.4 ms)',
    };
    const answers = [behind, { rate: 2000, ok: true, reason: 'ok, p99 2.6 ms' }];
    const taken = await decideStep(async () => answers.shift()!, 2);
    assert.equal(taken.length, 2);
    assert.equal(taken.at(-1)!.ok, true);
  });

  it('fails a step the generator fell behind in every time, bounded by the generator', async () => {
    const behind: StepVerdict = {
      rate: 32000,
      ok: false,
      generatorBound: true,
      undecided: true,
      reason: 'generator fell behind (p99 45.1 ms)',
    };
    const taken = await decideStep(async () => behind, 2);
    assert.equal(taken.length, 2);
    const last = taken.at(-1)!;
    assert.equal(last.ok, false);
    assert.equal(last.generatorBound, true);
    assert.equal(last.undecided, false);
    assert.match(last.reason, /generator fell behind \(p99 45\.1 ms\) in 2 measurement/);
  });

  it('takes a decided step at once', async () => {
    let calls = 0;
    const taken = await decideStep(async () => {
      calls++;
      return { rate: 1000, ok: true, reason: 'ok' };
    }, 3);
    assert.equal(calls, 1);
    assert.equal(taken.length, 1);
  });
});

describe('contradictingRound', () => {
  const round = (r: number, maxRate: number, failedAt: number, generatorBound = false) => ({
    round: r,
    maxRate,
    steps: [
      { rate: maxRate, ok: true, reason: 'ok' },
      { rate: failedAt, ok: false, reason: 'p99', generatorBound },
    ],
  });

  it('names the outlying round when a rate passed well above one that failed in another round', () => {
    const c = contradictingRound([round(0, 3000, 3500), round(1, 6000, 7000), round(2, 6000, 7000)], 0.2);
    assert.equal(c?.round, 0);
    assert.match(c!.reason, /6000 req\/s passed in round 2 but 3500 req\/s failed in round 1/);
  });

  it('measures the later of two contradicting rounds again: two rounds cannot say which is wrong', () => {
    assert.equal(contradictingRound([round(0, 200, 220), round(1, 89, 110)], 0.2)?.round, 1);
    assert.equal(contradictingRound([round(0, 89, 110), round(1, 200, 220)], 0.2)?.round, 1);
  });

  it('lets rounds that agree within the tolerance be', () => {
    assert.equal(contradictingRound([round(0, 3000, 3500), round(1, 3500, 4000)], 0.2), null);
  });

  it('counts a generator that fell behind at a rate it held in another round as a contradiction too', () => {
    assert.equal(
      contradictingRound([round(0, 800, 900, true), round(1, 11_300, 12_700), round(2, 900, 1000, true)], 0.2)
        ?.round,
      1,
    );
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
  it('leaves a p99 within the noise floor of the bound undecided', () => {
    const v = judgeStep({ ...step, p99Us: 51_000 }, 50_000, 2000);
    assert.equal(v.undecided, true);
    assert.match(v.reason, /within the noise floor \(2\.0 ms\) of the 50 ms bound/);
    assert.equal(judgeStep({ ...step, p99Us: 53_000 }, 50_000, 2000).undecided, undefined);
  });
  it('fails and blames the generator when it fell behind, undecided until it falls behind again', () => {
    const v = judgeStep({ ...step, generatorBehind: true }, 50_000);
    assert.equal(v.ok, false);
    assert.equal(v.generatorBound, true);
    assert.equal(v.undecided, true);
  });
});
