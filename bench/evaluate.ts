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

/** Evaluates the four targets; a missing number gives 'not measured' with what is missing. */
export function evaluateTargets(targets: TargetBench[], nats: NatsRoundTrip | null): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const missing = (what: string[]) => `not measured: ${what.join(', ')}`;

  {
    const floor = maxRateOf(targets, 'floor', '4k');
    const mono = maxRateOf(targets, 'monolith', '4k');
    const statement = `monolith ≥ ${MONOLITH_FLOOR_SHARE * 100}% of the node:http floor's max throughput, 4 KiB`;
    const r = ratio(mono, floor);
    if (r === null || mono === null || floor === null) {
      const lack = [
        floor === null || floor === 0 ? 'floor 4 KiB throughput' : '',
        mono === null ? 'monolith 4 KiB throughput' : '',
      ];
      checks.push({
        id: 'monolith-vs-floor',
        statement,
        status: 'not measured',
        evidence: missing(lack.filter(Boolean)),
      });
    } else {
      checks.push({
        id: 'monolith-vs-floor',
        statement,
        status: r >= MONOLITH_FLOOR_SHARE ? 'met' : 'missed',
        evidence: `monolith ${rps(mono)} / floor ${rps(floor)} = ${(r * 100).toFixed(0)}% (target ≥ ${MONOLITH_FLOOR_SHARE * 100}%)`,
      });
    }
  }
  {
    const mono = p50Of(targets, 'monolith', '4k');
    const micro = p50Of(targets, 'microkernel', '4k');
    const statement =
      "microkernel median latency ≤ monolith's + two NATS round trips, 4 KiB at the common rate";
    if (mono === null || micro === null || nats === null) {
      const lack = [
        mono === null ? 'monolith 4 KiB p50' : '',
        micro === null ? 'microkernel 4 KiB p50' : '',
        nats === null ? 'NATS round trip' : '',
      ];
      checks.push({
        id: 'microkernel-latency',
        statement,
        status: 'not measured',
        evidence: missing(lack.filter(Boolean)),
      });
    } else {
      const bound = mono + 2 * nats.p50Us;
      checks.push({
        id: 'microkernel-latency',
        statement,
        status: micro <= bound ? 'met' : 'missed',
        evidence: `microkernel p50 ${ms(micro)} vs monolith p50 ${ms(mono)} + 2 × NATS p50 ${ms(nats.p50Us)} = ${ms(bound)}`,
      });
    }
  }
  {
    const mono = maxRateOf(targets, 'monolith', '4k');
    const uni = maxRateOf(targets, 'unikernel', '4k');
    const statement = "unikernel max throughput ≥ monolith's, 4 KiB";
    if (mono === null || uni === null) {
      const lack = [
        mono === null ? 'monolith 4 KiB throughput' : '',
        uni === null ? 'unikernel 4 KiB throughput' : '',
      ];
      checks.push({
        id: 'unikernel-throughput',
        statement,
        status: 'not measured',
        evidence: missing(lack.filter(Boolean)),
      });
    } else {
      checks.push({
        id: 'unikernel-throughput',
        statement,
        status: uni >= mono ? 'met' : 'missed',
        evidence: `unikernel ${rps(uni)} vs monolith ${rps(mono)} (${formatRatio(ratio(uni, mono))})`,
      });
    }
  }
  {
    const mono = byName(targets, 'monolith')?.coldStart?.medianMs ?? null;
    const uni = byName(targets, 'unikernel')?.coldStart?.medianMs ?? null;
    const statement = "unikernel cold start (median spawn → first 200) below the monolith's";
    if (mono === null || uni === null) {
      const lack = [mono === null ? 'monolith cold start' : '', uni === null ? 'unikernel cold start' : ''];
      checks.push({
        id: 'unikernel-cold-start',
        statement,
        status: 'not measured',
        evidence: missing(lack.filter(Boolean)),
      });
    } else {
      checks.push({
        id: 'unikernel-cold-start',
        statement,
        status: uni < mono ? 'met' : 'missed',
        evidence: `unikernel ${uni.toFixed(0)} ms vs monolith ${mono.toFixed(0)} ms (${formatRatio(ratio(uni, mono))})`,
      });
    }
  }
  return checks;
}
