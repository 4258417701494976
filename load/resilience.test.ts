import assert from 'node:assert/strict';
import { test } from 'node:test';
import { computeP99Recovery, FaultTracker } from './resilience.ts';
import { emptyOutcomeCounts, type SecondStats } from './types.ts';

function second(t: number, p99Ms: number, failed = 0): SecondStats {
  const outcomes = { ...emptyOutcomeCounts(), ok: 100 - failed, refused: failed };
  return { t, sent: 100, outcomes, p50: 500, p90: 800, p99: p99Ms * 1000, max: p99Ms * 1000 };
}

test('p99 recovery: from the fault to the first normal second without failures', () => {
  const timeline = [
    ...[0, 1, 2, 3, 4].map((t) => second(t, 2)),
    second(5, 900),
    second(6, 1, 100), // all refused, fast: not "back to normal"
    second(7, 3),
    second(8, 2),
  ];
  assert.deepEqual(computeP99Recovery(timeline, 5200), { preFaultP99: 2000, p99RecoveryMs: 1800 });
  assert.deepEqual(computeP99Recovery(timeline.slice(0, 5), 2500), { preFaultP99: 2000, p99RecoveryMs: 0 });
  assert.deepEqual(computeP99Recovery(timeline.slice(0, 7), 5200).p99RecoveryMs, null);
});

test('fault tracker: failed requests, availability and first success after the first failure', () => {
  const tracker = new FaultTracker('monolith', 1000, 5000);
  tracker.observe(1000, 1010, true);
  tracker.observe(1100, 1300, false);
  tracker.observe(1200, 1250, false);
  tracker.observe(1300, 1800, true);
  tracker.observe(1400, 1700, true);
  const r = tracker.result({ preFaultP99: 1000, p99RecoveryMs: 900 });
  assert.equal(r.requests, 5);
  assert.equal(r.failed, 2);
  assert.equal(r.availability, 0.6);
  assert.equal(r.blastRadius, 0.4);
  assert.equal(r.firstSuccessAfterFailureMs, 700);
});
