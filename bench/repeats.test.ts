import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  breach,
  interleave,
  measureRounds,
  outlierIndex,
  pairedRatios,
  type RoundsSpec,
  type SanityRule,
} from './repeats.ts';

describe('interleave', () => {
  it('runs every target once per round in the same order: A B C A B C', () => {
    assert.deepEqual(
      interleave(['a', 'b', 'c'], 2).map((s) => `${s.target}${s.round}`),
      ['a0', 'b0', 'c0', 'a1', 'b1', 'c1'],
    );
    assert.deepEqual(interleave(['a'], 0), []);
  });
});

describe('outlierIndex', () => {
  it('finds the round farthest from the median when it is beyond the tolerance', () => {
    assert.equal(outlierIndex([1.0, 1.05, 0.97], 0.2), null);
    assert.equal(outlierIndex([1.0, 1.6, 0.97], 0.2), 1);
    // Symmetric as factors: 0.5 is as far from 1 as 2.
    assert.equal(outlierIndex([1.0, 1.0, 0.5], 0.2), 2);
    assert.equal(outlierIndex([1.0, 1.19], 0.2), null);
    assert.equal(outlierIndex([5], 0.2), null);
  });
});

const below: SanityRule<'nginx' | 'floor' | 'monolith'> = {
  id: 'nginx-below-floor',
  subject: 'nginx',
  reference: 'floor',
  bound: 'not-worse',
  factor: 1.2,
  describe: 'nginx below the node:http floor',
};

describe('breach', () => {
  const above: SanityRule = {
    id: 'monolith-above-floor',
    subject: 'monolith',
    reference: 'floor',
    bound: 'not-better',
    factor: 1.5,
    describe: 'monolith far above the floor',
  };

  it('holds within the factor and breaks beyond it, for rates', () => {
    assert.equal(breach(below, 9000, 10_000, true), null);
    assert.match(
      breach(below, 7000, 10_000, true)!,
      /nginx below the node:http floor: nginx 7,000 vs floor 10,000/,
    );
    assert.equal(breach(above, 14_000, 10_000, true), null);
    assert.match(breach(above, 16_000, 10_000, true)!, /1\.60× better; allowed 1\.5×/);
  });

  it('turns around for latencies, where less is better', () => {
    // nginx's p50 1.5 ms against the floor's 1 ms: nginx is worse.
    assert.match(breach(below, 1500, 1000, false)!, /worse/);
    assert.equal(breach(below, 900, 1000, false), null);
    // The monolith answering in a third of the floor's time is too good to be true.
    assert.match(breach(above, 300, 1000, false)!, /better/);
  });
});

describe('pairedRatios', () => {
  it('divides round by round, over the rounds both have', () => {
    const s = (round: number, value: number) => ({ round, attempt: 1, value, detail: null });
    assert.deepEqual(pairedRatios([s(0, 2), s(1, 3), s(2, 4)], [s(0, 1), s(2, 2)]), [2, 2]);
  });
});

/** A scripted phase: values[target][round] per attempt (the last one repeats). */
function scripted(values: Partial<Record<Name, number[][]>>) {
  const calls: string[] = [];
  const measure = async (target: Name, round: number, context: { attempt: number }) => {
    calls.push(`${target}${round}.${context.attempt}`);
    const perAttempt = values[target]?.[round];
    if (!perAttempt) return null;
    const value = perAttempt[Math.min(context.attempt, perAttempt.length) - 1]!;
    return { value, detail: { target, round, attempt: context.attempt } };
  };
  return { calls, measure };
}

type Name = 'floor' | 'nginx' | 'monolith';

const base: RoundsSpec<Name, unknown> = {
  targets: ['floor', 'nginx', 'monolith'],
  rounds: 3,
  tolerance: 0.2,
  higherIsBetter: true,
  sanity: [below],
  ratioPairs: [['monolith', 'floor']],
  maxAttempts: 2,
  rerunBudget: 10,
};

describe('measureRounds', () => {
  it('measures interleaved and keeps every round when all is well', async () => {
    const { calls, measure } = scripted({
      floor: [[100], [102], [98]],
      nginx: [[300], [310], [290]],
      monolith: [[60], [61], [59]],
    });
    const r = await measureRounds(base, measure);
    assert.deepEqual(calls, [
      'floor0.1',
      'nginx0.1',
      'monolith0.1',
      'floor1.1',
      'nginx1.1',
      'monolith1.1',
      'floor2.1',
      'nginx2.1',
      'monolith2.1',
    ]);
    assert.equal(r.reruns, 0);
    assert.deepEqual(r.problems, []);
    assert.deepEqual(
      r.samples.floor.map((s) => s.value),
      [100, 102, 98],
    );
  });

  it('re-measures a round that breaks a sanity rule, right after it, and keeps the rerun', async () => {
    const { calls, measure } = scripted({
      floor: [[100], [100, 101], [100]],
      nginx: [[300], [50, 305], [300]],
      monolith: [[60], [60], [60]],
    });
    const events: string[] = [];
    const r = await measureRounds(base, measure, (e) => events.push(`${e.targets.join('+')}@${e.round}`));
    assert.deepEqual(calls.slice(3, 8), ['floor1.1', 'nginx1.1', 'monolith1.1', 'floor1.2', 'nginx1.2']);
    assert.deepEqual(events, ['floor+nginx@1']);
    assert.equal(r.reruns, 2);
    assert.deepEqual(
      r.samples.nginx.map((s) => s.value),
      [300, 305, 300],
    );
    assert.equal(r.samples.nginx[1]!.attempt, 2);
    assert.deepEqual(r.discarded.map((d) => `${d.target}=${d.value}`).sort(), ['floor=100', 'nginx=50']);
    assert.match(r.discarded[0]!.reason, /nginx below the node:http floor/);
    assert.deepEqual(r.problems, []);
  });

  it("leaves the subject's round out, and says so, when the rule still breaks after the reruns", async () => {
    const { measure } = scripted({
      floor: [[100], [100], [100]],
      nginx: [[300], [50, 40], [300]],
      monolith: [[60], [60], [60]],
    });
    const r = await measureRounds(base, measure);
    assert.deepEqual(
      r.samples.nginx.map((s) => s.round),
      [0, 2],
    );
    assert.deepEqual(
      r.samples.floor.map((s) => s.round),
      [0, 1, 2],
      'the reference keeps its round',
    );
    assert.equal(r.problems.length, 1);
    assert.equal(r.problems[0]!.kind, 'sanity');
    assert.match(r.problems[0]!.message, /round 2: nginx below the node:http floor.*after 2 measurement/);
  });

  it('re-measures the round of a ratio that disagrees, and reports it unstable if it stays so', async () => {
    const stable = scripted({
      floor: [[100], [100], [100]],
      nginx: [[300], [300], [300]],
      monolith: [[60], [60], [20, 61]],
    });
    const fixed = await measureRounds(base, stable.measure);
    assert.deepEqual(
      fixed.samples.monolith.map((s) => s.value),
      [60, 60, 61],
    );
    assert.equal(fixed.reruns, 2, 'monolith and floor of round 3 measured again');
    assert.deepEqual(fixed.problems, []);

    const flapping = scripted({
      floor: [[100], [100], [100]],
      nginx: [[300], [300], [300]],
      monolith: [[60], [60], [20, 25]],
    });
    const unstable = await measureRounds(base, flapping.measure);
    assert.equal(unstable.problems.length, 1);
    assert.equal(unstable.problems[0]!.kind, 'unstable');
    assert.deepEqual(unstable.problems[0]!.targets, ['monolith', 'floor']);
    assert.match(unstable.problems[0]!.message, /0\.60×, 0\.60×, 0\.25×/);
    // The unstable round stays in the table, with the problem beside it: no best run picked.
    assert.deepEqual(
      unstable.samples.monolith.map((s) => s.value),
      [60, 60, 25],
    );
  });

  it('stops rerunning when the budget is spent', async () => {
    const { measure } = scripted({
      floor: [[100], [100], [100]],
      nginx: [[50], [50], [50]],
      monolith: [[60], [60], [60]],
    });
    const r = await measureRounds({ ...base, rerunBudget: 2 }, measure);
    assert.equal(r.reruns, 2);
    assert.equal(r.samples.nginx.length, 0);
    assert.equal(r.problems.filter((p) => p.kind === 'sanity').length, 3);
  });

  /** A self check that names a round below 50 as contradicting the others. */
  const lowRoundContradicts: RoundsSpec<string, unknown>['selfCheck'] = (_t, samples) => {
    const low = samples.find((s) => s.value < 50);
    return low ? { round: low.round, reason: 'a rate passed above one that failed' } : null;
  };

  it("asks a target's self check and re-measures the round it names", async () => {
    const { calls, measure } = scripted({ floor: [[100], [100], [40, 98]] });
    const r = await measureRounds(
      {
        ...base,
        targets: ['floor'],
        sanity: [],
        ratioPairs: [],
        selfCheck: lowRoundContradicts,
      },
      measure,
    );
    assert.deepEqual(calls, ['floor0.1', 'floor1.1', 'floor2.1', 'floor2.2']);
    assert.deepEqual(
      r.samples.floor.map((s) => s.value),
      [100, 100, 98],
    );
  });

  it('reports a target whose rounds still contradict each other unstable, and keeps every round', async () => {
    const { calls, measure } = scripted({ floor: [[100], [100], [40, 45]] });
    const r = await measureRounds(
      {
        ...base,
        targets: ['floor'],
        sanity: [],
        ratioPairs: [],
        selfCheck: lowRoundContradicts,
      },
      measure,
    );
    assert.deepEqual(calls, ['floor0.1', 'floor1.1', 'floor2.1', 'floor2.2']);
    assert.deepEqual(
      r.samples.floor.map((s) => s.value),
      [100, 100, 45],
    );
    assert.equal(r.problems.length, 1);
    assert.equal(r.problems[0]!.kind, 'unstable');
    assert.match(
      r.problems[0]!.message,
      /floor unstable: a rate passed above one that failed, still after 2 measurement/,
    );
  });

  it('leaves a hole, not a rerun, for a target that cannot be measured', async () => {
    const { measure } = scripted({ floor: [[100], [100], [100]], monolith: [[60], [60], [60]] });
    const r = await measureRounds(base, measure);
    assert.equal(r.samples.nginx.length, 0);
    assert.equal(r.reruns, 0);
  });

  it('gives the next measurement the other rounds of the same target, so a search can start near them', async () => {
    const seen: number[][] = [];
    await measureRounds(
      { ...base, targets: ['floor'], sanity: [], ratioPairs: [] },
      async (_t, round, context) => {
        seen.push(context.others.map((s) => s.value));
        return { value: 100 + round, detail: null };
      },
    );
    assert.deepEqual(seen, [[], [100], [100, 101]]);
  });
});
