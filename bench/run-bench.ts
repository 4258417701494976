/**
 * The benchmark run: every target on this machine, measured in rounds interleaved across the targets
 * (bench/repeats.ts), through the load generator's open-loop engine (bench/load-run.ts). The phases
 * are data (PHASES): the NATS round trip; the calibration of the instrument against nginx; maximum
 * sustainable rate per size; latency and memory at a common rate; cold start; recovery from a SIGKILL
 * under a steady rate. Calibration, throughput and latency share one set of running targets.
 */

import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { STYLES } from '../cli/kit/defaults.ts';
import { KSTYLES_BIN, REPO_ROOT } from '../cli/kit/repo.ts';
import { type Spread, spreadOf } from '../cli/kit/spread.ts';
import { type LoadResults, measureSecurity, rangeFileOf } from '../load/index.ts';
import { formatCount, formatMicros, formatPercent } from '../load/units.ts';
import { freePort } from '../services/contract/http-server.ts';
import { MALLOC_ENV } from '../services/contract/malloc-env.ts';
import { readManifest } from '../services/corpus/corpus.ts';
import { SupervisorControlClient } from '../services/supervisor/control-client.ts';
import { listRuntimeStates } from '../services/supervisor/runtime-state.ts';
import { checkInstrument, evaluateTargets, formatRatio, ratioPairs, sanityRules } from './evaluate.ts';
import { benchLoad, GENERATOR_THREADS } from './load-run.ts';
import { cpuPressure, describeMachine, NATS_SERVER_BIN, NGINX_BIN } from './machine.ts';
import {
  COSTS,
  costOf,
  formatClock,
  latencyTargets,
  latencyWindowMs,
  type PhaseTargets,
  PLANS,
  type Plan,
  ProgressClock,
  pacedNatsRoundTrips,
  stepWindowMs,
  throughputTargets,
  tradeoffs,
  withRounds,
} from './plan.ts';
import {
  cmdline,
  isAlive,
  processTree,
  type Spawned,
  sampleRss,
  startProcess,
  waitFor200,
  watchOthersCpu,
} from './procs.ts';
import { missingBinary, NATS_PAYLOAD_BYTES, openNatsEcho } from './references.ts';
import {
  figureOf,
  type Measure,
  measureRounds,
  outlierIndex,
  pairedRatios,
  type RerunEvent,
  type RoundsResult,
  type RoundsSpec,
  type Sample,
} from './repeats.ts';
import {
  contradictingRound,
  decideStep,
  findMaxRate,
  judgeStep,
  type Ladder,
  ladderResolution,
  rungAtOrBelow,
  type StepVerdict,
} from './search.ts';
import {
  benchSupervisorId,
  MICROKERNEL_TRANSFERS,
  READY_PATHS,
  type RunningTarget,
  SkipTarget,
  startTarget,
  TARGETS,
  type TargetPhase,
  unikernelImageFacts,
} from './targets.ts';
import { measureTracingCost } from './tracing-cost.ts';
import {
  type BenchMethod,
  type BenchResults,
  type Calibration,
  type FigureProblem,
  type FootprintRound,
  type LatencyRound,
  type Machine,
  type NatsResult,
  type NatsRound,
  type RecoveryRound,
  SIZE_KEYS,
  SIZES,
  type SizeKey,
  TARGET_NAMES,
  type TargetBench,
  type TargetName,
  type ThroughputRound,
} from './types.ts';

/** Where the benchmark tells the user what it is doing. */
export type BenchProgress = {
  /** A new step begins (printed as its own line). */
  step(text: string): void;
  /** The running step's live state (redrawn in place on a terminal). */
  live(text: string): void;
  /** A finished result or a remark. */
  info(text: string): void;
};

export type BenchOptions = {
  quick: boolean;
  /** Rounds per figure instead of the plan's (3); fewer than 3 gives no spread worth reading. */
  rounds?: number;
  /** Only these targets (default: all). */
  only?: TargetName[];
  progress: BenchProgress;
  signal?: AbortSignal;
};

export type BenchRun = {
  results: BenchResults;
  /** Load-generator results of the latency runs per size and of the recovery runs, for their reports. */
  loadRuns: { latency: Partial<Record<SizeKey, LoadResults[]>>; recovery: LoadResults[] };
};

const SUPERVISOR_MAIN = path.join(REPO_ROOT, 'services', 'supervisor', 'main.ts');

function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The plan of a run: quick or full, with the rounds asked for. */
export function planFor(quick: boolean, rounds?: number): Plan {
  const plan = quick ? PLANS.quick : PLANS.full;
  return rounds === undefined ? plan : withRounds(plan, rounds);
}

/** The targets of each phase, among those asked for. */
export function phaseTargets(names: readonly TargetName[]): PhaseTargets {
  const taking = (phase: TargetPhase) => names.filter((n) => TARGETS[n].phases.includes(phase));
  return {
    fleet: names.filter((n) => TARGETS[n].phases.some((p) => p === 'throughput' || p === 'latency')),
    coldStart: taking('coldStart'),
    recovery: taking('recovery'),
  };
}

/**
 * Creates the corpus through the CLI and one single-file manifest per size (same shape as the corpus's),
 * so each load run asks for one size only.
 */
export async function prepareCorpus(
  workDir: string,
): Promise<{ dataDir: string; manifestDir: Record<SizeKey, string> }> {
  const dataDir = path.join(workDir, 'corpus');
  const corpus = startProcess('corpus', process.execPath, [KSTYLES_BIN, 'corpus', '--dir', dataDir]);
  await corpus.exited;
  if (corpus.exit?.code !== 0)
    throw new Error(`kstyles corpus failed (exit ${corpus.exit?.code}):\n    ${corpus.tail()}`);
  const manifest = JSON.parse(await readFile(path.join(dataDir, 'MANIFEST.json'), 'utf8')) as {
    version: number;
    seed: number;
    files: { path: string; size: number }[];
  };
  const manifestDir = {} as Record<SizeKey, string>;
  for (const size of SIZE_KEYS) {
    const file = manifest.files.find((f) => f.path === SIZES[size].path);
    if (!file) throw new Error(`the corpus has no ${SIZES[size].path}: regenerate it with kstyles corpus`);
    const dir = path.join(workDir, 'manifests', size);
    await mkdir(dir, { recursive: true });
    const single = {
      version: manifest.version,
      seed: manifest.seed,
      count: 1,
      totalBytes: file.size,
      files: [file],
      notServable: [],
    };
    await writeFile(path.join(dir, 'MANIFEST.json'), JSON.stringify(single));
    manifestDir[size] = dir;
  }
  return { dataDir, manifestDir };
}

/** What every phase of one run shares: the plan, the corpus, the clock, and what was found so far. */
export type BenchContext = {
  plan: Plan;
  progress: BenchProgress;
  machine: Machine;
  dataDir: string;
  workDir: string;
  manifestDir: Record<SizeKey, string>;
  signal: AbortSignal | undefined;
  aborted(): boolean;
  clock: ProgressClock;
  targets: TargetBench[];
  /** The targets started once for calibration, throughput and latency. */
  fleet: Map<TargetName, RunningTarget>;
  /** `${target}/${size}` already warmed up in this run. */
  warmedUp: Set<string>;
  /** Corrected p99 of the generator against nginx at a light rate, µs (0 until calibrated). */
  noiseFloorUs: number;
  calibration: BenchResults['calibration'];
  nats: BenchResults['nats'];
  security: BenchResults['security'];
  tracing: BenchResults['tracing'];
  problems: FigureProblem[];
  reruns: number;
  loadRuns: BenchRun['loadRuns'];
};

/** A phase of the run: its name, its estimated cost, whether it needs the running targets, its work. */
export type Phase = {
  id: string;
  title: string;
  usesFleet: boolean;
  estimateMs(plan: Plan, targets: PhaseTargets): number;
  run(ctx: BenchContext): Promise<void>;
};

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
const roundsOf = (plan: Plan) => [...Array(plan.rounds).keys()];

/** Counts a measurement done on the clock; a rerun (attempt > 1) was not in the plan, so it adds to it first. */
function done(ctx: BenchContext, estimatedMs: number, attempt: number): void {
  if (attempt > 1) ctx.clock.extend(estimatedMs);
  ctx.clock.advance(estimatedMs);
}

/** Prints a new step with the clock. */
function step(ctx: BenchContext, text: string): void {
  ctx.progress.step(`${ctx.clock.label(performance.now())} ${text}`);
}

/** Measures rounds, counting reruns and keeping what stayed wrong under the figure's name. */
async function rounds<T extends string, D>(
  ctx: BenchContext,
  figure: string,
  spec: RoundsSpec<T, D>,
  measure: Measure<T, D>,
): Promise<RoundsResult<T, D>> {
  const result = await measureRounds(spec, measure, (e: RerunEvent<T>) => {
    ctx.progress.info(`↻ ${figure}: ${e.targets.join(' and ')}, round ${e.round + 1} again — ${e.reason}`);
  });
  ctx.reruns += result.reruns;
  for (const p of result.problems) reportProblem(ctx, { ...p, figure });
  return result;
}

/** Keeps what stayed wrong for the report's problems and says it as it happens. */
function reportProblem(ctx: BenchContext, problem: FigureProblem): void {
  ctx.problems.push(problem);
  ctx.progress.info(`⚠ ${problem.figure}: ${problem.message}`);
}

/** The spec every phase of targets shares: the plan's rounds, tolerance and budget. */
function targetSpec<D>(
  ctx: BenchContext,
  names: readonly TargetName[],
  higherIsBetter: boolean,
  extra: Partial<RoundsSpec<TargetName, D>> = {},
): RoundsSpec<TargetName, D> {
  const { plan } = ctx;
  return {
    targets: names,
    rounds: plan.rounds,
    tolerance: plan.tolerance,
    higherIsBetter,
    sanity: sanityRules(names, plan.tolerance),
    ratioPairs: ratioPairs(names),
    maxAttempts: plan.maxAttempts,
    rerunBudget: plan.rerunBudget,
    ...extra,
  };
}

const bench = (ctx: BenchContext, name: TargetName) => ctx.targets.find((t) => t.name === name)!;

/** A fleet target still serving, or null (with a note) when it died. */
function serving(ctx: BenchContext, name: TargetName): RunningTarget | null {
  const running = ctx.fleet.get(name);
  if (!running) return null;
  if (!running.child.running) {
    const t = bench(ctx, name);
    const note = `it exited during the run (${running.child.exit?.signal ?? `code ${running.child.exit?.code}`}): later measurements are missing — ${running.child.tail(2)}`;
    if (!t.notes.includes(note)) t.notes.push(note);
    return null;
  }
  return running;
}

/**
 * The benchmark's own warm-up, once per target and size in a run: code paths compiled before the
 * target is first measured at that size (each load opens its own connections). A fixed time was not
 * enough: the first search step of a round still failed at a rate the same target held five times over
 * later (issue 16's quick runs: the monolith at 1,000 req/s with p99 52 ms, then 5,050 in the next
 * round), so after it, windows at the rate follow until one passes as a search step would (at most
 * `plan.warmupMaxWindows`). None of it counts; what it took is recorded with the target.
 */
async function warmUp(ctx: BenchContext, running: RunningTarget, size: SizeKey, rate: number, label: string) {
  const key = `${running.name}/${size}`;
  if (ctx.warmedUp.has(key)) return;
  ctx.warmedUp.add(key);
  await benchLoad({
    name: running.name,
    url: running.url,
    corpusDir: ctx.manifestDir[size],
    rate,
    durationMs: ctx.plan.warmupMs,
    timeoutMs: ctx.plan.stepTimeoutMs,
    connections: ctx.plan.connections,
    label: `${label} warm-up`,
    onLive: ctx.progress.live,
    signal: ctx.signal,
  });
  const windows: StepVerdict[] = [];
  while (windows.length < ctx.plan.warmupMaxWindows && !ctx.aborted()) {
    const verdict = await stepAt(ctx, running, size, rate, `${label} warm-up ${windows.length + 1}`);
    windows.push(verdict);
    if (verdict.ok) break;
  }
  const held = windows.at(-1)?.ok === true;
  // The calibration may warm up a reference that is not one of the run's targets (--only).
  const t = ctx.targets.find((x) => x.name === running.name);
  if (t) t.warmUps[size] = { rate, fixedMs: ctx.plan.warmupMs, windows, held };
  ctx.progress.info(
    `  warm-up at ${rate} req/s: ${ctx.plan.warmupMs / 1000} s, then ${windows.length} window${windows.length === 1 ? '' : 's'} until ${held ? 'one passed' : `the limit (${windows.at(-1)?.reason ?? 'stopped'})`}`,
  );
  if (t && !held && windows.length > 0)
    t.notes.push(
      `${SIZES[size].label}: still failing at ${rate} req/s after a ${ctx.plan.warmupMs / 1000} s warm-up and ${windows.length} more windows (${windows.at(-1)!.reason}): measured anyway`,
    );
}

/** One window at one rate, and the numbers a verdict needs. */
async function window(
  ctx: BenchContext,
  running: RunningTarget,
  size: SizeKey,
  rate: number,
  durationMs: number,
  timeoutMs: number,
  label: string,
) {
  const others = watchOthersCpu(ctx.machine.cores);
  const load = await benchLoad({
    name: running.name,
    url: running.url,
    corpusDir: ctx.manifestDir[size],
    rate,
    durationMs,
    timeoutMs,
    connections: ctx.plan.connections,
    label,
    onLive: ctx.progress.live,
    signal: ctx.signal,
  });
  const othersCores = others.stop();
  const target = load.targets[0]!;
  return {
    load,
    target,
    othersCores,
    errors: target.sent - target.outcomes.ok,
    errorSample: target.errorSamples[0]
      ? `${target.errorSamples[0].outcome}: ${target.errorSamples[0].message}`
      : undefined,
    generatorBehind: load.generator.timeline.some((g) => g.behind),
  };
}

/** One search for one round: a first round climbs from the ladder's base, a later one starts near the others. */
async function searchRound(
  ctx: BenchContext,
  ladder: Ladder,
  others: readonly { value: number }[],
  measureStep: (rate: number) => Promise<StepVerdict>,
  label: string,
): Promise<ThroughputRound> {
  const near = spreadOf(others.map((o) => o.value));
  const result = await findMaxRate(
    measureStep,
    near
      ? { ladder, startRung: rungAtOrBelow(ladder, near.median), step: 1, accelerate: true }
      : { ladder, startRung: 0, step: ladder.perDoubling, accelerate: false },
    (v) =>
      ctx.progress.info(
        `  ${v.ok ? '✓' : '✗'} ${String(v.rate).padStart(6)} req/s  ${v.reason}${v.othersCores != null ? `  (others on the machine: ${v.othersCores.toFixed(1)} cores)` : ''}`,
      ),
  );
  ctx.progress.info(
    `${label}: ${result.maxRate} req/s${result.generatorBound ? ' (above it the generator fell behind)' : ''}`,
  );
  const othersCores = spreadOf(
    result.steps.map((s) => s.othersCores).filter((v): v is number => typeof v === 'number'),
  );
  return {
    maxRate: result.maxRate,
    generatorBound: result.generatorBound,
    firstFailure: result.firstFailure,
    steps: result.steps,
    othersCores: othersCores?.median ?? null,
  };
}

// ——— Phases ———

const natsPhase: Phase = {
  id: 'nats',
  title: 'NATS round trip',
  usesFleet: false,
  estimateMs: (plan) => COSTS.natsServerStartMs + plan.rounds * costOf.nats(plan),
  async run(ctx) {
    const natsMissing = missingBinary(NATS_SERVER_BIN, 'apt-get install -y nats-server');
    if (natsMissing) {
      ctx.nats = { skipped: natsMissing };
      return;
    }
    const rate = ctx.plan.latency.rates['4k'];
    step(
      ctx,
      `NATS round trip: ${ctx.plan.rounds} rounds × ${ctx.plan.natsRoundTrips} back to back sequential 1 KiB request/reply (the ones paced at ${rate}/s come with the 4 KiB latency rounds)`,
    );
    try {
      const echo = await openNatsEcho(ctx.workDir);
      try {
        const result = await rounds<'back to back', NatsRound>(
          ctx,
          'NATS round trip',
          {
            targets: ['back to back'],
            rounds: ctx.plan.rounds,
            tolerance: ctx.plan.tolerance,
            higherIsBetter: false,
            sanity: [],
            ratioPairs: [],
            maxAttempts: 1,
            rerunBudget: 0,
          },
          async (_pace, _round, { attempt }) => {
            const batch = await echo.roundTrips(ctx.plan.natsRoundTrips);
            done(ctx, costOf.nats(ctx.plan), attempt);
            return { value: batch.p50Us, detail: batch };
          },
        );
        ctx.nats = {
          payloadBytes: NATS_PAYLOAD_BYTES,
          how: echo.how,
          backToBack: figureOf(result, 'back to back'),
          paced: { ratePerSecond: rate, figure: { samples: [], spread: null, discarded: [] } },
        } satisfies NatsResult;
        ctx.progress.info(
          `NATS 1 KiB round trip p50: ${spreadLine('back to back', ctx.nats.backToBack.spread)}`,
        );
      } finally {
        await echo.close();
      }
    } catch (err) {
      ctx.nats = { skipped: describeError(err) };
      ctx.progress.info(`NATS round trip failed: ${ctx.nats.skipped}`);
    }
  },
};

const spreadLine = (label: string, spread: Spread | null) =>
  spread
    ? `${label} ${formatMicros(spread.median)} (${formatMicros(spread.min)}–${formatMicros(spread.max)})`
    : `${label} not measured`;

/**
 * The paced NATS round trips issue 17's latency target adds to the monolith's 4 KiB p50: one batch per
 * 4 KiB latency round, right after the microkernel's window, at the same rate and as many as that
 * window sends. Measured minutes apart (in the NATS phase, as before), a round trip and the p50s it is
 * compared with saw different machines on a noisy host; next to each other they see the same one.
 * Null when there is nothing to compare (no microkernel in the run, or no NATS).
 */
async function openPacedRoundTrips(ctx: BenchContext, names: readonly TargetName[]) {
  if (!names.includes('microkernel') || 'skipped' in ctx.nats) return null;
  const nats = ctx.nats;
  const rate = ctx.plan.latency.rates['4k'];
  const count = pacedNatsRoundTrips(ctx.plan);
  const echo = await openNatsEcho(ctx.workDir);
  const samples = new Map<number, Sample<NatsRound>>();
  return {
    async measure(round: number, attempt: number) {
      const batch = await echo.roundTrips(count, rate);
      done(ctx, costOf.pacedNats(ctx.plan), attempt);
      // A rerun of the microkernel's window measures its round trips again, next to the window kept.
      samples.set(round, { round, attempt, value: batch.p50Us, detail: batch });
      ctx.progress.info(
        `paced NATS round trip · round ${round + 1}: p50 ${formatMicros(batch.p50Us)}, p99 ${formatMicros(batch.p99Us)} (${count} at ${rate}/s)`,
      );
    },
    async close() {
      await echo.close();
      const kept = [...samples.values()].sort((a, b) => a.round - b.round);
      const figure = { samples: kept, spread: spreadOf(kept.map((s) => s.value)), discarded: [] };
      nats.paced = { ratePerSecond: rate, figure };
      ctx.progress.info(`NATS 1 KiB round trip p50: ${spreadLine(`paced at ${rate}/s`, figure.spread)}`);
    },
  };
}

/** What the generator is calibrated against: nginx, the floor when nginx is missing. */
function calibrationReference(): TargetName {
  return missingBinary(NGINX_BIN, 'apt-get install -y nginx') ? 'floor' : 'nginx';
}

/** Runs `use` against the reference: the running one, or one started for it and stopped after. */
async function withReference(
  ctx: BenchContext,
  against: TargetName,
  use: (running: RunningTarget) => Promise<void>,
): Promise<{ skipped: string } | null> {
  const running = ctx.fleet.get(against);
  if (running) {
    await use(running);
    return null;
  }
  let own: RunningTarget;
  try {
    own = await startTarget(TARGETS[against], ctx.dataDir, ctx.workDir);
  } catch (err) {
    return { skipped: `${against} did not start: ${describeError(err)}` };
  }
  try {
    await use(own);
  } finally {
    await own.child.stop();
  }
  return null;
}

/** One step of a calibration search: does the generator hold `rate` against the reference? */
async function calibrationStep(
  ctx: BenchContext,
  target: RunningTarget,
  size: SizeKey,
  rate: number,
  label: string,
): Promise<StepVerdict> {
  const { sendLagBoundUs } = ctx.plan.calibration;
  const w = await window(
    ctx,
    target,
    size,
    rate,
    stepWindowMs(ctx.plan, rate),
    ctx.plan.stepTimeoutMs,
    label,
  );
  const lag = w.target.sendLag.p99;
  const verdict: StepVerdict =
    w.errors > 0
      ? {
          rate,
          ok: false,
          reason: `${w.errors} failed of ${w.target.sent}${w.errorSample ? ` (${w.errorSample})` : ''}`,
        }
      : lag >= sendLagBoundUs
        ? {
            rate,
            ok: false,
            generatorBound: true,
            reason: `send-lag p99 ${formatMicros(lag)} ≥ ${formatMicros(sendLagBoundUs)}`,
          }
        : { rate, ok: true, reason: `send-lag p99 ${formatMicros(lag)}` };
  return {
    ...verdict,
    p99Us: w.target.latency.p99,
    throughput: w.target.throughput,
    othersCores: w.othersCores,
  };
}

/** The ladder of the calibration's search. */
function calibrationLadder(plan: Plan): Ladder {
  return {
    base: plan.calibration.startRate,
    perDoubling: plan.ladder.perDoubling,
    min: plan.ladder.minRate,
    max: plan.calibration.maxRate,
  };
}

/** The generator against nginx (the floor when nginx is missing): what the instrument can resolve. */
const calibrationPhase: Phase = {
  id: 'calibration',
  title: 'calibration',
  usesFleet: true,
  estimateMs: (plan, targets) =>
    targets.fleet.length
      ? costOf.warmUp(plan, '4k') +
        sum(roundsOf(plan).map((r) => costOf.calibrationNoise(plan) + costOf.calibrationSearch(plan, r)))
      : 0,
  async run(ctx) {
    const { plan } = ctx;
    const against = calibrationReference();
    const size: SizeKey = '4k';
    const { noiseRate, sendLagBoundUs } = plan.calibration;
    const skipped = await withReference(ctx, against, async (target) => {
      step(
        ctx,
        `calibration: the generator against ${against}, ${SIZES[size].label}: noise floor at ${noiseRate} req/s, then the highest rate with send-lag p99 < ${formatMicros(sendLagBoundUs)}`,
      );
      await warmUp(ctx, target, size, noiseRate, 'calibration');
      const single = (tolerance: number) => ({
        targets: ['generator'] as const,
        rounds: plan.rounds,
        tolerance,
        higherIsBetter: true,
        sanity: [],
        ratioPairs: [],
        maxAttempts: 1,
        rerunBudget: 0,
      });
      const noise = await rounds<'generator', LatencyRound>(
        ctx,
        'calibration noise floor',
        single(plan.tolerance),
        async (_t, round, { attempt }) => {
          const w = await window(
            ctx,
            target,
            size,
            noiseRate,
            plan.calibration.windowMs,
            plan.stepTimeoutMs,
            `calibration noise floor · round ${round + 1}`,
          );
          done(ctx, costOf.calibrationNoise(plan), attempt);
          const latency = latencyRound(w, noiseRate);
          ctx.progress.info(
            `noise floor round ${round + 1}: p99 ${formatMicros(latency.p99)} at ${noiseRate} req/s (p50 ${formatMicros(latency.p50)}, ${w.errors} errors)`,
          );
          return { value: latency.p99, detail: latency };
        },
      );
      const noiseFloor = figureOf(noise, 'generator');
      ctx.noiseFloorUs = noiseFloor.spread?.median ?? 0;
      const held = await rounds<'generator', ThroughputRound>(
        ctx,
        'calibration max rate',
        single(plan.tolerance),
        async (_t, round, { attempt, others }) => {
          const label = `calibration max rate · round ${round + 1}`;
          const detail = await searchRound(
            ctx,
            calibrationLadder(plan),
            others,
            (rate) => calibrationStep(ctx, target, size, rate, `${label} @ ${rate} req/s`),
            label,
          );
          done(ctx, costOf.calibrationSearch(plan, others.length ? 1 : 0), attempt);
          return { value: detail.maxRate, detail };
        },
      );
      ctx.calibration = {
        against,
        size,
        generatorThreads: GENERATOR_THREADS,
        sendLagBoundUs,
        maxRate: figureOf(held, 'generator'),
        noiseRate,
        noiseFloor,
      } satisfies Calibration;
    });
    if (skipped) ctx.calibration = skipped;
  },
};

/**
 * The calibration's search once more, after the throughput and latency phases that lean on it: from
 * the opening rounds' median, a rung at a time. A run whose instrument changed beyond the opening's
 * spread says so among its problems: its ratios are not comparable with another run's.
 */
const instrumentCheckPhase: Phase = {
  id: 'instrument-check',
  title: 'instrument check',
  usesFleet: true,
  estimateMs: (plan, targets) => (targets.fleet.length ? costOf.calibrationSearch(plan, 1) : 0),
  async run(ctx) {
    const calibration = ctx.calibration;
    if ('skipped' in calibration) return;
    const opening = calibration.maxRate;
    if (!opening.spread) {
      calibration.closing = { skipped: 'the opening calibration found no rate' };
      return;
    }
    const openingSpread = opening.spread;
    const { against, size, generatorThreads } = calibration;
    const label = 'instrument check';
    const skipped = await withReference(ctx, against, async (target) => {
      step(
        ctx,
        `instrument check: the calibration's search against ${against} once more, from the opening's ${formatCount(openingSpread.median / generatorThreads)} req/s per core`,
      );
      const round = await searchRound(
        ctx,
        calibrationLadder(ctx.plan),
        opening.samples,
        (rate) => calibrationStep(ctx, target, size, rate, `${label} @ ${rate} req/s`),
        label,
      );
      done(ctx, costOf.calibrationSearch(ctx.plan, 1), 1);
      const check = checkInstrument(openingSpread, round, ctx.plan.tolerance);
      calibration.closing = check;
      const perCore = (v: number) => formatCount(v / generatorThreads);
      const verdict = `${perCore(round.maxRate)} req/s per core at the end against ${perCore(openingSpread.median)} [${perCore(openingSpread.min)}–${perCore(openingSpread.max)}] at the start (${formatRatio(check.ratio)})`;
      if (check.held) ctx.progress.info(`instrument held: ${verdict}`);
      else
        reportProblem(ctx, {
          kind: 'unstable',
          targets: ['generator'],
          figure: 'instrument',
          message: `the generator changed during the run: ${verdict}, beyond the opening rounds' spread ±${formatPercent(ctx.plan.tolerance, 0)}. This run's figures were measured with a changing instrument: compare its ratios with another run's only if that one's instrument held at the same rate.`,
        });
    });
    if (skipped) calibration.closing = skipped;
  },
};

function latencyRound(w: Awaited<ReturnType<typeof window>>, rate: number): LatencyRound {
  return {
    rate,
    durationMs: w.load.durationMs,
    sent: w.target.sent,
    ok: w.target.outcomes.ok,
    errors: w.errors,
    p50: w.target.latency.p50,
    p90: w.target.latency.p90,
    p99: w.target.latency.p99,
    p999: w.target.latency.p999,
    max: w.target.latency.max,
    generatorBehind: w.generatorBehind,
    othersCores: w.othersCores,
  };
}

const throughputPhase: Phase = {
  id: 'throughput',
  title: 'max throughput',
  usesFleet: true,
  estimateMs: (plan, targets) =>
    sum(
      SIZE_KEYS.flatMap((size) =>
        throughputTargets(plan, size, takingPart(targets.fleet, 'throughput')).flatMap(() =>
          roundsOf(plan).map((r) => costOf.search(plan, size, r)),
        ),
      ),
    ),
  async run(ctx) {
    const { plan } = ctx;
    const fleet = takingPart(running(ctx), 'throughput');
    for (const size of SIZE_KEYS) {
      const names = throughputTargets(plan, size, fleet);
      if (ctx.aborted() || names.length === 0) continue;
      const figure = `max throughput ${SIZES[size].label}`;
      step(
        ctx,
        `${figure}: ${names.join(', ')} interleaved, ${plan.rounds} rounds (p99 < ${plan.p99BoundMs} ms, no errors, generator on schedule)`,
      );
      const ladder: Ladder = {
        base: plan.ladder.startRates[size],
        perDoubling: plan.ladder.perDoubling,
        min: plan.ladder.minRate,
        max: plan.ladder.maxRates[size],
      };
      const result = await rounds(
        ctx,
        figure,
        targetSpec<ThroughputRound>(ctx, names, true, {
          selfCheck: (_t, samples) =>
            contradictingRound(
              samples.map((s) => ({ round: s.round, maxRate: s.detail.maxRate, steps: s.detail.steps })),
              plan.tolerance,
            ),
        }),
        async (name, round, { attempt, others }) => {
          const running = serving(ctx, name);
          if (!running || ctx.aborted()) return null;
          const label = `${figure} · ${name} · round ${round + 1}`;
          step(
            ctx,
            `${label}${others.length ? ` (from ${spreadOf(others.map((o) => o.value))!.median} req/s)` : ''}`,
          );
          await warmUp(ctx, running, size, plan.ladder.startRates[size], label);
          const detail = await searchRound(
            ctx,
            ladder,
            others,
            (rate) => throughputStep(ctx, running, size, rate, label),
            label,
          );
          done(ctx, costOf.search(plan, size, others.length ? 1 : 0), attempt);
          return { value: detail.maxRate, detail };
        },
      );
      for (const name of names) bench(ctx, name).throughput[size] = figureOf(result, name);
    }
    noteBelowCommonRate(ctx);
  },
};

/** The running targets in the benchmark's order (they start side by side and come up in any order). */
function running(ctx: BenchContext): TargetName[] {
  return ctx.targets.map((t) => t.name).filter((name) => ctx.fleet.has(name));
}

function takingPart(names: readonly TargetName[], phase: TargetPhase): TargetName[] {
  return names.filter((n) => TARGETS[n].phases.includes(phase));
}

/** One window of a search step at `rate`, judged (bench/search.ts: judgeStep). */
async function stepAt(
  ctx: BenchContext,
  running: RunningTarget,
  size: SizeKey,
  rate: number,
  label: string,
): Promise<StepVerdict> {
  const { plan } = ctx;
  const w = await window(
    ctx,
    running,
    size,
    rate,
    stepWindowMs(plan, rate),
    plan.stepTimeoutMs,
    `${label} @ ${rate} req/s`,
  );
  const verdict = judgeStep(
    {
      rate,
      sent: w.target.sent,
      ok: w.target.outcomes.ok,
      errors: w.errors,
      ...(w.errorSample ? { errorSample: w.errorSample } : {}),
      p99Us: w.target.latency.p99,
      throughput: w.target.throughput,
      generatorBehind: w.generatorBehind,
    },
    plan.p99BoundMs * 1000,
    ctx.noiseFloorUs,
  );
  return { ...verdict, othersCores: w.othersCores };
}

/**
 * One step of the throughput search: a window at `rate`, judged against the p99 bound, and measured
 * again while undecided (a p99 within the noise floor of the bound, a generator that fell behind:
 * bench/search.ts, decideStep).
 */
async function throughputStep(
  ctx: BenchContext,
  running: RunningTarget,
  size: SizeKey,
  rate: number,
  label: string,
): Promise<StepVerdict> {
  const { plan } = ctx;
  const taken = await decideStep(() => stepAt(ctx, running, size, rate, label), plan.undecidedTries);
  const verdict = taken.at(-1)!;
  // An overloaded target may have lost a part (a restarted server): let it be ready again first.
  if (!verdict.ok) await waitFor200(running.child, running.url, ['/readyz'], 30_000).catch(() => undefined);
  if (taken.length === 1) return verdict;
  const p99s = taken.map((v) => `${((v.p99Us ?? 0) / 1000).toFixed(1)}`).join(', ');
  return { ...verdict, reason: `${verdict.reason} (p99 of the ${taken.length} measurements: ${p99s} ms)` };
}

/** A target whose maximum is below the common rate is overloaded in the latency runs: say so. */
function noteBelowCommonRate(ctx: BenchContext): void {
  for (const t of ctx.targets) {
    for (const size of ctx.plan.latency.sizes) {
      const max = t.throughput[size]?.spread?.median;
      const common = ctx.plan.latency.rates[size];
      if (max !== undefined && max < common)
        t.notes.push(
          `its ${SIZES[size].label} maximum (median ${max} req/s) is below the common rate (${common} req/s): its latency there is that of an overloaded server`,
        );
    }
  }
}

const latencyPhase: Phase = {
  id: 'latency',
  title: 'latency at the common rate',
  usesFleet: true,
  estimateMs: (plan, targets) =>
    sum(
      plan.latency.sizes.flatMap((size) =>
        latencyTargets(plan, takingPart(targets.fleet, 'latency')).flatMap((name) =>
          roundsOf(plan).map((r) =>
            costOf.latency(plan, size, r, throughputTargets(plan, size, targets.fleet).includes(name)),
          ),
        ),
      ),
    ) +
    (plan.latency.sizes.includes('4k') && takingPart(targets.fleet, 'latency').includes('microkernel')
      ? COSTS.natsServerStartMs + plan.rounds * costOf.pacedNats(plan)
      : 0),
  async run(ctx) {
    const { plan } = ctx;
    const names = latencyTargets(plan, takingPart(running(ctx), 'latency'));
    const rss = new Map<TargetName, FootprintRound[]>();
    const runs = new Map<string, LoadResults>();
    for (const size of plan.latency.sizes) {
      if (ctx.aborted() || names.length === 0) continue;
      const rate = plan.latency.rates[size];
      const windowMs = latencyWindowMs(plan, size);
      const figure = `latency ${SIZES[size].label}`;
      step(
        ctx,
        `${figure} at ${rate} req/s: ${names.join(', ')} interleaved, ${plan.rounds} rounds of ${windowMs / 1000} s`,
      );
      const searched = throughputTargets(plan, size, names);
      const paced = size === '4k' ? await openPacedRoundTrips(ctx, names) : null;
      const result = await rounds(
        ctx,
        figure,
        targetSpec<LatencyRound>(ctx, names, false),
        async (name, round, { attempt }) => {
          const running = serving(ctx, name);
          if (!running || ctx.aborted()) return null;
          const label = `${figure} · ${name} · round ${round + 1}`;
          await warmUp(ctx, running, size, rate, label);
          const sampler = sampleRss(running.child.pid);
          const w = await window(ctx, running, size, rate, windowMs, 5000, label);
          recordRss(rss, name, round, sampler.stop());
          done(ctx, costOf.latency(plan, size, round, searched.includes(name)), attempt);
          const latency = latencyRound(w, rate);
          runs.set(`${size}/${name}/${round}/${attempt}`, w.load);
          ctx.progress.info(
            `${label}: p50 ${formatMicros(latency.p50)}, p99 ${formatMicros(latency.p99)}, p99.9 ${formatMicros(latency.p999)}, ${latency.errors} errors`,
          );
          if (name === 'microkernel') await paced?.measure(round, attempt);
          return latency.ok > 0 ? { value: latency.p50, detail: latency } : null;
        },
      ).finally(() => paced?.close());
      for (const name of names) bench(ctx, name).latency[size] = figureOf(result, name);
      // The load reports of the rounds kept, each round under its own name.
      ctx.loadRuns.latency[size] = names.flatMap((name) =>
        (result.samples[name] ?? []).flatMap((s) => {
          const run = runs.get(`${size}/${name}/${s.round}/${s.attempt}`);
          return run
            ? [{ ...run, targets: run.targets.map((t) => ({ ...t, name: `${name} #${s.round + 1}` })) }]
            : [];
        }),
      );
    }
    await recordFootprints(ctx, names, rss);
  },
};

/** The peak of a round is the highest of its sizes' windows (and of a rerun's). */
function recordRss(
  rss: Map<TargetName, FootprintRound[]>,
  name: TargetName,
  round: number,
  s: ReturnType<ReturnType<typeof sampleRss>['stop']>,
): void {
  const rounds = rss.get(name) ?? [];
  const before = rounds[round];
  rounds[round] = {
    rssPeakBytes: Math.max(before?.rssPeakBytes ?? 0, s.peak),
    rssMeanBytes: Math.max(before?.rssMeanBytes ?? 0, Math.round(s.mean)),
    processes: Math.max(before?.processes ?? 0, s.processes),
    processNames: s.names.length >= (before?.processNames.length ?? 0) ? s.names : before!.processNames,
  };
  rss.set(name, rounds);
}

/**
 * RSS per round comes with the latency rounds, so it is not measured again on its own: its ratios
 * that disagree are reported unstable.
 */
async function recordFootprints(
  ctx: BenchContext,
  names: TargetName[],
  rss: Map<TargetName, FootprintRound[]>,
): Promise<void> {
  const image = await unikernelImageFacts();
  for (const name of names) {
    const samples = (rss.get(name) ?? []).flatMap((detail, round) =>
      detail ? [{ round, attempt: 1, value: detail.rssPeakBytes, detail }] : [],
    );
    const t = bench(ctx, name);
    t.footprint = { samples, spread: spreadOf(samples.map((s) => s.value)), discarded: [] };
    if (name === 'unikernel' && image) t.image = image;
  }
  for (const [a, b] of ratioPairs(names)) {
    const ratios = pairedRatios(
      bench(ctx, a).footprint?.samples ?? [],
      bench(ctx, b).footprint?.samples ?? [],
    );
    if (outlierIndex(ratios, ctx.plan.tolerance) === null) continue;
    ctx.problems.push({
      figure: 'RSS',
      kind: 'unstable',
      targets: [a, b],
      message: `${a}/${b} unstable: rounds ${ratios.map((x) => `${x.toFixed(2)}×`).join(', ')} disagree beyond ±${Math.round(ctx.plan.tolerance * 100)}% (RSS comes with the latency rounds and is not measured again)`,
    });
  }
}

const coldStartPhase: Phase = {
  id: 'coldStart',
  title: 'cold start',
  usesFleet: false,
  estimateMs: (plan, targets) =>
    plan.coldStartRounds * sum(targets.coldStart.map((t) => costOf.coldStart(t))),
  async run(ctx) {
    const names = ctx.targets
      .filter((t) => !t.skipped && TARGETS[t.name].phases.includes('coldStart'))
      .map((t) => t.name);
    if (ctx.aborted() || names.length === 0) return;
    step(
      ctx,
      `cold start: ${names.join(', ')} interleaved, ${ctx.plan.coldStartRounds} rounds, spawn → first 200 of a 4 KiB file`,
    );
    const result = await rounds(
      ctx,
      'cold start',
      targetSpec<null>(ctx, names, false, { rounds: ctx.plan.coldStartRounds }),
      async (name, round, { attempt }) => {
        if (ctx.aborted()) return null;
        try {
          const { ms, how } = await coldStart(name, ctx.dataDir);
          bench(ctx, name).coldStartHow = how;
          done(ctx, costOf.coldStart(name), attempt);
          ctx.progress.live(`cold start · ${name} · round ${round + 1}: ${ms.toFixed(0)} ms`);
          return { value: Math.round(ms * 10) / 10, detail: null };
        } catch (err) {
          const note = `cold start not measured: ${describeError(err)}`;
          if (!bench(ctx, name).notes.includes(note)) bench(ctx, name).notes.push(note);
          return null;
        }
      },
    );
    for (const name of names) {
      const figure = figureOf(result, name);
      bench(ctx, name).coldStart = figure;
      if (figure.spread)
        ctx.progress.info(
          `cold start ${name}: median ${figure.spread.median.toFixed(0)} ms (${figure.spread.min.toFixed(0)}–${figure.spread.max.toFixed(0)})`,
        );
    }
  },
};

const recoveryPhase: Phase = {
  id: 'recovery',
  title: 'recovery',
  usesFleet: false,
  estimateMs: (plan, targets) =>
    sum(targets.recovery.map((t) => costOf.coldStart(t) + plan.rounds * costOf.recovery(plan, t))),
  async run(ctx) {
    const { plan } = ctx;
    const names = ctx.targets
      .filter((t) => !t.skipped && TARGETS[t.name].phases.includes('recovery'))
      .map((t) => t.name);
    if (ctx.aborted() || names.length === 0) return;
    step(
      ctx,
      `recovery: ${names.join(', ')} interleaved, ${plan.rounds} rounds — SIGKILL at ${plan.recovery.faultAtMs / 1000}s under ${plan.recovery.rate} req/s of 4 KiB for ${plan.recovery.durationMs / 1000}s`,
    );
    // Each target is started once under its restarter; every round kills it again once it serves.
    const setups = new Map<TargetName, RecoveryTarget>();
    for (const name of names) {
      try {
        const setup = await startRecoveryTarget(name, ctx);
        setups.set(name, setup);
        bench(ctx, name).recoveryHow = setup.how;
        ctx.clock.advance(costOf.coldStart(name));
      } catch (err) {
        bench(ctx, name).notes.push(`recovery not measured: ${describeError(err)}`);
      }
    }
    const runs = new Map<string, LoadResults>();
    try {
      const result = await rounds(
        ctx,
        'recovery',
        { ...targetSpec<RecoveryRound>(ctx, names, false), sanity: [], ratioPairs: [], maxAttempts: 1 },
        async (name, round) => {
          const setup = setups.get(name);
          if (!setup || ctx.aborted()) return null;
          try {
            const { result: r, load } = await recoveryRound(setup, ctx, round);
            runs.set(`${name}/${round}`, load);
            done(ctx, costOf.recovery(plan, name), 1);
            ctx.progress.info(
              `recovery ${name} round ${round + 1}: ${r.failed} failed of ${r.requests}; first success after ${r.firstSuccessAfterFailureMs === null ? (r.failed ? 'none: it did not recover in the window' : 'n/a (nothing failed)') : `${r.firstSuccessAfterFailureMs.toFixed(0)} ms`}`,
            );
            return { value: r.failed, detail: r };
          } catch (err) {
            const note = `recovery not measured: ${describeError(err)}`;
            if (!bench(ctx, name).notes.includes(note)) bench(ctx, name).notes.push(note);
            return null;
          }
        },
      );
      for (const name of names) bench(ctx, name).recovery = figureOf(result, name);
      ctx.loadRuns.recovery = names.flatMap((name) =>
        (result.samples[name] ?? []).flatMap((s) => {
          const run = runs.get(`${name}/${s.round}`);
          return run
            ? [{ ...run, targets: run.targets.map((t) => ({ ...t, name: `${name} #${s.round + 1}` })) }]
            : [];
        }),
      );
    } finally {
      await Promise.all([...setups.values()].map((setup) => setup.root.stop()));
    }
  },
};

/** The styles among the targets asked for (the two microkernels are one style measured twice). */
const stylesOf = (names: readonly TargetName[]) => names.filter((n) => TARGETS[n].kind === 'style');

/**
 * The Security row of every running style, once (load/security-facts.ts, as `kstyles load` measures it
 * before its load): the hostile battery, each request parser's own gauges, /proc, and a microkernel's
 * NATS isolation, which its supervisor (the benchmark's id for it) probes.
 */
const securityPhase: Phase = {
  id: 'security',
  title: 'Security row',
  usesFleet: true,
  estimateMs: (_plan, targets) => (stylesOf(targets.fleet).length > 0 ? COSTS.securityMs : 0),
  async run(ctx) {
    const targets = stylesOf(running(ctx)).flatMap((name) => {
      const target = serving(ctx, name);
      return target ? [target] : [];
    });
    if (ctx.aborted() || targets.length === 0) return;
    step(
      ctx,
      `Security row: ${targets.map((t) => t.name).join(', ')} — hostile requests, each parser's gauges and /proc, the microkernels' NATS isolation`,
    );
    const supervisorOf = (name: TargetName) => {
      const transfer = MICROKERNEL_TRANSFERS[name];
      return transfer ? benchSupervisorId(transfer) : name;
    };
    try {
      const rangeFile = rangeFileOf(await readManifest(ctx.dataDir));
      const measured = await measureSecurity(
        targets.map((t) => ({ name: supervisorOf(t.name), url: t.url })),
        { corpusDir: ctx.dataDir, timeoutMs: 5000, ...(rangeFile ? { rangeFile } : {}) },
      );
      ctx.security = Object.fromEntries(targets.map((t) => [t.name, measured[supervisorOf(t.name)]!]));
    } catch (err) {
      ctx.security = { skipped: describeError(err) };
    }
    ctx.clock.advance(COSTS.securityMs);
  },
};

/** What tracing costs each style (bench/tracing-cost.ts): its own instances, off / on / sampled. */
const tracingPhase: Phase = {
  id: 'tracing',
  title: 'tracing cost',
  usesFleet: false,
  estimateMs: (plan, targets) =>
    plan.tracing
      ? sum(STYLES.filter((s) => targets.coldStart.includes(s)).map((s) => costOf.tracing(plan, s)))
      : 0,
  async run(ctx) {
    const tracing = ctx.plan.tracing;
    if (!tracing) {
      ctx.tracing = { skipped: `not in the ${ctx.plan.name} plan` };
      return;
    }
    const styles = STYLES.filter((s) => ctx.targets.some((t) => t.name === s && !t.skipped));
    if (ctx.aborted() || styles.length === 0) return;
    step(
      ctx,
      `tracing cost: ${styles.join(', ')} — tracing off, on and sampled ${tracing.ratio}, interleaved, ${Math.max(3, ctx.plan.rounds)} runs of ${tracing.durationMs / 1000} s at ${tracing.rate} req/s of small files`,
    );
    try {
      ctx.tracing = await measureTracingCost({
        styles,
        rate: tracing.rate,
        durationMs: tracing.durationMs,
        repeats: Math.max(3, ctx.plan.rounds),
        ratio: tracing.ratio,
        mix: 'small',
        corpusDir: ctx.dataDir,
        onProgress: (line) => ctx.progress.info(`tracing cost · ${line}`),
      });
    } catch (err) {
      ctx.tracing = { skipped: describeError(err) };
    }
    for (const style of styles) ctx.clock.advance(costOf.tracing(ctx.plan, style));
  },
};

/** The phases in the order they run; another phase is one more entry. */
export const PHASES: Phase[] = [
  natsPhase,
  calibrationPhase,
  throughputPhase,
  latencyPhase,
  instrumentCheckPhase,
  securityPhase,
  coldStartPhase,
  recoveryPhase,
  tracingPhase,
];

/** Set-up (machine, corpus) and starting and stopping the running targets. */
function setupEstimateMs(targets: PhaseTargets): number {
  return COSTS.setupMs + sum(targets.fleet.map((t) => costOf.coldStart(t)));
}

/** How long a run should take, phase by phase (without reruns). */
export function estimateBench(
  plan: Plan,
  names: readonly TargetName[],
): { totalMs: number; phases: { phase: string; ms: number }[] } {
  const targets = phaseTargets(names);
  const phases = [
    { phase: 'set-up', ms: setupEstimateMs(targets) },
    ...PHASES.map((p) => ({ phase: p.title, ms: p.estimateMs(plan, targets) })),
  ];
  return { totalMs: sum(phases.map((p) => p.ms)), phases };
}

export async function runBench(options: BenchOptions): Promise<BenchRun> {
  const plan = planFor(options.quick, options.rounds);
  const progress = options.progress;
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const names = TARGET_NAMES.filter((n) => !options.only || options.only.includes(n));
  const estimate = estimateBench(plan, names);
  progress.info(
    `plan: about ${formatClock(estimate.totalMs)} (${estimate.phases
      .filter((p) => p.ms > 0)
      .map((p) => `${p.phase} ${formatClock(p.ms)}`)
      .join(', ')}), more if measurements must be taken again`,
  );
  for (const line of tradeoffs(plan)) progress.info(`${plan.name} gives up: ${line}`);
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'kstyles-bench-'));
  // mkdtemp makes it private; nginx's worker (user nobody when run as root) must reach the corpus.
  await chmod(workDir, 0o755);

  const ctx = await newContext({
    plan,
    progress,
    workDir,
    names,
    signal: options.signal,
    clock: new ProgressClock(estimate.totalMs, t0),
  });
  try {
    step(ctx, 'machine and corpus');
    Object.assign(ctx, await prepareCorpus(workDir));
    const lastFleetPhase = PHASES.findLastIndex((p) => p.usesFleet);
    for (const [i, phase] of PHASES.entries()) {
      if (ctx.aborted()) break;
      if (phase.usesFleet && ctx.fleet.size === 0) await startFleet(ctx);
      await phase.run(ctx);
      if (i === lastFleetPhase) await stopFleet(ctx);
    }
  } finally {
    await stopFleet(ctx);
    await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
  }
  const machine = ctx.machine;
  machine.loadAverageEnd = os.loadavg().map((l) => Math.round(l * 100) / 100);
  machine.cpuPressureEnd = cpuPressure();
  const nats = 'skipped' in ctx.nats ? null : ctx.nats;
  const results: BenchResults = {
    version: 2,
    tool: 'kstyles-bench',
    startedAt,
    durationMs: Math.round(performance.now() - t0),
    estimatedMs: Math.round(estimate.totalMs),
    machine,
    method: benchMethod(plan),
    calibration: ctx.calibration,
    nats: ctx.nats,
    security: ctx.security,
    tracing: ctx.tracing,
    targets: ctx.targets,
    checks: evaluateTargets(ctx.targets, nats),
    problems: ctx.problems,
    reruns: ctx.reruns,
    reports: {},
  };
  return { results, loadRuns: ctx.loadRuns };
}

/** A run's context before its corpus is made (prepareCorpus fills dataDir and manifestDir). */
export async function newContext(o: {
  plan: Plan;
  progress: BenchProgress;
  workDir: string;
  names: readonly TargetName[];
  signal: AbortSignal | undefined;
  clock: ProgressClock;
}): Promise<BenchContext> {
  return {
    plan: o.plan,
    progress: o.progress,
    machine: await describeMachine(),
    dataDir: '',
    workDir: o.workDir,
    manifestDir: {} as Record<SizeKey, string>,
    signal: o.signal,
    aborted: () => o.signal?.aborted === true,
    clock: o.clock,
    targets: describeTargets(o.names),
    fleet: new Map(),
    warmedUp: new Set(),
    noiseFloorUs: 0,
    calibration: { skipped: 'not run' },
    nats: { skipped: 'not run' },
    security: { skipped: 'not run' },
    tracing: { skipped: 'not run' },
    problems: [],
    reruns: 0,
    loadRuns: { latency: {}, recovery: [] },
  };
}

/** Every target asked for, still unmeasured; nginx is skipped up front when it is not installed. */
function describeTargets(names: readonly TargetName[]): TargetBench[] {
  const nginxMissing = missingBinary(NGINX_BIN, 'apt-get install -y nginx');
  return names.map((name) => ({
    name,
    kind: TARGETS[name].kind,
    description:
      TARGETS[name].launch(0, 'DIR')?.describe ?? 'nginx (generated config, one worker, sendfile, loopback)',
    notes: [],
    warmUps: {},
    throughput: {},
    latency: {},
    ...(name === 'nginx' && nginxMissing ? { skipped: nginxMissing } : {}),
  }));
}

/** Starts every target of the throughput and latency phases, one after the other, and keeps them running. */
async function startFleet(ctx: BenchContext): Promise<void> {
  const names = phaseTargets(ctx.targets.filter((t) => !t.skipped).map((t) => t.name)).fleet;
  step(ctx, `starting ${names.join(', ')}`);
  // Side by side: most of a start is waiting (module loading, a nats-server, readiness polls).
  await Promise.all(
    names.map(async (name) => {
      const t = bench(ctx, name);
      try {
        ctx.fleet.set(name, await startTarget(TARGETS[name], ctx.dataDir, ctx.workDir));
      } catch (err) {
        t.skipped = err instanceof SkipTarget ? err.message : `did not start: ${describeError(err)}`;
        ctx.progress.info(`${name}: skipped — ${t.skipped}`);
      }
      ctx.clock.advance(costOf.coldStart(name));
    }),
  );
}

async function stopFleet(ctx: BenchContext): Promise<void> {
  await Promise.all([...ctx.fleet.values()].map((r) => r.child.stop()));
  ctx.fleet.clear();
}

function benchMethod(plan: Plan): BenchMethod {
  return {
    quick: plan.name === 'quick',
    plan,
    tradeoffs: tradeoffs(plan),
    ladderResolution: ladderResolution(plan.ladder),
    commonRates: Object.fromEntries(plan.latency.sizes.map((s) => [s, plan.latency.rates[s]])),
    text: methodText(plan),
  };
}

export function methodText(plan: Plan): string[] {
  const pct = (r: number) => `${Math.round(r * 100)}%`;
  const resolution = ladderResolution(plan.ladder);
  const malloc = Object.entries(MALLOC_ENV).map(([name, value]) => `${name}=${value}`);
  return [
    "One machine, loopback; the load generator (kstyles load's open-loop engine, wrk2 model: latency from the intended send time, HdrHistogram in µs, every body checked) runs in the benchmark process on the same cores. Calibration, throughput and latency share one set of running targets, each started once.",
    `Rounds: every figure is measured ${plan.rounds} times, the targets interleaved (A B C A B C …, the same phase and the same rates); tables show the median with min–max, ratios are taken round by round (paired) and shown the same way. No best run is picked.`,
    `Agreement: a ratio whose rounds are not all within ±${pct(plan.tolerance)} of their median is measured again (the round farthest from it, both targets), at most ${plan.maxAttempts - 1} more time(s) per round and ${plan.rerunBudget} per figure; if it still disagrees it is reported unstable.`,
    `Sanity: a round where nginx is more than ${pct(plan.tolerance)} below the node:http floor, where the monolith (the floor's path plus Express) is more than 1.5× better than the floor, or where a rate passes more than ${pct(plan.tolerance)} above a rate that failed in another round (not for the generator), is a failed measurement: it is measured again; nginx's or the monolith's round is left out of the table (with the reason) if it stays so, rounds of one target that still contradict each other are kept and reported unstable.`,
    `Calibration: the generator against nginx (4 KiB), ${plan.rounds} rounds: its noise floor (corrected p99 at ${plan.calibration.noiseRate} req/s for ${plan.calibration.windowMs / 1000} s) and the highest rate it holds per core with send-lag p99 < ${plan.calibration.sendLagBoundUs / 1000} ms and no failed request. After the throughput and latency phases the same search runs once more from the opening rounds' median (the instrument check): a result outside their [min–max] ±${pct(plan.tolerance)} says the instrument changed during the run, and the run is reported as not comparable with another.`,
    `Max throughput: per size, rates on a ladder of ${plan.ladder.perDoubling} steps per doubling (resolution ${pct(resolution)}) from ${SIZE_KEYS.map((k) => `${plan.ladder.startRates[k]} (${SIZES[k].label})`).join(', ')} req/s; the first round doubles until a step fails, then bisects to adjacent rates; later rounds start at the median of the rounds so far and move one rate, then two, four. A step is a ${plan.stepWindowMs / 1000} s window (at least ${plan.minStepRequests} requests) and passes with no failed request, p99 < ${plan.p99BoundMs} ms from the intended send time, and the generator on schedule; a p99 within the noise floor of the bound is measured again (${plan.undecidedTries} times in all), then decided on the other criteria; a step in which the generator fell behind is measured again (${plan.undecidedTries} times in all) and fails, bounded by the generator, only if it falls behind every time. After a failed step the target must answer /readyz again. ${plan.connections} keep-alive connections. Before each target's first round at a size: a ${plan.warmupMs / 1000} s warm-up at the start rate, then windows at that rate until one passes as a step would (at most ${plan.warmupMaxWindows}); none of it counts.`,
    `Latency: every target at the same fixed rate per size (${plan.latency.sizes.map((k) => `${SIZES[k].label} ${plan.latency.rates[k]} req/s`).join(', ')}), the warm-up above where the throughput search did not warm the target up at that size, then ${plan.rounds} rounds of ${plan.latency.windowMs / 1000} s (at least ${plan.latency.minRequests} requests); p50/p99/p99.9 from the intended send time.`,
    `Every target but nginx is a Node process, started with glibc's allocator settings ${malloc.join(' ')} (services/contract/malloc-env.ts): freed buffers are kept for the next request instead of going back to the kernel and faulting in again, which on a VM costs more than the bytes.`,
    "Footprint: VmRSS from /proc/<pid>/status summed over the process tree, sampled every 250 ms during each round's latency windows (peak per round); the microkernel's tree includes its launcher, nats-server, supervisor and servers.",
    `Cold start: spawn → first 200 of /readyz and then of a 4 KiB file (for the microkernel, /readyz answers 200 only when every server answers), ${plan.coldStartRounds} rounds; the targets ran before, so tsx's transform cache and the page cache are warm.`,
    `Recovery: ${plan.recovery.rate} req/s of 4 KiB for ${plan.recovery.durationMs / 1000}s, SIGKILL at ${plan.recovery.faultAtMs / 1000}s of the component a driver bug kills: the monolith and unikernel processes (under the supervisor of services/supervisor as restarter), the microkernel's driver server (through its supervisor's control API); failed requests and fault → first success after the first failure, ${plan.rounds} rounds.`,
    `NATS: ${plan.rounds} rounds, interleaved, of ${plan.natsRoundTrips} sequential 1 KiB request/reply round trips back to back and ${pacedNatsRoundTrips(plan)} paced at ${plan.latency.rates['4k']}/s (the 4 KiB common rate, as many as its latency window sends), through a real nats-server on loopback to an echo responder in another process. The microkernel's latency target adds two paced round trips to the monolith's p50: at that rate every hop wakes processes that were idle, and back-to-back round trips, whose processes never sleep, cost about half as much here.`,
  ];
}

/** Spawn → first 200 of a 4 KiB file, for one start. */
async function coldStart(name: TargetName, dataDir: string): Promise<{ ms: number; how: string }> {
  const def = TARGETS[name];
  const port = await freePort();
  const launch = def.launch(port, dataDir)!;
  const child = startProcess(`${name} (cold start)`, launch.command, launch.args, launch.env);
  try {
    const ms = await waitFor200(child, `http://127.0.0.1:${port}`, [...READY_PATHS], def.readyTimeoutMs, 2);
    return {
      ms,
      how: `${launch.describe}; spawn → 200 of /readyz then of /files/bench/4k.bin, polled every 2 ms`,
    };
  } finally {
    await child.stop();
  }
}

/** Finds the microkernel's supervisor among the running supervisors: the one inside our process tree. */
function supervisorOf(rootPid: number) {
  const tree = new Set(processTree(rootPid));
  return listRuntimeStates().find((s) => tree.has(s.pid)) ?? null;
}

/** A process in the tree whose command line matches, other than the root. */
function findInTree(rootPid: number, pattern: RegExp): number | null {
  return processTree(rootPid).find((pid) => pid !== rootPid && pattern.test(cmdline(pid))) ?? null;
}

/** A target running under its restarter, and how to kill the part a driver bug kills. */
type RecoveryTarget = { name: TargetName; root: Spawned; url: string; how: string; kill(): Promise<string> };

/**
 * Starts a target for the recovery rounds: the microkernel as it runs (its supervisor restarts a
 * killed driver), the monolith and the unikernel under the project's supervisor as the restarter
 * (they die whole).
 */
async function startRecoveryTarget(name: TargetName, ctx: BenchContext): Promise<RecoveryTarget> {
  const { dataDir, workDir } = ctx;
  const def = TARGETS[name];
  if (MICROKERNEL_TRANSFERS[name]) {
    const running = await startTarget(def, dataDir, workDir);
    const root = running.child;
    const target: RecoveryTarget = {
      name,
      root,
      url: running.url,
      how: "driver server SIGKILLed through the microkernel supervisor's control API; the supervisor restarts it",
      async kill() {
        const state = supervisorOf(root.pid);
        if (state?.nats) {
          const client = await SupervisorControlClient.connect({ ...state.nats });
          try {
            const answer = await client.kill(state.id, 'driver', 'SIGKILL');
            return `supervisor '${state.id}' control API: SIGKILL driver (PID ${answer.pid})`;
          } finally {
            await client.close();
          }
        }
        const pid = findInTree(root.pid, /driver/);
        if (pid === null)
          throw new Error('no supervisor runtime state and no driver process found in the microkernel tree');
        target.how =
          'driver server SIGKILLed by PID (no supervisor control API found); its supervisor restarts it';
        process.kill(pid, 'SIGKILL');
        return `SIGKILL to the driver server (PID ${pid}) found in the process tree`;
      },
    };
    return target;
  }
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const launch = def.launch(port, dataDir)!;
  const specFile = path.join(workDir, `${name}-restarter.json`);
  await writeFile(
    specFile,
    JSON.stringify({
      id: `bench-${name}-${process.pid}`,
      intensity: { maxRestarts: 20, periodMs: 60_000 },
      children: [
        {
          name,
          command: launch.command,
          args: launch.args,
          env: Object.fromEntries(
            Object.entries(launch.env).filter((e): e is [string, string] => typeof e[1] === 'string'),
          ),
          health: { kind: 'http', url: `${url}/readyz` },
        },
      ],
    }),
  );
  const root = startProcess(`${name} restarter`, process.execPath, [
    '--import',
    'tsx',
    SUPERVISOR_MAIN,
    '--spec',
    specFile,
  ]);
  try {
    await waitFor200(root, url, [...READY_PATHS], def.readyTimeoutMs);
  } catch (err) {
    await root.stop();
    throw err;
  }
  const program = new RegExp(name === 'unikernel' ? 'kstyles-unikernel|unikernel' : 'kstyles\\.js monolith');
  return {
    name,
    root,
    url,
    how: `the whole ${name} process SIGKILLed; the supervisor (services/supervisor/main.ts, one_for_one, http readiness check) restarts it`,
    async kill() {
      const pid = findInTree(root.pid, program);
      if (pid === null || !isAlive(pid))
        throw new Error(`no ${name} process under the restarter (PID ${root.pid})`);
      process.kill(pid, 'SIGKILL');
      return `SIGKILL to ${name} (PID ${pid})`;
    },
  };
}

/** One round: once the target serves again, a steady 4 KiB rate with a SIGKILL in it. */
async function recoveryRound(
  target: RecoveryTarget,
  ctx: BenchContext,
  round: number,
): Promise<{ result: RecoveryRound; load: LoadResults }> {
  const { plan } = ctx;
  const { name } = target;
  await waitFor200(target.root, target.url, [...READY_PATHS], TARGETS[name].readyTimeoutMs);
  const r = await benchLoad({
    name,
    url: target.url,
    corpusDir: ctx.manifestDir['4k'],
    rate: plan.recovery.rate,
    durationMs: plan.recovery.durationMs,
    timeoutMs: 2000,
    connections: plan.connections,
    faults: [{ atMs: plan.recovery.faultAtMs, target: name, kind: 'kill', affects: [name] }],
    faultDrivers: [
      { name: 'bench', supports: () => true, inject: async () => ({ message: await target.kill() }) },
    ],
    faultWindowMs: plan.recovery.durationMs - plan.recovery.faultAtMs,
    label: `recovery · ${name} · round ${round + 1}`,
    onLive: ctx.progress.live,
    signal: ctx.signal,
  });
  const fault = r.faults[0];
  const res = fault?.resilience[0];
  return {
    load: r,
    result: {
      rate: plan.recovery.rate,
      durationMs: plan.recovery.durationMs,
      faultAtMs: fault?.firedAtMs ?? plan.recovery.faultAtMs,
      injected: fault?.ok === true,
      message: fault?.message ?? 'no fault fired',
      requests: res?.requests ?? 0,
      failed: res?.failed ?? 0,
      firstSuccessAfterFailureMs: res?.firstSuccessAfterFailureMs ?? null,
      p99RecoveryMs: res?.p99RecoveryMs ?? null,
    },
  };
}
