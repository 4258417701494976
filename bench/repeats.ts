/**
 * What makes a benchmark figure repeat: rounds measured interleaved (every target once per round, in
 * the same order: A B C A B C …), the median with min–max of the rounds, per-round (paired) ratios
 * whose rounds must agree within a tolerance, and sanity rules whose breach is a failed measurement to
 * measure again, not a table entry. wrk2's and Heiser's rules ("systems benchmarking crimes"): no
 * relative number without its spread, no best run picked.
 *
 * Pure functions, and one loop (measureRounds) over a measurement function, so tests drive it with
 * scripted numbers or a scripted server.
 */
import { type Spread, spreadOf } from '../cli/kit/spread.ts';

/** The order of a phase: every target once per round, the same order in every round (A B A B …). */
export function interleave<T>(targets: readonly T[], rounds: number): { target: T; round: number }[] {
  const order: { target: T; round: number }[] = [];
  for (let round = 0; round < rounds; round++) for (const target of targets) order.push({ target, round });
  return order;
}

/** How far apart two positive numbers are, as a factor ≥ 1 (Infinity when one is not positive). */
export function factorApart(a: number, b: number): number {
  if (!(a > 0) || !(b > 0)) return a === b ? 1 : Number.POSITIVE_INFINITY;
  return a > b ? a / b : b / a;
}

/**
 * The index of the value farthest from the median when it lies beyond ±tolerance of it (as a factor:
 * 0.2 allows 1.2× above or below), else null: the rounds agree.
 */
export function outlierIndex(values: readonly number[], tolerance: number): number | null {
  const spread = spreadOf(values);
  if (!spread || values.length < 2) return null;
  let worst = -1;
  let worstFactor = 1 + tolerance;
  values.forEach((v, i) => {
    const apart = factorApart(v, spread.median);
    if (apart > worstFactor) {
      worst = i;
      worstFactor = apart;
    }
  });
  return worst >= 0 ? worst : null;
}

/**
 * A relation two measured targets must keep in every round, or the round is a failed measurement:
 * nginx is not slower than a bare node:http server, the monolith (node:http plus Express) is not far
 * faster than it.
 */
export type SanityRule<T extends string = string> = {
  id: string;
  subject: T;
  reference: T;
  /** not-worse: the subject is at most `factor` worse than the reference; not-better: at most `factor` better. */
  bound: 'not-worse' | 'not-better';
  factor: number;
  /** What a breach means, in words: "nginx below the node:http floor". */
  describe: string;
};

/** The breach of a rule by one round's two values, in words, or null when the rule holds. */
export function breach(
  rule: SanityRule,
  subject: number,
  reference: number,
  higherIsBetter: boolean,
): string | null {
  // "Goodness": more is better for rates, less for latencies and times.
  const good = (v: number) => (higherIsBetter ? v : v > 0 ? 1 / v : Number.POSITIVE_INFINITY);
  const s = good(subject);
  const r = good(reference);
  const broken = rule.bound === 'not-worse' ? s * rule.factor < r : s > r * rule.factor;
  if (!broken) return null;
  const times = factorApart(subject, reference);
  const how = s < r ? 'worse' : 'better';
  return `${rule.describe}: ${rule.subject} ${fmt(subject)} vs ${rule.reference} ${fmt(reference)} (${Number.isFinite(times) ? `${times.toFixed(2)}×` : 'infinitely'} ${how}; allowed ${rule.factor}×)`;
}

const fmt = (v: number) =>
  Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en-US') : String(+v.toPrecision(3));

/** One measurement of one target in one round. */
export type Sample<D> = { round: number; attempt: number; value: number; detail: D };

/** A measurement that is not in the table, and why. */
export type Discarded<D> = Sample<D> & { target: string; reason: string };

/** What stayed wrong after the reruns the plan allowed. */
export type RoundsProblem = {
  kind: 'sanity' | 'unstable';
  targets: string[];
  message: string;
};

export type RoundsSpec<T extends string, D> = {
  targets: readonly T[];
  rounds: number;
  /** Rounds of a ratio (and of one target, for selfCheck) agree within ±tolerance of their median. */
  tolerance: number;
  higherIsBetter: boolean;
  sanity: readonly SanityRule<T>[];
  /** [subject, reference]: the per-round ratio subject/reference must agree across rounds. */
  ratioPairs: readonly (readonly [T, T])[];
  /** Measurements of one target in one round at most (1 = never rerun). */
  maxAttempts: number;
  /** Reruns in all, across the phase. */
  rerunBudget: number;
  /**
   * Rounds of one target that cannot all be true (a rate that passed in one round above a rate that
   * failed in another): the round to measure again, and why; null when they can.
   */
  selfCheck?: (target: T, samples: readonly Sample<D>[]) => { round: number; reason: string } | null;
};

export type RoundsResult<T extends string, D> = {
  /** The valid measurements of each target, in round order. */
  samples: Record<T, Sample<D>[]>;
  discarded: Discarded<D>[];
  problems: RoundsProblem[];
  reruns: number;
};

/** Called when measurements are thrown away and taken again. */
export type RerunEvent<T> = { targets: T[]; round: number; reason: string };

export type Measure<T, D> = (
  target: T,
  round: number,
  context: {
    attempt: number;
    /** This target's valid measurements of the other rounds so far (a search starts near them). */
    others: readonly Sample<D>[];
  },
) => Promise<{ value: number; detail: D } | null>;

/**
 * Measures every target in rounds, interleaved; after each round applies the sanity rules and the
 * target's self check, and after the last the ratio agreement; a breach re-measures the round of the
 * targets involved (in the phase's order) while the attempts and the budget last. What is still
 * insane after that is discarded (the subject's measurement; the reference keeps its own) and reported;
 * a ratio, or a target's own rounds, that still disagree are reported unstable, every round kept. A measure that gives null (the target is gone)
 * leaves a hole, not a rerun.
 */
export async function measureRounds<T extends string, D>(
  spec: RoundsSpec<T, D>,
  measure: Measure<T, D>,
  onRerun?: (event: RerunEvent<T>) => void,
): Promise<RoundsResult<T, D>> {
  const cells = new Map<T, (Sample<D> | undefined)[]>(spec.targets.map((t) => [t, []]));
  const attempts = new Map<string, number>();
  const discarded: Discarded<D>[] = [];
  const problems: RoundsProblem[] = [];
  let budget = spec.rerunBudget;
  let reruns = 0;
  const key = (t: T, r: number) => `${t}#${r}`;
  const attemptsOf = (t: T, r: number) => attempts.get(key(t, r)) ?? 0;
  const valid = (t: T) => (cells.get(t) ?? []).filter((s): s is Sample<D> => s !== undefined);

  const take = async (t: T, r: number) => {
    const attempt = attemptsOf(t, r) + 1;
    attempts.set(key(t, r), attempt);
    const others = valid(t).filter((s) => s.round !== r);
    const got = await measure(t, r, { attempt, others });
    cells.get(t)![r] = got ? { round: r, attempt, value: got.value, detail: got.detail } : undefined;
  };
  const drop = (t: T, r: number, reason: string) => {
    const old = cells.get(t)![r];
    if (old) discarded.push({ ...old, target: t, reason });
    cells.get(t)![r] = undefined;
  };
  /** Measures these targets' round again, or says it cannot (attempts or budget used up). */
  const rerun = async (targets: T[], r: number, reason: string): Promise<boolean> => {
    const involved = spec.targets.filter((t) => targets.includes(t));
    if (involved.some((t) => attemptsOf(t, r) >= spec.maxAttempts) || budget < involved.length) return false;
    budget -= involved.length;
    reruns += involved.length;
    onRerun?.({ targets: involved, round: r, reason });
    for (const t of involved) drop(t, r, `${reason}: measured again`);
    for (const t of involved) await take(t, r);
    return true;
  };

  /** The first sanity breach in round r, or a target's rounds that contradict each other. */
  /** Targets whose rounds still contradict each other after the reruns: reported, no longer checked. */
  const contradicted = new Set<T>();
  type Issue = { targets: T[]; round: number; reason: string; subject: T; self: boolean };
  const firstIssue = (r: number): Issue | null => {
    for (const rule of spec.sanity) {
      const s = cells.get(rule.subject)?.[r];
      const ref = cells.get(rule.reference)?.[r];
      if (!s || !ref) continue;
      const reason = breach(rule, s.value, ref.value, spec.higherIsBetter);
      if (reason)
        return {
          targets: [rule.subject, rule.reference],
          round: r,
          reason,
          subject: rule.subject,
          self: false,
        };
    }
    for (const t of spec.targets) {
      if (contradicted.has(t)) continue;
      const contradiction = spec.selfCheck?.(t, valid(t));
      if (contradiction)
        return {
          targets: [t],
          round: contradiction.round,
          reason: contradiction.reason,
          subject: t,
          self: true,
        };
    }
    return null;
  };

  const settleRound = async (r: number) => {
    for (let issue = firstIssue(r); issue; issue = firstIssue(r)) {
      if (await rerun(issue.targets, issue.round, issue.reason)) continue;
      const tries = attemptsOf(issue.subject, issue.round);
      if (issue.self) {
        // Rounds that disagree say the figure is unstable, not which round is wrong: all stay.
        contradicted.add(issue.subject);
        problems.push({
          kind: 'unstable',
          targets: issue.targets,
          message: `${issue.subject} unstable: ${issue.reason}, still after ${tries} measurement(s) of round ${issue.round + 1}`,
        });
        continue;
      }
      drop(issue.subject, issue.round, `${issue.reason}; still so after ${tries} measurement(s)`);
      problems.push({
        kind: 'sanity',
        targets: issue.targets,
        message: `round ${issue.round + 1}: ${issue.reason} after ${tries} measurement(s): ${issue.subject}'s measurement of that round is left out`,
      });
    }
  };

  /** The ratio pairs whose rounds disagree, with the round farthest from their median. */
  const disagreements = () =>
    spec.ratioPairs.flatMap(([a, b]) => {
      const rounds = [...Array(spec.rounds).keys()].filter(
        (r) => cells.get(a)?.[r] && (cells.get(b)?.[r]?.value ?? 0) > 0,
      );
      const ratios = rounds.map((r) => cells.get(a)![r]!.value / cells.get(b)![r]!.value);
      const i = outlierIndex(ratios, spec.tolerance);
      if (i === null) return [];
      const median = spreadOf(ratios)!.median;
      return [
        {
          pair: [a, b] as T[],
          round: rounds[i]!,
          reason: `${a}/${b} in round ${rounds[i]! + 1} is ${ratios[i]!.toFixed(2)}×, the rounds' median ${median.toFixed(2)}× (tolerance ±${Math.round(spec.tolerance * 100)}%)`,
          ratios,
        },
      ];
    });

  for (let r = 0; r < spec.rounds; r++) {
    for (const t of spec.targets) await take(t, r);
    await settleRound(r);
  }
  while (true) {
    let reran = false;
    for (const d of disagreements()) {
      if (await rerun(d.pair, d.round, d.reason)) {
        await settleRound(d.round);
        reran = true;
        break;
      }
    }
    if (!reran) break;
  }
  for (const d of disagreements()) {
    problems.push({
      kind: 'unstable',
      targets: d.pair,
      message: `${d.pair[0]}/${d.pair[1]} unstable: rounds ${d.ratios.map((x) => `${x.toFixed(2)}×`).join(', ')} disagree beyond ±${Math.round(spec.tolerance * 100)}% after the reruns allowed`,
    });
  }
  const samples = Object.fromEntries(spec.targets.map((t) => [t, valid(t)])) as Record<T, Sample<D>[]>;
  return { samples, discarded, problems, reruns };
}

/** Ratios of two targets' values round by round (paired), over the rounds both have. */
export function pairedRatios(a: readonly Sample<unknown>[], b: readonly Sample<unknown>[]): number[] {
  return a.flatMap((s) => {
    const other = b.find((o) => o.round === s.round);
    return other && other.value > 0 ? [s.value / other.value] : [];
  });
}

/** One figure of one target as a table shows it: its valid rounds, their spread, and what was left out. */
export type Figure<D> = { samples: Sample<D>[]; spread: Spread | null; discarded: Discarded<D>[] };

export function figureOf<T extends string, D>(result: RoundsResult<T, D>, target: T): Figure<D> {
  const samples = result.samples[target] ?? [];
  return {
    samples,
    spread: spreadOf(samples.map((s) => s.value)),
    discarded: result.discarded.filter((d) => d.target === target),
  };
}
