/**
 * The search for the maximum sustainable open-loop rate, on a ladder of rates (a fixed geometric
 * series per size, so every target and every round is offered the same rates): from a start rung, up
 * (or down) in steps until the verdict flips, then bisection to adjacent rungs. The first round of a
 * figure starts at the size's start rate and moves a doubling at a time; later rounds start at the
 * rounds measured so far and move one rung, then two, four… Pure logic over a measurement function,
 * so it is tested with a stub and run with the load generator.
 */

/** What one step at one offered rate showed. */
export type StepVerdict = {
  rate: number;
  ok: boolean;
  /** Why it failed (or 'ok'): `p99 61ms > 50ms`, `3 errors`, `generator fell behind`. */
  reason: string;
  /** Failed because the load generator, not the target, could not hold the schedule. */
  generatorBound?: boolean;
  /** Not decided by this measurement (see decideStep): a p99 within the noise floor of the bound, or a generator that fell behind. */
  undecided?: boolean;
  p99Us?: number;
  throughput?: number;
  /** Cores the rest of the machine used during the step (others' work on a shared machine). */
  othersCores?: number | null;
};

/** Rates base × 2^(k / perDoubling), k a whole number, rounded and kept within [min, max]. */
export type Ladder = { base: number; perDoubling: number; min: number; max: number };

/** Rates are requests per second; rounding keeps them readable and avoids re-measuring near-equal rates. */
export function roundRate(rate: number): number {
  if (rate >= 1000) return Math.round(rate / 50) * 50;
  if (rate >= 100) return Math.round(rate / 10) * 10;
  return Math.max(1, Math.round(rate));
}

/** The lowest and the highest rung of a ladder. */
export function rungRange(ladder: Ladder): { low: number; high: number } {
  const at = (rate: number) => Math.log2(rate / ladder.base) * ladder.perDoubling;
  return { low: Math.ceil(at(ladder.min) - 1e-9), high: Math.floor(at(ladder.max) + 1e-9) };
}

export function rateAt(ladder: Ladder, rung: number): number {
  return roundRate(ladder.base * 2 ** (rung / ladder.perDoubling));
}

/** The highest rung whose rate is at most `rate` (the lowest rung for rates below it). */
export function rungAtOrBelow(ladder: Ladder, rate: number): number {
  const { low, high } = rungRange(ladder);
  let rung = Math.floor(Math.log2(Math.max(rate, 1e-9) / ladder.base) * ladder.perDoubling + 1e-9);
  while (rung > low && rateAt(ladder, rung) > rate) rung--;
  // A rung's rate is rounded, sometimes below its exact value: the next rung may still be at or below.
  while (rung < high && rateAt(ladder, rung + 1) <= rate) rung++;
  return Math.min(high, Math.max(low, rung));
}

/** The relative step between two adjacent rungs: the resolution of a maximum found on this ladder. */
export function ladderResolution(ladder: Pick<Ladder, 'perDoubling'>): number {
  return 2 ** (1 / ladder.perDoubling) - 1;
}

export type SearchOptions = {
  ladder: Ladder;
  startRung: number;
  /** Rungs per step at first (perDoubling: a doubling; 1: the next rate). */
  step: number;
  /** Double the step after each step in the same direction (a later round: near, then farther). */
  accelerate: boolean;
};

export type SearchResult = {
  /** Highest rate that passed, or 0 when none did. */
  maxRate: number;
  /** The passing step at maxRate, if any. */
  best: StepVerdict | null;
  /** Lowest rate that failed, if any (null: the ceiling was reached without a failure). */
  firstFailure: StepVerdict | null;
  /** The limit is the generator's, not the target's: the target is at least this fast. */
  generatorBound: boolean;
  /** Every step in the order it ran. */
  steps: StepVerdict[];
};

export async function findMaxRate(
  measure: (rate: number) => Promise<StepVerdict>,
  options: SearchOptions,
  onStep?: (step: StepVerdict) => void,
): Promise<SearchResult> {
  const { ladder } = options;
  const { low, high } = rungRange(ladder);
  const steps: StepVerdict[] = [];
  const verdicts = new Map<number, StepVerdict>();
  const run = async (rung: number) => {
    const rate = rateAt(ladder, rung);
    let verdict = verdicts.get(rate);
    if (!verdict) {
      verdict = await measure(rate);
      verdicts.set(rate, verdict);
      steps.push(verdict);
      onStep?.(verdict);
    }
    return verdict.ok;
  };
  let pass: number | null = null;
  let fail: number | null = null;
  let rung = Math.min(high, Math.max(low, options.startRung));
  let step = Math.max(1, options.step);
  if (await run(rung)) {
    pass = rung;
    while (rung < high) {
      rung = Math.min(high, rung + step);
      if (!(await run(rung))) {
        fail = rung;
        break;
      }
      pass = rung;
      if (options.accelerate) step *= 2;
    }
  } else {
    fail = rung;
    while (rung > low) {
      rung = Math.max(low, rung - step);
      if (await run(rung)) {
        pass = rung;
        break;
      }
      fail = rung;
      if (options.accelerate) step *= 2;
    }
  }
  // Bisect between the highest pass and the lowest failure, down to adjacent rungs.
  while (pass !== null && fail !== null && fail - pass > 1) {
    const mid = Math.floor((pass + fail) / 2);
    if (await run(mid)) pass = mid;
    else fail = mid;
  }
  const best = pass === null ? null : verdicts.get(rateAt(ladder, pass))!;
  const firstFailure = fail === null ? null : verdicts.get(rateAt(ladder, fail))!;
  return {
    maxRate: best?.rate ?? 0,
    best,
    firstFailure,
    generatorBound: firstFailure?.generatorBound === true,
    steps,
  };
}

/**
 * One step, decided. Two kinds of step say nothing yet and are measured again, up to `tries` times:
 * - a p99 within the instrument's noise floor of the bound: if it stays that close, the p99 cannot
 *   decide it, and the other criteria (no failed request, the generator on schedule, both held or it
 *   would not be undecided) pass it;
 * - a generator that fell behind: the offered rate was not the one asked for, so the target was not
 *   tested at it. If it falls behind again the step fails, bounded by the generator (on a shared
 *   machine a saturated target takes the generator's CPU; a transient stall does not repeat). Issue
 *   16's quick runs lost whole rounds to one such step far below the target's maximum (the unikernel
 *   failed at 2,000 req/s and held 16,000 in the next round).
 * Returns every measurement, the deciding one last.
 */
export async function decideStep(
  measureOnce: () => Promise<StepVerdict>,
  tries: number,
): Promise<StepVerdict[]> {
  const taken: StepVerdict[] = [];
  for (let i = 0; i < Math.max(1, tries); i++) {
    const verdict = await measureOnce();
    taken.push(verdict);
    if (!verdict.undecided) return taken;
  }
  const last = taken.at(-1)!;
  taken[taken.length - 1] = last.generatorBound
    ? {
        ...last,
        undecided: false,
        reason: `${last.reason} in ${taken.length} measurement(s)`,
      }
    : {
        ...last,
        ok: true,
        undecided: false,
        reason: `${last.reason} in ${taken.length} measurement(s): decided on errors and schedule (none failed, on schedule)`,
      };
  return taken;
}

/**
 * Which of two contradicting rounds to measure again: with three rounds or more, the one whose
 * maximum is farther from their median; with two there is no telling, so the later one.
 */
function outlyingRound<R extends { round: number; maxRate: number }>(rounds: readonly R[], a: R, b: R): R {
  const later = a.round > b.round ? a : b;
  if (rounds.length < 3) return later;
  const sorted = rounds.map((r) => r.maxRate).sort((x, y) => x - y);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  const distance = (r: R) => Math.abs(Math.log(Math.max(r.maxRate, 1) / Math.max(median, 1)));
  return distance(a) === distance(b) ? later : distance(a) > distance(b) ? a : b;
}

/**
 * Rounds of one target whose steps contradict each other: a rate passed in one round more than
 * `tolerance` above a rate that failed in another (for the target or for the generator). Gives the
 * round to measure again (see outlyingRound) or null.
 */
export function contradictingRound(
  rounds: readonly { round: number; maxRate: number; steps: readonly StepVerdict[] }[],
  tolerance: number,
): { round: number; reason: string } | null {
  for (const a of rounds) {
    const passed = Math.max(0, ...a.steps.filter((s) => s.ok).map((s) => s.rate));
    for (const b of rounds) {
      if (b.round === a.round) continue;
      // A generator that fell behind at a rate it held in another round also says the conditions changed.
      const failed = b.steps.filter((s) => !s.ok).map((s) => s.rate);
      const lowest = failed.length ? Math.min(...failed) : Number.POSITIVE_INFINITY;
      if (passed <= lowest * (1 + tolerance)) continue;
      const outlier = outlyingRound(rounds, a, b);
      return {
        round: outlier.round,
        reason: `${passed} req/s passed in round ${a.round + 1} but ${lowest} req/s failed in round ${b.round + 1} (more than ${Math.round(tolerance * 100)}% lower)`,
      };
    }
  }
  return null;
}

/** The numbers of one load step that decide whether its rate was sustained. */
export type StepNumbers = {
  rate: number;
  sent: number;
  ok: number;
  /** Completed requests that were not ok, plus requests that never completed. */
  errors: number;
  /** A sample error message, for the reason. */
  errorSample?: string;
  p99Us: number;
  throughput: number;
  /** The generator fell behind its schedule in some second. */
  generatorBehind: boolean;
};

/**
 * A rate is sustained when every request succeeded, p99 (from the intended send time) stayed under the
 * bound, and the generator kept its schedule; a p99 within the noise floor of the bound is undecided
 * (see decideStep). A generator that fell behind marks the step as bounded by the generator, and
 * undecided until it falls behind again (see decideStep).
 */
export function judgeStep(n: StepNumbers, p99BoundUs: number, noiseFloorUs = 0): StepVerdict {
  const base = { rate: n.rate, p99Us: n.p99Us, throughput: n.throughput };
  const p99Ms = (n.p99Us / 1000).toFixed(1);
  if (n.errors > 0) {
    return {
      ...base,
      ok: false,
      reason: `${n.errors} failed of ${n.sent}${n.errorSample ? ` (${n.errorSample})` : ''}`,
    };
  }
  if (n.generatorBehind) {
    return {
      ...base,
      ok: false,
      generatorBound: true,
      undecided: true,
      reason: `generator fell behind (p99 ${p99Ms} ms)`,
    };
  }
  if (noiseFloorUs > 0 && Math.abs(n.p99Us - p99BoundUs) <= noiseFloorUs) {
    return {
      ...base,
      ok: n.p99Us <= p99BoundUs,
      undecided: true,
      reason: `p99 ${p99Ms} ms within the noise floor (${(noiseFloorUs / 1000).toFixed(1)} ms) of the ${(p99BoundUs / 1000).toFixed(0)} ms bound`,
    };
  }
  if (n.p99Us > p99BoundUs) {
    return { ...base, ok: false, reason: `p99 ${p99Ms} ms > ${(p99BoundUs / 1000).toFixed(0)} ms` };
  }
  return { ...base, ok: true, reason: `ok, p99 ${p99Ms} ms` };
}
