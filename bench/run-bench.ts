/**
 * The benchmark run: every target on this machine, one at a time, through the load generator's open-loop
 * engine. Phases: NATS round trip; maximum sustainable rate per target and size; latency and memory at
 * a common rate; cold start; recovery from a SIGKILL under a steady rate.
 */

import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { KSTYLES_BIN, REPO_ROOT } from '../cli/kit/repo.ts';
import { type LoadProgress, type LoadResults, runLoad } from '../load/index.ts';
import { formatMicros } from '../load/units.ts';
import { freePort } from '../services/contract/http-server.ts';
import { SupervisorControlClient } from '../services/supervisor/control-client.ts';
import { listRuntimeStates } from '../services/supervisor/runtime-state.ts';
import { evaluateTargets } from './evaluate.ts';
import { cpuPressure, describeMachine, NATS_SERVER_BIN, NGINX_BIN } from './machine.ts';
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
import { measureNatsRoundTrip, missingBinary } from './references.ts';
import { findMaxRate, judgeStep, type StepVerdict } from './search.ts';
import {
  READY_PATHS,
  type RunningTarget,
  SkipTarget,
  startTarget,
  TARGETS,
  unikernelImageFacts,
} from './targets.ts';
import {
  type BenchMethod,
  type BenchResults,
  type ColdStartResult,
  type LatencyResult,
  type Machine,
  type RecoveryResult,
  SIZE_KEYS,
  SIZES,
  type SizeKey,
  TARGET_NAMES,
  type TargetBench,
  type TargetName,
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

export type Plan = {
  p99BoundMs: number;
  stepWindowMs: number;
  warmupMs: number;
  fixedWindowMs: number;
  bisectSteps: number;
  startRates: Record<SizeKey, number>;
  maxRates: Record<SizeKey, number>;
  coldStartRuns: number;
  recovery: { rate: number; durationMs: number; faultAtMs: number };
  natsRoundTrips: number;
  connections: number;
  stepTimeoutMs: number;
  confirmFailures: boolean;
  /** The search never offers less than this. */
  minRate: number;
  /** The fixed rate of the latency runs, the same for every target. */
  commonRates: Record<SizeKey, number>;
};

const FULL_PLAN: Plan = {
  p99BoundMs: 50,
  stepWindowMs: 3000,
  warmupMs: 2000,
  fixedWindowMs: 10_000,
  bisectSteps: 2,
  startRates: { '4k': 500, '64k': 250, '1m': 50 },
  maxRates: { '4k': 32_000, '64k': 16_000, '1m': 4000 },
  coldStartRuns: 7,
  recovery: { rate: 200, durationMs: 10_000, faultAtMs: 3000 },
  natsRoundTrips: 5000,
  connections: 32,
  stepTimeoutMs: 2000,
  confirmFailures: true,
  minRate: 10,
  commonRates: { '4k': 100, '64k': 50, '1m': 10 },
};

/** `--quick` is the full plan with shorter windows and fewer repeats: same bound, rates and search range. */
export const PLANS: Record<'quick' | 'full', Plan> = {
  quick: {
    ...FULL_PLAN,
    stepWindowMs: 1500,
    warmupMs: 500,
    fixedWindowMs: 3000,
    bisectSteps: 1,
    coldStartRuns: 3,
    recovery: { rate: 200, durationMs: 5000, faultAtMs: 1500 },
    natsRoundTrips: 1000,
    confirmFailures: false,
    minRate: 25,
  },
  full: FULL_PLAN,
};

export type BenchOptions = {
  quick: boolean;
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

const stepListeners: (() => void)[] = [];

/**
 * A signal for one load run that follows the bench's: the load engine leaves its listener on the
 * signal it is given, and a bench runs a hundred loads.
 */
function stepSignal(parent: AbortSignal | undefined): AbortSignal {
  const step = new AbortController();
  if (parent) {
    const forward = () => step.abort();
    parent.addEventListener('abort', forward, { once: true });
    stepListeners.push(() => parent.removeEventListener('abort', forward));
  }
  return step.signal;
}

function releaseStepSignals(): void {
  for (const remove of stepListeners.splice(0)) remove();
}

function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function liveText(p: LoadProgress): string {
  const t = p.targets[0];
  const elapsed = `${(p.elapsedMs / 1000).toFixed(1)}/${(p.durationMs / 1000).toFixed(0)}s`;
  if (!t) return elapsed;
  return `${elapsed}  sent ${t.sent}  ${t.rate.toFixed(0)} resp/s  p99 ${formatMicros(t.p99)}  errors ${t.errors}${p.behind ? '  (generator behind)' : ''}`;
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

/** What every phase of one run shares: the plan, the corpus, and how to start a target and load it. */
type BenchContext = {
  plan: Plan;
  progress: BenchProgress;
  machine: Machine;
  dataDir: string;
  workDir: string;
  manifestDir: Record<SizeKey, string>;
  signal: AbortSignal | undefined;
  aborted(): boolean;
};

export async function runBench(options: BenchOptions): Promise<BenchRun> {
  const plan = options.quick ? PLANS.quick : PLANS.full;
  const progress = options.progress;
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const names = TARGET_NAMES.filter((n) => !options.only || options.only.includes(n));
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'kstyles-bench-'));
  // mkdtemp makes it private; nginx's worker (user nobody when run as root) must reach the corpus.
  await chmod(workDir, 0o755);

  try {
    progress.step('machine and corpus');
    const machine = await describeMachine();
    const { dataDir, manifestDir } = await prepareCorpus(workDir);
    const ctx: BenchContext = {
      plan,
      progress,
      machine,
      dataDir,
      workDir,
      manifestDir,
      signal: options.signal,
      aborted: () => options.signal?.aborted === true,
    };
    const targets = describeTargets(names);
    const nats = await measureNats(ctx);
    await measureThroughput(ctx, targets);
    const commonRates = commonRatesFor(plan, targets);
    const latencyRuns = await measureLatency(ctx, targets, commonRates);
    await measureColdStarts(ctx, targets);
    const recoveryRuns = await measureRecoveries(ctx, targets);

    machine.loadAverageEnd = os.loadavg().map((l) => Math.round(l * 100) / 100);
    machine.cpuPressureEnd = cpuPressure();
    const results: BenchResults = {
      version: 1,
      tool: 'kstyles-bench',
      startedAt,
      durationMs: Math.round(performance.now() - t0),
      machine,
      method: benchMethod(plan, options.quick, commonRates),
      nats,
      targets,
      checks: evaluateTargets(targets, 'skipped' in nats ? null : nats),
      reports: {},
    };
    return { results, loadRuns: { latency: latencyRuns, recovery: recoveryRuns } };
  } finally {
    await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
  }
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
    throughput: {},
    latency: {},
    ...(name === 'nginx' && nginxMissing ? { skipped: nginxMissing } : {}),
  }));
}

/** One load run of one size against one target, its progress drawn live. */
function loadOnce(
  ctx: BenchContext,
  target: RunningTarget,
  size: SizeKey,
  rate: number,
  durationMs: number,
  label: string,
  timeoutMs = ctx.plan.stepTimeoutMs,
): Promise<LoadResults> {
  return runLoad({
    targets: [{ name: target.name, url: target.url }],
    rate,
    durationMs,
    corpusDir: ctx.manifestDir[size],
    mix: 'all',
    connections: ctx.plan.connections,
    timeoutMs,
    // A measurement step: the hostile battery belongs to the report of a load run, not to every step.
    hostileBattery: false,
    faults: [],
    faultDrivers: [],
    progressIntervalMs: 500,
    onProgress: (p) => ctx.progress.live(`${label}  ${liveText(p)}`),
    signal: stepSignal(ctx.signal),
  }).finally(releaseStepSignals);
}

/** Starts a target for a phase, or marks it skipped (with the reason) when it cannot start. */
async function startForPhase(ctx: BenchContext, t: TargetBench): Promise<RunningTarget | null> {
  if (t.skipped) return null;
  try {
    return await startTarget(TARGETS[t.name], ctx.dataDir, ctx.workDir);
  } catch (err) {
    t.skipped = err instanceof SkipTarget ? err.message : `did not start: ${describeError(err)}`;
    ctx.progress.info(`${t.name}: skipped — ${t.skipped}`);
    return null;
  }
}

/** The NATS request/reply round trip: the price of one microkernel hop. */
async function measureNats(ctx: BenchContext): Promise<BenchResults['nats']> {
  const natsMissing = missingBinary(NATS_SERVER_BIN, 'apt-get install -y nats-server');
  if (natsMissing) return { skipped: natsMissing };
  if (ctx.aborted()) return { skipped: 'not run' };
  ctx.progress.step(`NATS round trip: ${ctx.plan.natsRoundTrips} × 1 KiB request/reply`);
  try {
    const nats = await measureNatsRoundTrip(ctx.workDir, ctx.plan.natsRoundTrips);
    ctx.progress.info(
      `NATS 1 KiB round trip p50 ${formatMicros(nats.p50Us)}, p99 ${formatMicros(nats.p99Us)}`,
    );
    return nats;
  } catch (err) {
    const skipped = describeError(err);
    ctx.progress.info(`NATS round trip failed: ${skipped}`);
    return { skipped };
  }
}

/** Phase 1: each target's maximum sustainable rate per size (p99 under the bound, no errors). */
async function measureThroughput(ctx: BenchContext, targets: TargetBench[]): Promise<void> {
  const { plan, progress } = ctx;
  for (const t of targets) {
    if (ctx.aborted()) break;
    progress.step(`max throughput: ${t.name} — starting`);
    const running = await startForPhase(ctx, t);
    if (!running) continue;
    try {
      for (const size of SIZE_KEYS) {
        if (ctx.aborted() || !running.child.running) break;
        const label = `max throughput · ${t.name} · ${SIZES[size].label}`;
        progress.step(
          `${label}: warm-up, then ×2 from ${plan.startRates[size]} req/s and bisect (p99 < ${plan.p99BoundMs} ms, no errors)`,
        );
        await loadOnce(ctx, running, size, plan.startRates[size], plan.warmupMs, `${label} warm-up`);
        const result = await findMaxRate(
          (rate) => throughputStep(ctx, running, size, rate, label),
          {
            startRate: plan.startRates[size],
            maxRate: plan.maxRates[size],
            minRate: plan.minRate,
            bisectSteps: plan.bisectSteps,
            resolution: 0.05,
            confirmFailures: plan.confirmFailures,
          },
          (v) =>
            progress.info(
              `  ${v.ok ? '✓' : '✗'} ${String(v.rate).padStart(6)} req/s  ${v.reason}${v.othersCores != null ? `  (others on the machine: ${v.othersCores.toFixed(1)} cores)` : ''}`,
            ),
        );
        t.throughput[size] = {
          maxRate: result.maxRate,
          generatorBound: result.generatorBound,
          firstFailure: result.firstFailure,
          steps: result.steps,
        };
        progress.info(
          `${label}: ${result.maxRate} req/s${result.generatorBound ? ' (above it the generator fell behind: shared cores)' : ''}`,
        );
      }
    } finally {
      await running.child.stop();
    }
  }
}

/** One step of the throughput search: a window at `rate`, judged against the p99 bound. */
async function throughputStep(
  ctx: BenchContext,
  running: RunningTarget,
  size: SizeKey,
  rate: number,
  label: string,
): Promise<StepVerdict> {
  const { plan } = ctx;
  // At low rates a short window holds too few requests for a p99: stretch it to at least 40.
  const windowMs = Math.min(Math.max(plan.stepWindowMs, (40 / rate) * 1000), 2 * plan.stepWindowMs);
  const others = watchOthersCpu(ctx.machine.cores);
  const r = await loadOnce(ctx, running, size, rate, windowMs, `${label} @ ${rate} req/s`);
  const othersCores = others.stop();
  const target = r.targets[0]!;
  const verdict = judgeStep(
    {
      rate,
      sent: target.sent,
      ok: target.outcomes.ok,
      errors: target.sent - target.outcomes.ok,
      ...(target.errorSamples[0]
        ? { errorSample: `${target.errorSamples[0].outcome}: ${target.errorSamples[0].message}` }
        : {}),
      p99Us: target.latency.p99,
      throughput: target.throughput,
      generatorBehind: r.generator.timeline.some((g) => g.behind),
    },
    plan.p99BoundMs * 1000,
  );
  // An overloaded target may have lost a part (a restarted server): let it be ready again first.
  if (!verdict.ok) await waitFor200(running.child, running.url, ['/readyz'], 30_000).catch(() => undefined);
  return { ...verdict, othersCores };
}

/**
 * The common rate is fixed per size and light, so latency shows each style's path (its hops) rather
 * than its queueing, and runs on different days compare; a target whose maximum is below it says so.
 */
function commonRatesFor(plan: Plan, targets: TargetBench[]): Partial<Record<SizeKey, number>> {
  for (const t of targets) {
    for (const size of SIZE_KEYS) {
      const max = t.throughput[size]?.maxRate;
      if (max !== undefined && max < plan.commonRates[size]) {
        t.notes.push(
          `its ${SIZES[size].label} maximum (${max} req/s) is below the common rate (${plan.commonRates[size]} req/s): its latency there is that of an overloaded server`,
        );
      }
    }
  }
  return { ...plan.commonRates };
}

/** Phase 2: latency and memory at the common rate; returns the load runs for their reports. */
async function measureLatency(
  ctx: BenchContext,
  targets: TargetBench[],
  commonRates: Partial<Record<SizeKey, number>>,
): Promise<Partial<Record<SizeKey, LoadResults[]>>> {
  const { plan, progress } = ctx;
  const latencyRuns: Partial<Record<SizeKey, LoadResults[]>> = {};
  const imageFacts = await unikernelImageFacts();
  for (const t of targets) {
    if (ctx.aborted() || t.skipped) continue;
    progress.step(`latency at the common rate: ${t.name} — starting`);
    const running = await startForPhase(ctx, t);
    if (!running) continue;
    const rss = sampleRss(running.child.pid);
    try {
      for (const size of SIZE_KEYS) {
        const rate = commonRates[size];
        if (!rate || ctx.aborted() || !running.child.running) continue;
        const label = `latency · ${t.name} · ${SIZES[size].label} @ ${rate} req/s`;
        progress.step(`${label} for ${plan.fixedWindowMs / 1000}s (after ${plan.warmupMs / 1000}s warm-up)`);
        await loadOnce(ctx, running, size, rate, plan.warmupMs, `${label} warm-up`);
        const others = watchOthersCpu(ctx.machine.cores);
        const r = await loadOnce(ctx, running, size, rate, plan.fixedWindowMs, label, 5000);
        const othersCores = others.stop();
        const target = r.targets[0]!;
        const latency: LatencyResult = {
          rate,
          durationMs: r.durationMs,
          sent: target.sent,
          ok: target.outcomes.ok,
          errors: target.sent - target.outcomes.ok,
          p50: target.latency.p50,
          p90: target.latency.p90,
          p99: target.latency.p99,
          p999: target.latency.p999,
          max: target.latency.max,
          generatorBehind: r.generator.timeline.some((g) => g.behind),
          othersCores,
        };
        t.latency[size] = latency;
        latencyRuns[size] = [...(latencyRuns[size] ?? []), r];
        progress.info(
          `${label}: p50 ${formatMicros(latency.p50)}, p99 ${formatMicros(latency.p99)}, p99.9 ${formatMicros(latency.p999)}, ${latency.errors} errors`,
        );
      }
    } finally {
      const s = rss.stop();
      t.footprint = {
        rssPeakBytes: s.peak,
        rssMeanBytes: Math.round(s.mean),
        processes: s.processes,
        processNames: s.names,
        ...(t.name === 'unikernel' && imageFacts ? imageFacts : {}),
      };
      await running.child.stop();
    }
  }
  return latencyRuns;
}

/** Phase 3: spawn → first 200, for the styles and the node:http floor. */
async function measureColdStarts(ctx: BenchContext, targets: TargetBench[]): Promise<void> {
  const { plan, progress } = ctx;
  for (const t of targets) {
    if (ctx.aborted() || t.skipped || (t.kind !== 'style' && t.name !== 'floor')) continue;
    progress.step(`cold start: ${t.name} — ${plan.coldStartRuns} starts, spawn → first 200 of a 4 KiB file`);
    try {
      t.coldStart = await coldStart(t.name, ctx.dataDir, plan.coldStartRuns, progress);
      progress.info(
        `cold start ${t.name}: median ${t.coldStart.medianMs.toFixed(0)} ms (${t.coldStart.minMs.toFixed(0)}–${t.coldStart.maxMs.toFixed(0)})`,
      );
    } catch (err) {
      t.notes.push(`cold start not measured: ${describeError(err)}`);
      progress.info(`cold start ${t.name}: failed — ${describeError(err)}`);
    }
  }
}

/** Phase 4: a SIGKILL under load, per style; returns the load runs for their reports. */
async function measureRecoveries(ctx: BenchContext, targets: TargetBench[]): Promise<LoadResults[]> {
  const { plan, progress } = ctx;
  const recoveryRuns: LoadResults[] = [];
  for (const t of targets) {
    if (ctx.aborted() || t.skipped || t.kind !== 'style') continue;
    progress.step(
      `recovery: ${t.name} — SIGKILL at ${plan.recovery.faultAtMs / 1000}s under ${plan.recovery.rate} req/s of 4 KiB for ${plan.recovery.durationMs / 1000}s`,
    );
    try {
      const { result, load } = await recovery(
        t.name,
        ctx.dataDir,
        ctx.workDir,
        ctx.manifestDir['4k'],
        plan,
        progress,
        ctx.signal,
      );
      t.recovery = result;
      recoveryRuns.push(load);
      progress.info(
        `recovery ${t.name}: ${result.failed} failed of ${result.requests}; first success after ${result.firstSuccessAfterFailureMs === null ? 'n/a (nothing failed)' : `${result.firstSuccessAfterFailureMs.toFixed(0)} ms`} — ${result.how}`,
      );
    } catch (err) {
      t.notes.push(`recovery not measured: ${describeError(err)}`);
      progress.info(`recovery ${t.name}: failed — ${describeError(err)}`);
    }
  }
  return recoveryRuns;
}

function benchMethod(plan: Plan, quick: boolean, commonRates: Partial<Record<SizeKey, number>>): BenchMethod {
  return {
    quick,
    p99BoundMs: plan.p99BoundMs,
    stepWindowMs: plan.stepWindowMs,
    warmupMs: plan.warmupMs,
    fixedWindowMs: plan.fixedWindowMs,
    search: { startRates: plan.startRates, maxRates: plan.maxRates, bisectSteps: plan.bisectSteps },
    coldStartRuns: plan.coldStartRuns,
    recovery: plan.recovery,
    connections: plan.connections,
    commonRates,
    commonRateRule: 'fixed per size, the same for every target and every run',
    natsRoundTrips: plan.natsRoundTrips,
    text: methodText(plan),
  };
}

export function methodText(plan: Plan): string[] {
  return [
    "One machine, loopback, one target at a time; the load generator (kstyles load's open-loop engine, wrk2 model: latency from the intended send time, HdrHistogram in µs, every body checked against the corpus sha256) runs in the benchmark process on the same cores.",
    `Max throughput: per target and file size, a warm-up of ${plan.warmupMs / 1000}s, then the offered rate doubles from ${Object.entries(
      plan.startRates,
    )
      .map(([k, v]) => `${v} (${SIZES[k as SizeKey].label})`)
      .join(
        ', ',
      )} req/s until a ${plan.stepWindowMs / 1000}s step (longer at low rates: at least 40 requests) fails, then ${plan.bisectSteps} bisection step(s). After a failed step the target must answer /readyz again before the next. A step passes with no failed request, p99 < ${plan.p99BoundMs} ms, and the generator on schedule; ${plan.connections} keep-alive connections.`,
    `Latency: every target at the same fixed rate per size (${SIZE_KEYS.map((k) => `${SIZES[k].label} ${plan.commonRates[k]} req/s`).join(', ')}), ${plan.warmupMs / 1000}s warm-up then ${plan.fixedWindowMs / 1000}s measured; p50/p99/p99.9 from the intended send time.`,
    "Footprint: VmRSS from /proc/<pid>/status summed over the process tree, sampled every 250 ms during the latency runs (peak and mean); the microkernel's tree includes its launcher, nats-server, supervisor and servers.",
    `Cold start: spawn → first 200 of /readyz and then of a 4 KiB file (for the microkernel, /readyz answers 200 only when every server answers); the median of ${plan.coldStartRuns} starts, after the target already ran in the phases before (tsx's transform cache and the page cache are warm).`,
    `Recovery: ${plan.recovery.rate} req/s of 4 KiB for ${plan.recovery.durationMs / 1000}s, SIGKILL at ${plan.recovery.faultAtMs / 1000}s of the component a driver bug kills: the monolith and unikernel processes (under the supervisor of services/supervisor as restarter), the microkernel's driver server (through its supervisor's control API); failed requests and fault → first success after the first failure.`,
    'NATS: sequential 1 KiB request/reply round trips through a real nats-server on loopback.',
  ];
}

async function coldStart(
  name: TargetName,
  dataDir: string,
  runs: number,
  progress: BenchProgress,
): Promise<ColdStartResult> {
  const def = TARGETS[name];
  const samples: number[] = [];
  let how = '';
  // No discarded start: the target already ran in the earlier phases, so tsx's cache and the page cache are warm.
  for (let i = 1; i <= runs; i++) {
    const port = await freePort();
    const launch = def.launch(port, dataDir)!;
    how = launch.describe;
    const child = startProcess(`${name} (cold start)`, launch.command, launch.args, launch.env);
    try {
      const ms = await waitFor200(child, `http://127.0.0.1:${port}`, [...READY_PATHS], def.readyTimeoutMs, 2);
      samples.push(ms);
      progress.live(`cold start · ${name} · ${i}/${runs}: ${ms.toFixed(0)} ms`);
    } finally {
      await child.stop();
    }
  }
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return {
    samplesMs: samples.map((s) => Math.round(s * 10) / 10),
    medianMs: Math.round(median * 10) / 10,
    minMs: Math.round(sorted[0]! * 10) / 10,
    maxMs: Math.round(sorted.at(-1)! * 10) / 10,
    how: `${how}; spawn → 200 of /readyz then of /files/bench/4k.bin, polled every 2 ms`,
  };
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

async function recovery(
  name: TargetName,
  dataDir: string,
  workDir: string,
  manifestDir: string,
  plan: Plan,
  progress: BenchProgress,
  signal?: AbortSignal,
): Promise<{ result: RecoveryResult; load: LoadResults }> {
  const def = TARGETS[name];
  let root: Spawned;
  let url: string;
  let kill: () => Promise<string>;
  let how: string;
  if (name === 'microkernel') {
    const running = await startTarget(def, dataDir, workDir);
    root = running.child;
    url = running.url;
    how =
      "driver server SIGKILLed through the microkernel supervisor's control API; the supervisor restarts it";
    kill = async () => {
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
      how = 'driver server SIGKILLed by PID (no supervisor control API found); its supervisor restarts it';
      process.kill(pid, 'SIGKILL');
      return `SIGKILL to the driver server (PID ${pid}) found in the process tree`;
    };
  } else {
    // The monolith and the unikernel die whole: run them under the project's supervisor as the restarter.
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const launch = def.launch(port, dataDir)!;
    const specFile = path.join(workDir, `${name}-restarter.json`);
    const id = `bench-${name}-${process.pid}`;
    await writeFile(
      specFile,
      JSON.stringify({
        id,
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
    root = startProcess(`${name} restarter`, process.execPath, [
      '--import',
      'tsx',
      SUPERVISOR_MAIN,
      '--spec',
      specFile,
    ]);
    await waitFor200(root, url, [...READY_PATHS], def.readyTimeoutMs);
    const program = new RegExp(
      name === 'unikernel' ? 'kstyles-unikernel|unikernel' : 'kstyles\\.js monolith',
    );
    how = `the whole ${name} process SIGKILLed; the supervisor (services/supervisor/main.ts, one_for_one, http readiness check) restarts it`;
    kill = async () => {
      const pid = findInTree(root.pid, program);
      if (pid === null || !isAlive(pid))
        throw new Error(`no ${name} process under the restarter (PID ${root.pid})`);
      process.kill(pid, 'SIGKILL');
      return `SIGKILL to ${name} (PID ${pid})`;
    };
  }
  try {
    const r = await runLoad({
      targets: [{ name, url }],
      rate: plan.recovery.rate,
      durationMs: plan.recovery.durationMs,
      corpusDir: manifestDir,
      mix: 'all',
      connections: plan.connections,
      timeoutMs: 2000,
      hostileBattery: false,
      faults: [{ atMs: plan.recovery.faultAtMs, target: name, kind: 'kill', affects: [name] }],
      faultDrivers: [
        { name: 'bench', supports: () => true, inject: async () => ({ message: await kill() }) },
      ],
      faultWindowMs: plan.recovery.durationMs - plan.recovery.faultAtMs,
      progressIntervalMs: 500,
      onProgress: (p) => progress.live(`recovery · ${name}  ${liveText(p)}`),
      signal: stepSignal(signal),
    }).finally(releaseStepSignals);
    const fault = r.faults[0];
    const res = fault?.resilience[0];
    return {
      load: r,
      result: {
        rate: plan.recovery.rate,
        durationMs: plan.recovery.durationMs,
        faultAtMs: fault?.firedAtMs ?? plan.recovery.faultAtMs,
        how,
        injected: fault?.ok === true,
        message: fault?.message ?? 'no fault fired',
        requests: res?.requests ?? 0,
        failed: res?.failed ?? 0,
        firstSuccessAfterFailureMs: res?.firstSuccessAfterFailureMs ?? null,
        p99RecoveryMs: res?.p99RecoveryMs ?? null,
      },
    };
  } finally {
    await root.stop();
  }
}
