/**
 * The benchmark's rules over measured numbers (pure, so tests give numbers): the sanity rules a round
 * must keep, the ratios whose rounds must agree, and issue #8's and issue #17's targets, each decided
 * round by round — met when every round meets it, missed when every round misses it, not decided when
 * the rounds fall on both sides.
 */

import { type Spread, spreadOf } from '../cli/kit/spread.ts';
import type { Figure, Sample, SanityRule } from './repeats.ts';
import type {
  CheckStatus,
  InstrumentCheck,
  NatsResult,
  SizeKey,
  TargetBench,
  TargetCheck,
  TargetName,
  ThroughputRound,
} from './types.ts';
import { SIZES } from './types.ts';

export function formatRatio(r: number | null): string {
  if (r === null) return '—';
  return r >= 10 ? `${r.toFixed(0)}×` : `${r.toFixed(2)}×`;
}

/** The monolith reaches at least this share of the node:http floor's 4 KiB throughput (issue #8). */
export const MONOLITH_FLOOR_SHARE = 0.6;
/** The microkernel's 1 MiB and 64 KiB maximum reaches at least this share of the monolith's (issue #17). */
export const MICROKERNEL_MONOLITH_SHARE = 0.5;
/**
 * The monolith is node:http plus Express on the same path as the floor: a round where it is more than
 * this much better than the floor measured something else.
 */
export const MONOLITH_ABOVE_FLOOR = 1.5;

/**
 * The closing search against the opening calibration's rounds: it held when the closing maximum lies
 * within their [min–max] widened by the tolerance (the rounds' own spread is the instrument's noise;
 * only a change beyond it is a different instrument).
 */
export function checkInstrument(opening: Spread, round: ThroughputRound, tolerance: number): InstrumentCheck {
  const closing = round.maxRate;
  return {
    round,
    ratio: opening.median > 0 ? closing / opening.median : Number.POSITIVE_INFINITY,
    held: closing >= opening.min * (1 - tolerance) && closing <= opening.max * (1 + tolerance),
  };
}

/** The relations every round must keep, among the targets measured. */
export function sanityRules(names: readonly TargetName[], tolerance: number): SanityRule<TargetName>[] {
  const rules: SanityRule<TargetName>[] = [
    {
      id: 'nginx-below-floor',
      subject: 'nginx',
      reference: 'floor',
      bound: 'not-worse',
      factor: 1 + tolerance,
      describe: 'nginx below the node:http floor',
    },
    {
      id: 'monolith-above-floor',
      subject: 'monolith',
      reference: 'floor',
      bound: 'not-better',
      factor: MONOLITH_ABOVE_FLOOR,
      describe: 'monolith (node:http + Express) far above the node:http floor',
    },
  ];
  return rules.filter((r) => names.includes(r.subject) && names.includes(r.reference));
}

/** The ratios the tables show: every target against the floor and against the monolith. */
export function ratioPairs(names: readonly TargetName[]): [TargetName, TargetName][] {
  const pairs: [TargetName, TargetName][] = [];
  for (const reference of ['floor', 'monolith'] as const) {
    if (!names.includes(reference)) continue;
    for (const t of names) {
      if (t === reference || (reference === 'monolith' && t === 'floor')) continue;
      pairs.push([t, reference]);
    }
  }
  return pairs;
}

const measured = (targets: TargetBench[], name: TargetName) =>
  targets.find((t) => t.name === name && !t.skipped);

/** The valid rounds of one figure of one target, or null when it was not measured. */
type Rounds = readonly Sample<unknown>[] | null;

const roundsOf = (figure: Figure<unknown> | undefined): Rounds =>
  figure && figure.samples.length > 0 ? figure.samples : null;

const positive = (rounds: Rounds): Rounds => {
  const kept = rounds?.filter((s) => s.value > 0) ?? [];
  return kept.length > 0 ? kept : null;
};

/** Values of several figures in the rounds they all have, round by round. */
function together(figures: readonly (readonly Sample<unknown>[])[]): number[][] {
  const [first, ...rest] = figures;
  if (!first) return [];
  return first.flatMap((s) => {
    const row = [s.value];
    for (const other of rest) {
      const match = other.find((o) => o.round === s.round);
      if (!match) return [];
      row.push(match.value);
    }
    return [row];
  });
}

const range = (values: number[], format: (v: number) => string) => {
  const s = spreadOf(values);
  return s ? `${format(s.median)} (${format(s.min)}–${format(s.max)})` : '—';
};
const ms = (us: number) => `${(us / 1000).toFixed(us < 10_000 ? 2 : 1)} ms`;
const pct = (r: number) => `${Math.round(r * 100)}%`;
const times = (r: number) => `${r.toFixed(2)}×`;

/**
 * One target over paired rounds: 'not measured' (naming what is missing) unless every input was
 * measured; else met / missed when every common round agrees, not decided when they split.
 */
function check(
  id: string,
  issues: number[],
  statement: string,
  inputs: Array<[label: string, rounds: Rounds]>,
  judge: (row: number[]) => boolean,
  evidence: (rows: number[][]) => string,
): TargetCheck {
  const lack = inputs.filter(([, r]) => r === null).map(([label]) => label);
  if (lack.length > 0)
    return { id, issues, statement, status: 'not measured', evidence: `not measured: ${lack.join(', ')}` };
  const rows = together(inputs.map(([, r]) => r!));
  if (rows.length === 0)
    return { id, issues, statement, status: 'not measured', evidence: 'no round measured all of its inputs' };
  const met = rows.filter(judge).length;
  const status: CheckStatus = met === rows.length ? 'met' : met === 0 ? 'missed' : 'not decided';
  const split =
    status === 'not decided' ? `; met in ${met} of ${rows.length} rounds` : `; ${rows.length} rounds`;
  return { id, issues, statement, status, evidence: `${evidence(rows)}${split}` };
}

/** The paced NATS round trips' p50, one per 4 KiB latency round (measured in it, so paired by number). */
function natsRounds(nats: NatsResult | null): Rounds {
  return nats ? roundsOf(nats.paced.figure) : null;
}

type ShareTarget = {
  id: string;
  issues: number[];
  statement: string;
  subject: TargetName;
  reference: TargetName;
  size: SizeKey;
  share: number;
  format: (ratio: number) => string;
};

/** subject's maximum throughput is at least `share` of the reference's, round by round. */
function throughputShare(targets: TargetBench[], t: ShareTarget): TargetCheck {
  const label = SIZES[t.size].label;
  return check(
    t.id,
    t.issues,
    t.statement,
    [
      // A reference of 0 req/s (nothing passed) is no measure to divide by.
      [
        `${t.reference} ${label} throughput`,
        positive(roundsOf(measured(targets, t.reference)?.throughput[t.size])),
      ],
      [`${t.subject} ${label} throughput`, roundsOf(measured(targets, t.subject)?.throughput[t.size])],
    ],
    ([ref, sub]) => sub! / ref! >= t.share,
    (rows) =>
      `${t.subject}/${t.reference} = ${range(
        rows.map(([ref, sub]) => sub! / ref!),
        t.format,
      )} (target ≥ ${t.format(t.share)})`,
  );
}

/** Evaluates issue #8's and issue #17's targets; a missing number gives 'not measured' with what is missing. */
export function evaluateTargets(targets: TargetBench[], nats: NatsResult | null): TargetCheck[] {
  const coldStart = (name: TargetName) => roundsOf(measured(targets, name)?.coldStart);
  return [
    throughputShare(targets, {
      id: 'monolith-vs-floor',
      issues: [8],
      statement: `monolith ≥ ${pct(MONOLITH_FLOOR_SHARE)} of the node:http floor's max throughput, 4 KiB`,
      subject: 'monolith',
      reference: 'floor',
      size: '4k',
      share: MONOLITH_FLOOR_SHARE,
      format: pct,
    }),
    check(
      'microkernel-latency',
      [8, 17],
      "microkernel median latency ≤ monolith's + two NATS round trips, 4 KiB at the common rate (the round trips paced at that rate)",
      [
        ['monolith 4 KiB p50', roundsOf(measured(targets, 'monolith')?.latency['4k'])],
        ['microkernel 4 KiB p50', roundsOf(measured(targets, 'microkernel')?.latency['4k'])],
        ['paced NATS round trip', natsRounds(nats)],
      ],
      ([mono, micro, rtt]) => micro! <= mono! + 2 * rtt!,
      (rows) =>
        `microkernel p50 ${range(
          rows.map((r) => r[1]!),
          ms,
        )} vs monolith p50 + 2 × paced NATS p50 = ${range(
          rows.map(([mono, , rtt]) => mono! + 2 * rtt!),
          ms,
        )}`,
    ),
    throughputShare(targets, {
      id: 'unikernel-throughput',
      issues: [8],
      statement: "unikernel max throughput ≥ monolith's, 4 KiB",
      subject: 'unikernel',
      reference: 'monolith',
      size: '4k',
      share: 1,
      format: times,
    }),
    check(
      'unikernel-cold-start',
      [8],
      "unikernel cold start (spawn → first 200) below the monolith's",
      [
        ['monolith cold start', coldStart('monolith')],
        ['unikernel cold start', coldStart('unikernel')],
      ],
      ([mono, uni]) => uni! < mono!,
      (rows) =>
        `unikernel ${range(
          rows.map((r) => r[1]!),
          (v) => `${v.toFixed(0)} ms`,
        )} vs monolith ${range(
          rows.map((r) => r[0]!),
          (v) => `${v.toFixed(0)} ms`,
        )}`,
    ),
    ...(['1m', '64k'] as const).flatMap((size) =>
      (
        [
          ['microkernel', 'grant'],
          ['microkernel-shm', 'shm'],
        ] as const
      ).map(([subject, transfer]) =>
        throughputShare(targets, {
          id: `${subject}-${size}-throughput`,
          issues: [17],
          statement: `microkernel (${transfer}) max throughput ≥ ${MICROKERNEL_MONOLITH_SHARE}× the monolith's, ${SIZES[size].label}`,
          subject,
          reference: 'monolith',
          size,
          share: MICROKERNEL_MONOLITH_SHARE,
          format: times,
        }),
      ),
    ),
  ];
}
