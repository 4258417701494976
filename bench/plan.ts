/**
 * What a benchmark run measures and for how long: the full and the quick plan, what quick gives up,
 * the run's duration estimated from the plan, and the clock that shows elapsed and remaining time.
 */
import { ladderResolution } from './search.ts';
import { SIZE_KEYS, SIZES, type SizeKey, TARGET_NAMES, type TargetName } from './types.ts';

export type Plan = {
  name: 'quick' | 'full';
  /** Every figure is measured this many times, interleaved across the targets. */
  rounds: number;
  /** Rounds of a ratio agree when each is within ±tolerance (as a factor) of their median. */
  tolerance: number;
  /** Measurements of one target in one round at most (the first included). */
  maxAttempts: number;
  /** Reruns in all, per figure (one size of one phase). */
  rerunBudget: number;
  p99BoundMs: number;
  /** One step of the throughput search, stretched at low rates to hold minStepRequests. */
  stepWindowMs: number;
  minStepRequests: number;
  /** A request not answered this long after its intended send time fails (throughput steps). */
  stepTimeoutMs: number;
  /** Measurements of a step whose p99 is within the noise floor of the bound, before deciding on the other criteria. */
  undecidedTries: number;
  /** The benchmark's own warm-up before a target's first measurement at a size. */
  warmupMs: number;
  /** After it, windows at the rate until one passes as a search step would, at most this many. */
  warmupMaxWindows: number;
  connections: number;
  ladder: {
    /** Rungs per doubling: the resolution of a maximum is 2^(1/perDoubling) − 1. */
    perDoubling: number;
    startRates: Record<SizeKey, number>;
    maxRates: Record<SizeKey, number>;
    minRate: number;
  };
  /** Per size, the targets whose maximum throughput is searched ('all', or a list). */
  throughputSizes: Record<SizeKey, 'all' | readonly TargetName[]>;
  latency: {
    sizes: readonly SizeKey[];
    /** The targets measured ('all', or a list). */
    targets: 'all' | readonly TargetName[];
    windowMs: number;
    minRequests: number;
    rates: Record<SizeKey, number>;
  };
  coldStartRounds: number;
  recovery: { rate: number; durationMs: number; faultAtMs: number };
  /** Sequential 1 KiB round trips per round. */
  natsRoundTrips: number;
  /** What tracing costs each style (bench/tracing-cost.ts), or null to leave it out. */
  tracing: { rate: number; durationMs: number; ratio: number } | null;
  calibration: {
    /** The rate of the noise-floor runs, and their window. */
    noiseRate: number;
    windowMs: number;
    /**
     * The generator holds a rate when its send-lag p99 stays below this. Its sender ticks on Node's
     * timers, which fire on whole milliseconds: a request due between two ticks leaves up to a tick late
     * by construction, and on this machine the send-lag p99 was 1.05–2.6 ms at every rate from 11 to
     * 1,000 req/s. So the bound is a tick plus 1 ms: what is left above it is the generator falling behind.
     */
    sendLagBoundUs: number;
    startRate: number;
    maxRate: number;
  };
};

const FULL: Plan = {
  name: 'full',
  rounds: 3,
  tolerance: 0.2,
  maxAttempts: 3,
  rerunBudget: 8,
  p99BoundMs: 50,
  stepWindowMs: 3000,
  minStepRequests: 60,
  stepTimeoutMs: 2000,
  undecidedTries: 2,
  warmupMs: 2000,
  warmupMaxWindows: 4,
  connections: 32,
  ladder: {
    perDoubling: 8,
    startRates: { '4k': 1000, '64k': 250, '1m': 50 },
    maxRates: { '4k': 32_000, '64k': 16_000, '1m': 4000 },
    minRate: 10,
  },
  throughputSizes: { '4k': 'all', '64k': 'all', '1m': 'all' },
  latency: {
    sizes: SIZE_KEYS,
    targets: 'all',
    windowMs: 5000,
    minRequests: 100,
    rates: { '4k': 100, '64k': 50, '1m': 10 },
  },
  coldStartRounds: 7,
  recovery: { rate: 200, durationMs: 10_000, faultAtMs: 3000 },
  natsRoundTrips: 2000,
  calibration: { noiseRate: 1000, windowMs: 5000, sendLagBoundUs: 2000, startRate: 1000, maxRate: 64_000 },
  tracing: { rate: 200, durationMs: 5000, ratio: 0.01 },
};

/** The targets issue #17's 1 MiB and 64 KiB targets compare. */
const LARGE_FILE_TARGETS: readonly TargetName[] = ['monolith', 'microkernel', 'microkernel-shm'];

/**
 * Quick 4 KiB searches: the references and the styles, whose ratios issue #16 compares run to run (the
 * transfer variants only in the full plan; small files travel in shm as on a grant).
 */
const QUICK_4K_TARGETS: readonly TargetName[] = TARGET_NAMES.filter(
  (name) => name !== 'microkernel-copy' && name !== 'microkernel-shm',
);

/** Under 5 minutes on 2 cores: shorter windows, fewer sizes, one rerun per measurement. */
const QUICK: Plan = {
  ...FULL,
  name: 'quick',
  maxAttempts: 2,
  rerunBudget: 3,
  stepWindowMs: 1000,
  minStepRequests: 40,
  warmupMs: 500,
  ladder: { ...FULL.ladder, perDoubling: 6 },
  throughputSizes: { '4k': QUICK_4K_TARGETS, '64k': [], '1m': LARGE_FILE_TARGETS },
  latency: { ...FULL.latency, sizes: ['4k'], targets: QUICK_4K_TARGETS, windowMs: 1500 },
  coldStartRounds: 3,
  recovery: { rate: 200, durationMs: 2000, faultAtMs: 500 },
  natsRoundTrips: 300,
  calibration: { ...FULL.calibration, windowMs: 1000 },
  tracing: null,
};

export const PLANS: Record<'quick' | 'full', Plan> = { quick: QUICK, full: FULL };

/** A plan with another number of rounds (at least 1; fewer than 3 gives no spread worth reading). */
export function withRounds(plan: Plan, rounds: number): Plan {
  return { ...plan, rounds, coldStartRounds: Math.max(rounds, plan.coldStartRounds) };
}

export function throughputTargets(plan: Plan, size: SizeKey, names: readonly TargetName[]): TargetName[] {
  const scope = plan.throughputSizes[size];
  return names.filter((n) => scope === 'all' || scope.includes(n));
}

export function latencyTargets(plan: Plan, names: readonly TargetName[]): TargetName[] {
  const scope = plan.latency.targets;
  return names.filter((n) => scope === 'all' || scope.includes(n));
}

/** What `plan` gives up against the full plan, in words (empty for the full plan). */
export function tradeoffs(plan: Plan, full: Plan = FULL): string[] {
  const out: string[] = [];
  for (const size of SIZE_KEYS) {
    const scope = plan.throughputSizes[size];
    if (scope !== 'all' && full.throughputSizes[size] === 'all')
      out.push(
        scope.length
          ? `max throughput at ${SIZES[size].label} for ${scope.join(', ')} only`
          : `no max throughput at ${SIZES[size].label}`,
      );
  }
  if (plan.ladder.perDoubling < full.ladder.perDoubling) {
    const resolution = (p: Plan) => `${Math.round(ladderResolution(p.ladder) * 100)}%`;
    out.push(
      `a search ladder of ${plan.ladder.perDoubling} rates per doubling instead of ${full.ladder.perDoubling}: maxima to ${resolution(plan)} instead of ${resolution(full)}`,
    );
  }
  if (plan.stepWindowMs < full.stepWindowMs)
    out.push(
      `search steps of ${plan.stepWindowMs / 1000} s instead of ${full.stepWindowMs / 1000} s (at least ${plan.minStepRequests} requests): a transient decides a step more easily`,
    );
  const scope = plan.latency.targets;
  if (scope !== 'all' && full.latency.targets === 'all') out.push(`latency for ${scope.join(', ')} only`);
  const skipped = full.latency.sizes.filter((s) => !plan.latency.sizes.includes(s));
  if (skipped.length)
    out.push(
      `latency and RSS at ${plan.latency.sizes.map((s) => SIZES[s].label).join(', ')} only (not ${skipped.map((s) => SIZES[s].label).join(', ')})`,
    );
  if (plan.latency.windowMs < full.latency.windowMs)
    out.push(
      `latency windows of ${plan.latency.windowMs / 1000} s instead of ${full.latency.windowMs / 1000} s: p99.9 rests on a handful of requests`,
    );
  if (plan.warmupMs < full.warmupMs)
    out.push(`warm-up of ${plan.warmupMs / 1000} s instead of ${full.warmupMs / 1000} s`);
  if (plan.coldStartRounds < full.coldStartRounds)
    out.push(`${plan.coldStartRounds} cold starts per target instead of ${full.coldStartRounds}`);
  if (plan.recovery.durationMs < full.recovery.durationMs)
    out.push(
      `recovery windows of ${plan.recovery.durationMs / 1000} s instead of ${full.recovery.durationMs / 1000} s`,
    );
  if (plan.maxAttempts < full.maxAttempts || plan.rerunBudget < full.rerunBudget)
    out.push(
      `at most ${plan.maxAttempts - 1} rerun(s) per measurement and ${plan.rerunBudget} per figure (full: ${full.maxAttempts - 1} and ${full.rerunBudget}): more figures end up reported unstable`,
    );
  if (plan.calibration.windowMs < full.calibration.windowMs)
    out.push(
      `calibration windows of ${plan.calibration.windowMs / 1000} s instead of ${full.calibration.windowMs / 1000} s`,
    );
  if (!plan.tracing && full.tracing)
    out.push(
      'no tracing cost (off, on, sampled per style): `npx tsx bench/tracing-cost.ts` measures it alone',
    );
  if (plan.rounds < full.rounds)
    out.push(`${plan.rounds} round(s) instead of ${full.rounds}: no spread worth reading`);
  return out;
}

/** What the estimate assumes a target, a step or a start costs on a 2-core machine. */
export const COSTS = {
  /** Machine facts and the corpus. */
  setupMs: 2000,
  /** Spawn → serving (the microkernel: nats-server, supervisor and three servers). */
  startMs: {
    floor: 400,
    nginx: 200,
    monolith: 700,
    microkernel: 2500,
    'microkernel-copy': 2500,
    'microkernel-shm': 2500,
    unikernel: 300,
  },
  stopMs: 400,
  /** Per load run besides its window: opening connections, draining, readiness after a failed step. */
  runOverheadMs: 400,
  /** Doubling steps of a first-round search up to its first failure, and steps of a later round (a staircase). */
  climbSteps: 5,
  laterRoundSteps: 2.5,
  natsServerStartMs: 500,
  /** The Security row of the running styles: the hostile battery, /metrics, /proc, the isolation probe. */
  securityMs: 4000,
  natsRoundTripMs: 0.5,
} satisfies { startMs: Record<TargetName, number> } & Record<string, unknown>;

/** The window of one search step at `rate`: the plan's, longer at low rates to hold enough requests. */
export function stepWindowMs(plan: Plan, rate: number): number {
  return Math.min(Math.max(plan.stepWindowMs, (plan.minStepRequests / rate) * 1000), 3 * plan.stepWindowMs);
}

export function latencyWindowMs(plan: Plan, size: SizeKey): number {
  return Math.max(plan.latency.windowMs, (plan.latency.minRequests / plan.latency.rates[size]) * 1000);
}

/**
 * Paced NATS round trips per round: as many as the 4 KiB latency window sends at its rate, so the
 * round trip and the p50 it is added to are measured at the same pace.
 */
export function pacedNatsRoundTrips(plan: Plan): number {
  return Math.round((plan.latency.windowMs / 1000) * plan.latency.rates['4k']);
}

/** A doubling climb, then a bisection down to adjacent rates. */
function firstRoundSteps(plan: Plan): number {
  return COSTS.climbSteps + Math.log2(plan.ladder.perDoubling);
}

/** Estimated cost of each unit of work, shared by the estimate and the progress clock. */
export const costOf = {
  /** The fixed warm-up and the window that usually ends it (at most warmupMaxWindows). */
  warmUp(plan: Plan, size: SizeKey): number {
    return plan.warmupMs + stepWindowMs(plan, plan.ladder.startRates[size]) + 2 * COSTS.runOverheadMs;
  },
  search(plan: Plan, size: SizeKey, round: number): number {
    const steps = round === 0 ? firstRoundSteps(plan) : COSTS.laterRoundSteps;
    const warmup = round === 0 ? costOf.warmUp(plan, size) : 0;
    return warmup + steps * (stepWindowMs(plan, plan.ladder.startRates[size]) + COSTS.runOverheadMs);
  },
  /** A latency round; the first warms up a target its throughput search did not (see needsWarmup). */
  latency(plan: Plan, size: SizeKey, round: number, warmedUp: boolean): number {
    const warmup = round === 0 && !warmedUp ? costOf.warmUp(plan, size) : 0;
    return warmup + latencyWindowMs(plan, size) + COSTS.runOverheadMs;
  },
  coldStart(target: TargetName): number {
    return COSTS.startMs[target] + COSTS.stopMs;
  },
  /** A recovery round on a target already started (its restarter brings it back between rounds). */
  recovery(plan: Plan, target: TargetName): number {
    return COSTS.startMs[target] + plan.recovery.durationMs + COSTS.runOverheadMs;
  },
  /** One round of back-to-back round trips. */
  nats(plan: Plan): number {
    return plan.natsRoundTrips * COSTS.natsRoundTripMs + 200;
  },
  /** One batch of paced round trips, in a 4 KiB latency round: one latency window. */
  pacedNats(plan: Plan): number {
    return plan.latency.windowMs + 200;
  },
  calibrationNoise(plan: Plan): number {
    return plan.calibration.windowMs + COSTS.runOverheadMs;
  },
  calibrationSearch(plan: Plan, round: number): number {
    const steps = round === 0 ? firstRoundSteps(plan) : COSTS.laterRoundSteps;
    return steps * (stepWindowMs(plan, plan.calibration.startRate) + COSTS.runOverheadMs);
  },
  /** One style's tracing cost: three instances, a short warm-up each, then every mode `rounds` times. */
  tracing(plan: Plan, style: TargetName): number {
    if (!plan.tracing) return 0;
    const run = plan.tracing.durationMs + COSTS.runOverheadMs;
    const warmup = Math.min(3000, plan.tracing.durationMs) + COSTS.runOverheadMs;
    return 3 * (costOf.coldStart(style) + warmup) + 3 * Math.max(3, plan.rounds) * run;
  },
};

/** The targets each phase measures. */
export type PhaseTargets = {
  /** Started once and kept running for calibration, throughput and latency. */
  fleet: readonly TargetName[];
  coldStart: readonly TargetName[];
  recovery: readonly TargetName[];
};

/** 75 s → "1:15". */
export function formatClock(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/**
 * Elapsed and remaining time of a run: the work done is counted in the estimate's own units, and the
 * remaining estimate is scaled by the pace so far (a busy machine runs behind the plan) once a tenth
 * of the plan is done.
 */
export class ProgressClock {
  private doneMs = 0;

  constructor(
    private plannedMs: number,
    private readonly startedAt: number,
  ) {}

  /** Counts a finished unit of work, by its estimated cost. */
  advance(estimatedMs: number): void {
    this.doneMs += estimatedMs;
  }

  /** The plan grew (a rerun): more work left. */
  extend(estimatedMs: number): void {
    this.plannedMs += estimatedMs;
  }

  status(now: number): { elapsedMs: number; remainingMs: number } {
    const elapsedMs = Math.max(0, now - this.startedAt);
    const left = Math.max(0, this.plannedMs - this.doneMs);
    const pace = this.doneMs >= this.plannedMs / 10 ? Math.min(4, Math.max(0.5, elapsedMs / this.doneMs)) : 1;
    return { elapsedMs, remainingMs: left * pace };
  }

  /** "[1:15 elapsed · ~3:20 left]". */
  label(now: number): string {
    const { elapsedMs, remainingMs } = this.status(now);
    return `[${formatClock(elapsedMs)} elapsed · ~${formatClock(remainingMs)} left]`;
  }
}
