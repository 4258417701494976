import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { evaluateTargets, formatRatio, ratio } from './evaluate.ts';
import type { LatencyResult, NatsRoundTrip, TargetBench, TargetName } from './types.ts';

function target(
  name: TargetName,
  numbers: { rate4k?: number; p50?: number; coldMs?: number; skipped?: string },
): TargetBench {
  const latency: LatencyResult | undefined =
    numbers.p50 === undefined
      ? undefined
      : {
          rate: 500,
          durationMs: 5000,
          sent: 2500,
          ok: 2500,
          errors: 0,
          p50: numbers.p50,
          p90: 0,
          p99: 0,
          p999: 0,
          max: 0,
          generatorBehind: false,
          othersCores: null,
        };
  return {
    name,
    kind: name === 'floor' || name === 'nginx' ? 'reference' : 'style',
    description: name,
    notes: [],
    ...(numbers.skipped ? { skipped: numbers.skipped } : {}),
    throughput:
      numbers.rate4k === undefined
        ? {}
        : { '4k': { maxRate: numbers.rate4k, generatorBound: false, firstFailure: null, steps: [] } },
    latency: latency ? { '4k': latency } : {},
    ...(numbers.coldMs === undefined
      ? {}
      : {
          coldStart: {
            samplesMs: [numbers.coldMs],
            medianMs: numbers.coldMs,
            minMs: numbers.coldMs,
            maxMs: numbers.coldMs,
            how: '',
          },
        }),
  };
}

const nats: NatsRoundTrip = {
  payloadBytes: 1024,
  count: 1000,
  p50Us: 500,
  p90Us: 800,
  p99Us: 2500,
  p999Us: 4000,
  how: '',
};

const status = (checks: ReturnType<typeof evaluateTargets>, id: string) =>
  checks.find((c) => c.id === id)!.status;

describe('evaluateTargets', () => {
  it('marks every target met when the numbers satisfy it', () => {
    const checks = evaluateTargets(
      [
        target('floor', { rate4k: 5000 }),
        target('monolith', { rate4k: 3000, p50: 1000, coldMs: 400 }),
        target('microkernel', { rate4k: 2000, p50: 2000 }),
        target('unikernel', { rate4k: 3000, coldMs: 150 }),
      ],
      nats,
    );
    assert.deepEqual(
      checks.map((c) => c.status),
      ['met', 'met', 'met', 'met'],
    );
    assert.match(checks[0]!.evidence, /60%/);
    assert.match(checks[1]!.evidence, /2\.00 ms/);
  });

  it('marks each target missed just past its bound', () => {
    const checks = evaluateTargets(
      [
        target('floor', { rate4k: 5000 }),
        target('monolith', { rate4k: 2950, p50: 1000, coldMs: 400 }),
        target('microkernel', { p50: 2001 }),
        target('unikernel', { rate4k: 2900, coldMs: 400 }),
      ],
      nats,
    );
    assert.equal(status(checks, 'monolith-vs-floor'), 'missed');
    assert.equal(status(checks, 'microkernel-latency'), 'missed');
    assert.equal(status(checks, 'unikernel-throughput'), 'missed');
    // Equal cold starts are not "below".
    assert.equal(status(checks, 'unikernel-cold-start'), 'missed');
  });

  it('says what is missing instead of guessing', () => {
    const checks = evaluateTargets(
      [
        target('floor', { rate4k: 5000 }),
        target('monolith', { rate4k: 3000, p50: 900 }),
        target('unikernel', { skipped: 'not built', rate4k: 9000 }),
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
  });

  it('treats a floor of 0 req/s as not measured, not as a division', () => {
    const checks = evaluateTargets(
      [target('floor', { rate4k: 0 }), target('monolith', { rate4k: 100 })],
      nats,
    );
    assert.equal(status(checks, 'monolith-vs-floor'), 'not measured');
  });
});

describe('ratio', () => {
  it('divides, and refuses missing or zero denominators', () => {
    assert.equal(ratio(3, 4), 0.75);
    assert.equal(ratio(3, 0), null);
    assert.equal(ratio(null, 4), null);
    assert.equal(ratio(3, undefined), null);
    assert.equal(formatRatio(0.756), '0.76×');
    assert.equal(formatRatio(12.3), '12×');
    assert.equal(formatRatio(null), '—');
  });
});
