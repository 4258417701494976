/** Ratios and issue #8's targets, computed from measured numbers only (pure, so tests give numbers). */
import type { NatsRoundTrip, SizeKey, TargetBench, TargetCheck, TargetName } from './types.ts';

/** a / b, or null when either is missing or b is 0. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a === null || a === undefined || b === null || b === undefined || !Number.isFinite(a) || !(b > 0))
    return null;
  return a / b;
}

export function formatRatio(r: number | null): string {
  if (r === null) return '—';
  return r >= 10 ? `${r.toFixed(0)}×` : `${r.toFixed(2)}×`;
}

const byName = (targets: TargetBench[], name: TargetName) =>
  targets.find((t) => t.name === name && !t.skipped);

export function maxRateOf(targets: TargetBench[], name: TargetName, size: SizeKey): number | null {
  const t = byName(targets, name)?.throughput[size];
  return t ? t.maxRate : null;
}

export function p50Of(targets: TargetBench[], name: TargetName, size: SizeKey): number | null {
  const l = byName(targets, name)?.latency[size];
  return l && l.ok > 0 ? l.p50 : null;
}

const ms = (us: number) => `${(us / 1000).toFixed(us < 10_000 ? 2 : 1)} ms`;
const rps = (r: number) => `${Math.round(r).toLocaleString('en-US')} req/s`;

/** The monolith reaches at least this share of the node:http floor's 4 KiB throughput. */
export const MONOLITH_FLOOR_SHARE = 0.6;

type Verdict = { met: boolean; evidence: string };

/** One target: 'not measured' (naming what is missing) unless every input was measured. */
function check(
  id: TargetCheck['id'],
  statement: string,
  inputs: Array<[label: string, value: number | null]>,
  judge: (...values: number[]) => Verdict,
): TargetCheck {
  const lack = inputs.filter(([, value]) => value === null).map(([label]) => label);
  if (lack.length > 0)
    return { id, statement, status: 'not measured', evidence: `not measured: ${lack.join(', ')}` };
  const { met, evidence } = judge(...inputs.map(([, value]) => value as number));
  return { id, statement, status: met ? 'met' : 'missed', evidence };
}

/** Evaluates the four targets; a missing number gives 'not measured' with what is missing. */
export function evaluateTargets(targets: TargetBench[], nats: NatsRoundTrip | null): TargetCheck[] {
  const floor4k = maxRateOf(targets, 'floor', '4k');
  const coldStart = (name: TargetName) => byName(targets, name)?.coldStart?.medianMs ?? null;
  return [
    check(
      'monolith-vs-floor',
      `monolith ≥ ${MONOLITH_FLOOR_SHARE * 100}% of the node:http floor's max throughput, 4 KiB`,
      [
        ['floor 4 KiB throughput', floor4k === 0 ? null : floor4k],
        ['monolith 4 KiB throughput', maxRateOf(targets, 'monolith', '4k')],
      ],
      (floor, mono) => ({
        met: mono / floor >= MONOLITH_FLOOR_SHARE,
        evidence: `monolith ${rps(mono)} / floor ${rps(floor)} = ${((mono / floor) * 100).toFixed(0)}% (target ≥ ${MONOLITH_FLOOR_SHARE * 100}%)`,
      }),
    ),
    check(
      'microkernel-latency',
      "microkernel median latency ≤ monolith's + two NATS round trips, 4 KiB at the common rate",
      [
        ['monolith 4 KiB p50', p50Of(targets, 'monolith', '4k')],
        ['microkernel 4 KiB p50', p50Of(targets, 'microkernel', '4k')],
        ['NATS round trip', nats?.p50Us ?? null],
      ],
      (mono, micro, natsP50) => {
        const bound = mono + 2 * natsP50;
        return {
          met: micro <= bound,
          evidence: `microkernel p50 ${ms(micro)} vs monolith p50 ${ms(mono)} + 2 × NATS p50 ${ms(natsP50)} = ${ms(bound)}`,
        };
      },
    ),
    check(
      'unikernel-throughput',
      "unikernel max throughput ≥ monolith's, 4 KiB",
      [
        ['monolith 4 KiB throughput', maxRateOf(targets, 'monolith', '4k')],
        ['unikernel 4 KiB throughput', maxRateOf(targets, 'unikernel', '4k')],
      ],
      (mono, uni) => ({
        met: uni >= mono,
        evidence: `unikernel ${rps(uni)} vs monolith ${rps(mono)} (${formatRatio(ratio(uni, mono))})`,
      }),
    ),
    check(
      'unikernel-cold-start',
      "unikernel cold start (median spawn → first 200) below the monolith's",
      [
        ['monolith cold start', coldStart('monolith')],
        ['unikernel cold start', coldStart('unikernel')],
      ],
      (mono, uni) => ({
        met: uni < mono,
        evidence: `unikernel ${uni.toFixed(0)} ms vs monolith ${mono.toFixed(0)} ms (${formatRatio(ratio(uni, mono))})`,
      }),
    ),
  ];
}
