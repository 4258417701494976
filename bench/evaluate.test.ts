import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { spreadOf } from '../cli/kit/spread.ts';
import { checkInstrument, evaluateTargets, formatRatio, ratioPairs, sanityRules } from './evaluate.ts';
import type { Figure } from './repeats.ts';
import type { LatencyRound, NatsResult, SizeKey, TargetBench, TargetName, ThroughputRound } from './types.ts';

/** A figure with one value per round. */
function figure<D>(values: number[], detail: (v: number) => D): Figure<D> {
  const samples = values.map((value, round) => ({ round, attempt: 1, value, detail: detail(value) }));
  return { samples, spread: spreadOf(values), discarded: [] };
}

const throughputRound = (maxRate: number): ThroughputRound => ({
  maxRate,
  generatorBound: false,
  firstFailure: null,
  steps: [],
  othersCores: null,
});

const latencyRound = (p50: number): LatencyRound => ({
  rate: 100,
  durationMs: 2000,
  sent: 200,
  ok: 200,
  errors: 0,
  p50,
  p90: 0,
  p99: 0,
  p999: 0,
  max: 0,
  generatorBehind: false,
  othersCores: null,
});

type Numbers = {
  rate?: Partial<Record<SizeKey, number[]>>;
  p50?: number[];
  coldMs?: number[];
  skipped?: string;
};

function target(name: TargetName, n: Numbers): TargetBench {
  return {
    name,
    kind: name === 'floor' || name === 'nginx' ? 'reference' : 'style',
    description: name,
    notes: [],
    warmUps: {},
    ...(n.skipped ? { skipped: n.skipped } : {}),
    throughput: Object.fromEntries(
      Object.entries(n.rate ?? {}).map(([size, values]) => [size, figure(values, throughputRound)]),
    ),
    latency: n.p50 ? { '4k': figure(n.p50, latencyRound) } : {},
    ...(n.coldMs ? { coldStart: figure(n.coldMs, () => null) } : {}),
  };
}

const natsRound = (v: number) => ({ count: 1000, p50Us: v, p90Us: v, p99Us: v, p999Us: v });

/** Paced round trips of `pacedP50`; back to back at `backToBackP50` (a fifth of them unless given). */
const nats = (pacedP50: number[], backToBackP50 = pacedP50.map((v) => v / 5)): NatsResult => ({
  payloadBytes: 1024,
  how: '',
  backToBack: figure(backToBackP50, natsRound),
  paced: { ratePerSecond: 100, figure: figure(pacedP50, natsRound) },
});

const status = (checks: ReturnType<typeof evaluateTargets>, id: string) =>
  checks.find((c) => c.id === id)!.status;

describe('evaluateTargets', () => {
  it('marks every target met when every round satisfies it', () => {
    const checks = evaluateTargets(
      [
        target('floor', { rate: { '4k': [5000, 5100, 4900] } }),
        target('monolith', {
          rate: { '4k': [3000, 3100, 3000], '64k': [800, 800, 800], '1m': [200, 210, 190] },
          p50: [1000, 1100, 1050],
          coldMs: [400, 410, 390],
        }),
        target('microkernel', {
          rate: { '64k': [400, 420, 410], '1m': [100, 110, 100] },
          p50: [2000, 2100, 2050],
        }),
        target('microkernel-shm', { rate: { '64k': [450, 420, 410], '1m': [120, 110, 100] } }),
        target('unikernel', { rate: { '4k': [3000, 3200, 3100] }, coldMs: [150, 160, 140] }),
      ],
      nats([500, 500, 500]),
    );
    assert.deepEqual(
      checks.map((c) => [c.id, c.status]),
      [
        ['monolith-vs-floor', 'met'],
        ['microkernel-latency', 'met'],
        ['unikernel-throughput', 'met'],
        ['unikernel-cold-start', 'met'],
        ['microkernel-1m-throughput', 'met'],
        ['microkernel-shm-1m-throughput', 'met'],
        ['microkernel-64k-throughput', 'met'],
        ['microkernel-shm-64k-throughput', 'met'],
      ],
    );
    assert.match(checks[0]!.evidence, /monolith\/floor = 61% \(60%–61%\) \(target ≥ 60%\); 3 rounds/);
    assert.deepEqual(checks[1]!.issues, [8, 17]);
    assert.match(checks[4]!.evidence, /microkernel\/monolith = 0\.52× \(0\.50×–0\.53×\)/);
    assert.match(checks[5]!.statement, /microkernel \(shm\) max throughput/);
    assert.match(checks[5]!.evidence, /microkernel-shm\/monolith = 0\.53× \(0\.52×–0\.60×\)/);
  });

  it('marks each target missed when every round misses it', () => {
    const checks = evaluateTargets(
      [
        target('floor', { rate: { '4k': [5000, 5000, 5000] } }),
        target('monolith', {
          rate: { '4k': [2950, 2900, 2000], '1m': [200, 200, 200] },
          p50: [1000, 1000, 1000],
          coldMs: [400, 400, 400],
        }),
        target('microkernel', { rate: { '1m': [20, 22, 18] }, p50: [2001, 2500, 3000] }),
        target('microkernel-shm', { rate: { '1m': [90, 99, 60] } }),
        target('unikernel', { rate: { '4k': [2900, 2800, 1900] }, coldMs: [400, 400, 400] }),
      ],
      nats([500, 500, 500]),
    );
    assert.equal(status(checks, 'monolith-vs-floor'), 'missed');
    assert.equal(status(checks, 'microkernel-latency'), 'missed');
    assert.equal(status(checks, 'unikernel-throughput'), 'missed');
    // Equal cold starts are not "below".
    assert.equal(status(checks, 'unikernel-cold-start'), 'missed');
    assert.equal(status(checks, 'microkernel-1m-throughput'), 'missed');
    assert.equal(status(checks, 'microkernel-shm-1m-throughput'), 'missed');
  });

  it('says not decided when the rounds fall on both sides of the line, round by round', () => {
    const checks = evaluateTargets(
      [
        target('floor', { rate: { '4k': [5000, 5000, 4000] } }),
        // 2,900/5,000 = 58% misses; 3,100/5,000 = 62% and 2,500/4,000 = 63% meet: paired, not medians.
        target('monolith', { rate: { '4k': [2900, 3100, 2500] }, p50: [1000, 1000, 1000] }),
        target('microkernel', { p50: [1900, 2100, 1950] }),
      ],
      nats([500, 500, 500]),
    );
    const share = checks.find((c) => c.id === 'monolith-vs-floor')!;
    assert.equal(share.status, 'not decided');
    assert.match(share.evidence, /met in 2 of 3 rounds/);
    assert.equal(status(checks, 'microkernel-latency'), 'not decided');
  });

  it('adds the paced round trips, not the back-to-back ones, to the monolith for the latency target', () => {
    const fleet = [
      target('monolith', { p50: [1000, 1000, 1000] }),
      target('microkernel', { p50: [1900, 1950, 2000] }),
    ];
    // 1,000 + 2 × 500 µs paced covers 2,000 µs; 1,000 + 2 × 100 µs back to back would not.
    const met = evaluateTargets(fleet, nats([500, 500, 500], [100, 100, 100]));
    assert.equal(status(met, 'microkernel-latency'), 'met');
    assert.match(
      met.find((c) => c.id === 'microkernel-latency')!.evidence,
      /monolith p50 \+ 2 × paced NATS p50 = 2\.00 ms/,
    );
    // Paced at 400 µs: 1,800 µs, below every round.
    assert.equal(
      status(evaluateTargets(fleet, nats([400, 400, 400], [100, 100, 100])), 'microkernel-latency'),
      'missed',
    );
  });

  it('says what is missing instead of guessing', () => {
    const checks = evaluateTargets(
      [
        target('floor', { rate: { '4k': [5000] } }),
        target('monolith', { rate: { '4k': [3000] }, p50: [900] }),
        target('unikernel', { skipped: 'not built', rate: { '4k': [9000] } }),
      ],
      null,
    );
    assert.equal(status(checks, 'microkernel-latency'), 'not measured');
    assert.match(
      checks.find((c) => c.id === 'microkernel-latency')!.evidence,
      /microkernel 4 KiB p50.*NATS round trip/,
    );
    // A skipped target's numbers do not count.
    assert.equal(status(checks, 'unikernel-throughput'), 'not measured');
    assert.equal(status(checks, 'unikernel-cold-start'), 'not measured');
    assert.equal(status(checks, 'microkernel-64k-throughput'), 'not measured');
  });

  it('treats a floor of 0 req/s as not measured, not as a division', () => {
    const checks = evaluateTargets(
      [
        target('floor', { rate: { '4k': [0, 0, 0] } }),
        target('monolith', { rate: { '4k': [100, 100, 100] } }),
      ],
      nats([500]),
    );
    assert.equal(status(checks, 'monolith-vs-floor'), 'not measured');
  });
});

describe('sanityRules and ratioPairs', () => {
  it('apply to the targets measured only', () => {
    assert.deepEqual(
      sanityRules(['floor', 'nginx', 'monolith'], 0.2).map((r) => r.id),
      ['nginx-below-floor', 'monolith-above-floor'],
    );
    assert.deepEqual(
      sanityRules(['floor', 'monolith'], 0.2).map((r) => r.id),
      ['monolith-above-floor'],
    );
    assert.deepEqual(sanityRules(['monolith', 'microkernel'], 0.2), []);
  });

  it('pair every target with the floor and the monolith, as the tables show them', () => {
    assert.deepEqual(ratioPairs(['floor', 'monolith', 'microkernel']), [
      ['monolith', 'floor'],
      ['microkernel', 'floor'],
      ['microkernel', 'monolith'],
    ]);
  });
});

describe('formatRatio', () => {
  it('keeps two decimals below 10× and none above', () => {
    assert.equal(formatRatio(0.756), '0.76×');
    assert.equal(formatRatio(12.3), '12×');
    assert.equal(formatRatio(null), '—');
  });
});

describe('checkInstrument', () => {
  // The opening calibration's rounds: 6,000 [5,800–6,500] req/s; tolerance ±20%.
  const opening = spreadOf([6000, 6500, 5800])!;

  it('holds within the opening rounds widened by the tolerance, at both ends', () => {
    for (const closing of [6000, 5800 * 0.8, 6500 * 1.2]) {
      const check = checkInstrument(opening, throughputRound(closing), 0.2);
      assert.equal(check.held, true, `${closing} req/s`);
      assert.equal(check.ratio, closing / 6000);
    }
  });

  it('did not hold when the generator lost or gained beyond that', () => {
    const slower = checkInstrument(opening, throughputRound(4600), 0.2);
    assert.equal(slower.held, false);
    assert.equal(slower.ratio.toFixed(2), '0.77');
    const faster = checkInstrument(opening, throughputRound(7850), 0.2);
    assert.equal(faster.held, false);
    assert.equal(faster.round.maxRate, 7850);
    // A closing search where nothing passed is the largest change of all.
    assert.equal(checkInstrument(opening, throughputRound(0), 0.2).held, false);
  });
});
