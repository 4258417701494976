/**
 * The search for the maximum sustainable open-loop rate: double the offered rate until a step fails,
 * then bisect between the last passing and the first failing rate. Pure logic over a measurement
 * function, so it is tested with a stub and run with the load generator.
 */

/** What one step at one offered rate showed. */
export type StepVerdict = {
  rate: number;
  ok: boolean;
  /** Why it failed (or 'ok'): `p99 61ms > 50ms`, `3 errors`, `generator fell behind`. */
  reason: string;
  /** Failed because the load generator, not the target, could not hold the schedule. */
  generatorBound?: boolean;
  p99Us?: number;
  throughput?: number;
  /** Cores the rest of the machine used during the step (others' work on a shared machine). */
  othersCores?: number | null;
};

export type SearchOptions = {
  startRate: number;
  /** Never offer more than this. */
  maxRate: number;
  /** Never go below this when the start rate already fails. */
  minRate: number;
  /** Bisection steps after the first failure. */
  bisectSteps: number;
  /** Stop bisecting once (fail - pass) / pass is below this (e.g. 0.05 = 5 %). */
  resolution: number;
  /**
   * Measure a failing rate once more and count it as failed only if it fails again: on a shared
   * machine one noisy second must not end the climb.
   */
  confirmFailures?: boolean;
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

/** Rates are requests per second; rounding keeps them readable and avoids re-measuring near-equal rates. */
export function roundRate(rate: number): number {
  if (rate >= 1000) return Math.round(rate / 50) * 50;
  if (rate >= 100) return Math.round(rate / 10) * 10;
  return Math.max(1, Math.round(rate));
}

export async function findMaxRate(
  measure: (rate: number) => Promise<StepVerdict>,
  options: SearchOptions,
  onStep?: (step: StepVerdict) => void,
): Promise<SearchResult> {
  const steps: StepVerdict[] = [];
  const run = async (rate: number) => {
    let verdict = await measure(rate);
    steps.push(verdict);
    onStep?.(verdict);
    if (!verdict.ok && options.confirmFailures) {
      verdict = await measure(rate);
      verdict = { ...verdict, reason: verdict.ok ? `${verdict.reason} (on the retry)` : verdict.reason };
      steps.push(verdict);
      onStep?.(verdict);
    }
    return verdict;
  };
  let pass: StepVerdict | null = null;
  let fail: StepVerdict | null = null;
  let rate = roundRate(Math.min(options.startRate, options.maxRate));
  // Up: double until a step fails or the ceiling is reached.
  while (true) {
    const verdict = await run(rate);
    if (!verdict.ok) {
      fail = verdict;
      break;
    }
    pass = verdict;
    if (rate >= options.maxRate) break;
    rate = roundRate(Math.min(rate * 2, options.maxRate));
  }
  // The start already failed: halve until something passes or the floor is reached.
  while (pass === null && fail !== null && fail.rate > options.minRate) {
    rate = roundRate(Math.max(fail.rate / 2, options.minRate));
    if (rate >= fail.rate) break;
    const verdict = await run(rate);
    if (verdict.ok) pass = verdict;
    else fail = verdict;
  }
  // Bisect between the highest pass and the lowest failure.
  for (let i = 0; i < options.bisectSteps && pass !== null && fail !== null; i++) {
    if ((fail.rate - pass.rate) / pass.rate < options.resolution) break;
    const mid = roundRate((pass.rate + fail.rate) / 2);
    if (mid <= pass.rate || mid >= fail.rate) break;
    const verdict = await run(mid);
    if (verdict.ok) pass = verdict;
    else fail = verdict;
  }
  return {
    maxRate: pass?.rate ?? 0,
    best: pass,
    firstFailure: fail,
    generatorBound: fail?.generatorBound === true,
    steps,
  };
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
 * bound, and the generator kept its schedule. A generator that fell behind marks the step as bounded by
 * the generator: on a shared machine that also happens when the target takes the generator's CPU.
 */
export function judgeStep(n: StepNumbers, p99BoundUs: number): StepVerdict {
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
    return { ...base, ok: false, generatorBound: true, reason: `generator fell behind (p99 ${p99Ms} ms)` };
  }
  if (n.p99Us > p99BoundUs) {
    return { ...base, ok: false, reason: `p99 ${p99Ms} ms > ${(p99BoundUs / 1000).toFixed(0)} ms` };
  }
  return { ...base, ok: true, reason: `ok, p99 ${p99Ms} ms` };
}
