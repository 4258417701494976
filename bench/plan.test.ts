import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  costOf,
  formatClock,
  PLANS,
  ProgressClock,
  stepWindowMs,
  throughputTargets,
  tradeoffs,
  withRounds,
} from './plan.ts';
import { estimateBench, PHASES } from './run-bench.ts';
import { TARGET_NAMES } from './types.ts';

describe('the plans', () => {
  it('plan --quick for every target under 5 minutes on a 2-core machine, before reruns', () => {
    const quick = estimateBench(PLANS.quick, TARGET_NAMES);
    assert.ok(quick.totalMs < 5 * 60_000, `quick is planned at ${formatClock(quick.totalMs)}`);
    assert.ok(quick.totalMs > 60_000, 'and it is not an empty plan');
  });

  it('estimate every phase, and more for more rounds, more targets and the full plan', () => {
    const quick = estimateBench(PLANS.quick, TARGET_NAMES);
    assert.deepEqual(
      quick.phases.map((p) => p.phase),
      ['set-up', ...PHASES.map((p) => p.title)],
    );
    const tracingOf = (e: ReturnType<typeof estimateBench>) =>
      e.phases.find((p) => p.phase === 'tracing cost')!;
    assert.ok(quick.phases.filter((p) => p !== tracingOf(quick)).every((p) => p.ms > 0));
    assert.equal(tracingOf(quick).ms, 0, 'quick leaves the tracing cost out');
    assert.ok(tracingOf(estimateBench(PLANS.full, TARGET_NAMES)).ms > 0);
    assert.ok(estimateBench(PLANS.full, TARGET_NAMES).totalMs > quick.totalMs);
    assert.ok(estimateBench(withRounds(PLANS.quick, 5), TARGET_NAMES).totalMs > quick.totalMs);
    assert.ok(estimateBench(PLANS.quick, ['floor', 'monolith']).totalMs < quick.totalMs);
    // The throughput phase costs a first round and two cheaper later ones per target and size searched.
    const searches = estimateBench(PLANS.quick, ['floor']).phases.find(
      (p) => p.phase === 'max throughput',
    )!.ms;
    assert.equal(searches, costOf.search(PLANS.quick, '4k', 0) + 2 * costOf.search(PLANS.quick, '4k', 1));
  });

  it('repeat every figure at least 3 times, in quick as in full', () => {
    assert.ok(PLANS.quick.rounds >= 3 && PLANS.full.rounds >= 3);
    assert.ok(PLANS.quick.coldStartRounds >= 3);
  });

  it('say what quick gives up against full, and full gives up nothing', () => {
    const lines = tradeoffs(PLANS.quick);
    assert.ok(lines.some((l) => /no max throughput at 64 KiB/.test(l)));
    assert.ok(
      lines.some((l) => /max throughput at 1 MiB for monolith, microkernel, microkernel-shm only/.test(l)),
    );
    assert.ok(
      lines.some((l) =>
        /max throughput at 4 KiB for floor, nginx, monolith, microkernel, unikernel only/.test(l),
      ),
    );
    assert.ok(lines.some((l) => /latency for floor, nginx, monolith, microkernel, unikernel only/.test(l)));
    assert.ok(lines.some((l) => /latency and RSS at 4 KiB only/.test(l)));
    assert.ok(lines.some((l) => /search steps of 1 s instead of 3 s/.test(l)));
    assert.ok(lines.some((l) => /6 rates per doubling instead of 8: maxima to 12% instead of 9%/.test(l)));
    assert.deepEqual(tradeoffs(PLANS.full), []);
    assert.ok(tradeoffs(withRounds(PLANS.full, 1)).some((l) => /no spread worth reading/.test(l)));
  });

  it('search 1 MiB in quick only where issue #17 compares it', () => {
    assert.deepEqual(throughputTargets(PLANS.quick, '1m', TARGET_NAMES), [
      'monolith',
      'microkernel',
      'microkernel-shm',
    ]);
    assert.deepEqual(throughputTargets(PLANS.quick, '64k', TARGET_NAMES), []);
    assert.deepEqual(throughputTargets(PLANS.full, '64k', TARGET_NAMES), [...TARGET_NAMES]);
  });

  it('stretch a search step at low rates to hold enough requests, up to three windows', () => {
    assert.equal(stepWindowMs(PLANS.quick, 4000), 1000);
    assert.equal(stepWindowMs(PLANS.quick, 20), 2000);
    assert.equal(stepWindowMs(PLANS.quick, 1), 3000);
  });
});

describe('ProgressClock', () => {
  it('counts down the plan at the planned pace until a tenth is done', () => {
    const clock = new ProgressClock(100_000, 0);
    clock.advance(5000);
    assert.deepEqual(clock.status(20_000), { elapsedMs: 20_000, remainingMs: 95_000 });
  });

  it('scales what is left by the pace so far, and grows with reruns', () => {
    const clock = new ProgressClock(100_000, 0);
    clock.advance(50_000);
    // Half the plan took 75 s instead of 50 s: the rest should take 1.5× its plan.
    assert.deepEqual(clock.status(75_000), { elapsedMs: 75_000, remainingMs: 75_000 });
    clock.extend(10_000);
    assert.equal(clock.status(75_000).remainingMs, 90_000);
    assert.equal(clock.label(75_000), '[1:15 elapsed · ~1:30 left]');
  });

  it('never says less than nothing is left', () => {
    const clock = new ProgressClock(10_000, 0);
    clock.advance(20_000);
    assert.equal(clock.status(5000).remainingMs, 0);
  });
});
