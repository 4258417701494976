import { performance } from 'node:perf_hooks';
import { readManifest } from '../services/corpus/corpus.ts';
import { planVerifier, type VerifyMode } from './body-verifier.ts';
import { type DriverContext, defaultFaultDrivers, type FaultDriver } from './fault-drivers.ts';
import { FaultSchedule } from './fault-schedule.ts';
import { createHistogram, recordMicros, summarize } from './histogram.ts';
import { rangeFileOf } from './hostile-battery.ts';
import { type LoadMetrics, startLoadMetrics } from './load-metrics.ts';
import { LoopDelay } from './loop-delay.ts';
import { buildRequestMix, DEFAULT_MIX, poisonFile } from './request-mix.ts';
import { withSecurityFacts } from './security-facts.ts';
import { chooseSenderThreads, type MergedTarget, SenderPool } from './sender-pool.ts';
import {
  emptyOutcomeCounts,
  type FaultSpec,
  type GeneratorSecond,
  type LoadProgress,
  type LoadResults,
  OUTCOMES,
  type TargetFacts,
} from './types.ts';
import { formatMicros } from './units.ts';

export { affectedTargets } from './fault-schedule.ts';

export type LoadTarget = { name: string; url: string };

export type LoadOptions = {
  targets: LoadTarget[];
  /** Requests per second, per target. */
  rate: number;
  durationMs: number;
  /** Directory holding MANIFEST.json. */
  corpusDir: string;
  /** Keep-alive connections per target (default 32). */
  connections?: number;
  /** Seed of the request mix (default 1). */
  seed?: number;
  /** Per-request timeout from the intended send time (default 5000). */
  timeoutMs?: number;
  /** small | medium | large | all | weights like `small=90,medium=9,large=1` (the default). */
  mix?: string;
  /** How bodies are checked (default: byte compare where the corpus files are local, else sha256). */
  verify?: VerifyMode;
  faults?: FaultSpec[];
  /** Fault drivers to use instead of the defaults (supervisor over NATS, signals, Docker, poison). */
  faultDrivers?: FaultDriver[];
  /** NATS URL for the supervisor driver (otherwise from the supervisor's runtime-state file). */
  natsUrl?: string;
  /** Directory of runtime-state files (default `<tmpdir>/kstyles/run`). */
  stateDir?: string;
  /** How long after a fault its requests count for resilience (default 10 s, cut at the next fault). */
  faultWindowMs?: number;
  /** Expose the client-side metrics on this port while running (0 = any free port). */
  metricsPort?: number;
  facts?: Record<string, TargetFacts>;
  /** Send the hostile battery (load/hostile-battery.ts) to every target before the load (default true). */
  hostileBattery?: boolean;
  /** Measure the rest of the Security row (load/security-facts.ts) before the load (default true). */
  security?: boolean;
  onProgress?: (progress: LoadProgress) => void;
  /** How often onProgress is called (default 250 ms). */
  progressIntervalMs?: number;
  /** Called once the metrics endpoint listens. */
  onMetricsListening?: (port: number) => void;
  /** Stops the run early (results cover what ran). */
  signal?: AbortSignal;
  /** Sender threads (default: chosen for the rate and the cores; results say which and why). */
  workers?: number;
  /** Requests at the same rate before the measured window, counted apart (default 2 s; 0 for none). */
  warmupMs?: number;
};

export const LOAD_DEFAULTS = {
  connections: 32,
  seed: 1,
  timeoutMs: 5000,
  faultWindowMs: 10_000,
  warmupMs: 2000,
} as const;

/** How often the main thread fires due faults, merges what the threads reported and draws progress. */
const MAIN_TICK_MS = 10;

/** One sentence per run of seconds in which the generator fell behind. */
function describeBehind(gen: GeneratorSecond[]): string[] {
  const warnings: string[] = [];
  let i = 0;
  while (i < gen.length) {
    if (!gen[i]!.behind) {
      i++;
      continue;
    }
    let j = i;
    let lag = 0;
    let loop = 0;
    while (j < gen.length && gen[j]!.behind) {
      lag = Math.max(lag, gen[j]!.sendLagMax);
      loop = Math.max(loop, gen[j]!.eventLoopP99);
      j++;
    }
    warnings.push(
      `generator fell behind: requests left up to ${formatMicros(lag)} late (event-loop delay p99 ${formatMicros(loop)}) during ${i}s–${j}s; results for this window reflect the generator, not the target`,
    );
    i = j;
  }
  return warnings;
}

/** The live view of a run (rates are filled in by the caller, over its own interval). */
function progressOf(
  elapsedMs: number,
  durationMs: number,
  targets: MergedTarget[],
  faults: FaultSchedule,
  generator: GeneratorSecond[],
): LoadProgress {
  const recent = generator.at(-1);
  return {
    elapsedMs: Math.max(0, Math.min(elapsedMs, durationMs)),
    durationMs,
    targets: targets.map((r) => ({
      name: r.name,
      sent: r.sent,
      completed: r.completed,
      inFlight: r.inFlight,
      rate: 0,
      p99: r.lastP99(),
      errors: r.completed - r.outcomes.ok,
      dataLoss: r.outcomes.data_loss,
    })),
    faults: faults.records,
    behind: recent?.behind
      ? `generator fell behind: requests leave up to ${formatMicros(recent.sendLagMax)} late; results for this window reflect the generator, not the target`
      : null,
    warmingUp: elapsedMs < 0,
  };
}

/** Runs open-loop load against every target at once and returns everything measured. */
export async function runLoad(options: LoadOptions): Promise<LoadResults> {
  if (options.targets.length === 0) throw new Error('runLoad: at least one target is needed');
  if (!(options.rate > 0)) throw new Error('runLoad: rate must be above 0 requests per second');
  if (options.workers !== undefined && !(Number.isSafeInteger(options.workers) && options.workers >= 1))
    throw new Error(`runLoad: workers must be a whole number of threads, 1 or more, got ${options.workers}`);
  const warmupMs = options.warmupMs ?? LOAD_DEFAULTS.warmupMs;
  if (!(warmupMs >= 0)) throw new Error(`runLoad: warmupMs must be 0 or more, got ${warmupMs}`);
  const connections = options.connections ?? LOAD_DEFAULTS.connections;
  const seed = options.seed ?? LOAD_DEFAULTS.seed;
  const timeoutMs = options.timeoutMs ?? LOAD_DEFAULTS.timeoutMs;
  const faultWindowMs = options.faultWindowMs ?? LOAD_DEFAULTS.faultWindowMs;
  const mixText = options.mix ?? DEFAULT_MIX;
  const manifest = await readManifest(options.corpusDir);
  const mix = buildRequestMix(manifest, mixText);
  const verifier = await planVerifier(options.corpusDir, manifest.files, options.verify);
  const durationMs = options.durationMs;
  const senders = chooseSenderThreads(options.workers, options.rate * options.targets.length);

  let metrics: LoadMetrics | null = null;
  if (options.metricsPort !== undefined) {
    metrics = await startLoadMetrics(options.metricsPort);
    options.onMetricsListening?.(metrics.port);
  }
  // Before any fault: the Security row (security-facts.ts), while every target's request parser is up.
  const rangeFile = rangeFileOf(manifest);
  const facts = await withSecurityFacts(options.targets, options.facts, {
    corpusDir: options.corpusDir,
    timeoutMs,
    hostileBattery: options.hostileBattery ?? true,
    measure: options.security ?? true,
    ...(rangeFile ? { rangeFile } : {}),
    ...(options.natsUrl ? { natsUrl: options.natsUrl } : {}),
    ...(options.stateDir ? { stateDir: options.stateDir } : {}),
  });
  const driverCtx: DriverContext = {
    targets: new Map(options.targets.map((t) => [t.name, t.url])),
    poisonUrlPath: poisonFile(manifest)?.urlPath ?? null,
    ...(options.natsUrl ? { natsUrl: options.natsUrl } : {}),
    ...(options.stateDir ? { stateDir: options.stateDir } : {}),
  };
  const drivers = options.faultDrivers ?? defaultFaultDrivers(driverCtx);
  const faults = new FaultSchedule({ faults: options.faults ?? [], drivers, metrics, faultWindowMs });

  let pool: SenderPool;
  try {
    pool = await SenderPool.start({
      targets: options.targets,
      rate: options.rate,
      durationMs,
      warmupMs,
      timeoutMs,
      connections,
      seed,
      mix: mixText,
      manifest,
      verifier,
      threads: senders.threads,
      // Fault windows and the metrics endpoint follow every completion; without them nothing crosses per request.
      streamCompletions: metrics !== null || (options.faults?.length ?? 0) > 0,
    });
  } catch (err) {
    await metrics?.close();
    throw err;
  }
  if (metrics) {
    const observers = new Map(pool.targets.map((t) => [t, metrics!.observer(t.name)]));
    pool.onCompletion = (target, outcome, _intendedMs, _completedMs, latencyUs) =>
      observers.get(target)!(outcome, latencyUs / 1e6);
  }

  let run: Awaited<ReturnType<typeof drive>>;
  const t0 = pool.begin();
  const startedAt = new Date(Date.now() + (t0 - performance.now()));
  try {
    faults.watch({ t0, targets: new Map(pool.targets.map((t) => [t.name, t])), endMs: durationMs });
    run = await drive({ options, pool, faults, t0 });
  } finally {
    faults.resumeAll();
    await faults.settle();
    for (const d of drivers) await d.close?.().catch(() => undefined);
    await pool.close().finally(() => metrics?.close());
  }

  const runDurationMs = Math.max(1, Math.min(durationMs, run.endedMs));
  const targets = pool.results(runDurationMs);
  faults.closeWindows((name) => targets.find((t) => t.name === name)!.timeline);
  options.onProgress?.(progressOf(performance.now() - t0, durationMs, pool.targets, faults, pool.generator));
  const sent = targets.reduce((n, t) => n + t.sent, 0);
  const warmupOutcomes = emptyOutcomeCounts();
  for (const t of pool.targets) for (const o of OUTCOMES) warmupOutcomes[o] += t.warmup.outcomes[o];
  const warmupSent = pool.targets.reduce((n, t) => n + t.warmup.sent, 0);
  const warmupCompleted = pool.targets.reduce((n, t) => n + t.warmup.completed, 0);
  pool.generator.forEach((second, t) => {
    const main = run.mainLoopMaxes[t];
    if (main !== undefined) second.mainEventLoopMax = main;
  });
  const warnings = describeBehind(pool.generator);
  if (warmupOutcomes.data_loss > 0)
    warnings.push(
      `DATA LOSS during the warm-up: ${warmupOutcomes.data_loss} bodies were not the file (the warm-up counts in no figure, but the target lost data)`,
    );
  const loopP99s = createHistogram();
  for (const s of pool.generator) recordMicros(loopP99s, s.eventLoopP99);
  const eventLoop = summarize(loopP99s);
  loopP99s.destroy();
  return {
    version: 1,
    tool: 'kstyles-load',
    startedAt: startedAt.toISOString(),
    durationMs: runDurationMs,
    rate: options.rate,
    connections,
    seed,
    timeoutMs,
    mix: `${mixText} (${mix.describe})`,
    corpus: { dir: options.corpusDir, files: mix.files, seed: manifest.seed },
    targets,
    faults: faults.records,
    generator: {
      timeline: pool.generator,
      eventLoop,
      warnings,
      senders: { ...senders, priority: pool.priority },
      cpu: {
        totalMs: Math.round(run.cpuUs / 100) / 10,
        perRequestUs: sent === 0 ? 0 : Math.round((run.cpuUs / sent) * 10) / 10,
      },
    },
    warmup: {
      durationMs: warmupMs,
      sent: warmupSent,
      completed: warmupCompleted,
      errors: warmupCompleted - warmupOutcomes.ok,
      outcomes: warmupOutcomes,
    },
    ...facts,
  };
}

/**
 * The run itself, seen from the main thread: fires faults, follows the threads' reports and draws
 * progress, until sending has ended and every request and undo is done. Resolves with the ms it sent
 * for, the process's CPU time (all threads, µs) from t0 until then and the main thread's longest
 * event-loop delay per second.
 */
async function drive(run: {
  options: LoadOptions;
  pool: SenderPool;
  faults: FaultSchedule;
  t0: number;
}): Promise<{ endedMs: number; cpuUs: number; mainLoopMaxes: number[] }> {
  const { options, pool, faults, t0 } = run;
  const durationMs = options.durationMs;
  let lastProgress = performance.now();
  const completedAtLastProgress = pool.targets.map(() => 0);
  const progressEvery = options.progressIntervalMs ?? 250;
  let cpuAtT0: NodeJS.CpuUsage | null = null;
  const mainLoop = new LoopDelay();
  let mainSecond = 0;
  const mainLoopMaxes: number[] = [];
  return new Promise((resolve, reject) => {
    let stopped = false;
    let ended = false;
    const onAbort = () => {
      stopped = true;
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const tick = () => {
      if (pool.error) {
        options.signal?.removeEventListener('abort', onAbort);
        mainLoop.stop();
        reject(pool.error);
        return;
      }
      const now = performance.now();
      const elapsed = now - t0;
      if (cpuAtT0 === null && elapsed >= 0) {
        cpuAtT0 = process.cpuUsage();
        mainLoop.reset();
      }
      if (elapsed >= (mainSecond + 1) * 1000 && mainSecond * 1000 < durationMs) {
        mainLoopMaxes[mainSecond] = mainLoop.max();
        mainLoop.reset();
        mainSecond = Math.floor(elapsed / 1000);
      }
      const sending = elapsed < durationMs && !stopped;
      faults.tick(elapsed, sending);
      if (!sending && !ended) {
        ended = true;
        if (stopped) pool.stop();
        // Nothing stays stopped or slowed once the load is over.
        faults.resumeAll();
      }
      if (options.onProgress && now - lastProgress >= progressEvery) {
        const p = progressOf(elapsed, durationMs, pool.targets, faults, pool.generator);
        const dt = (now - lastProgress) / 1000;
        p.targets.forEach((t, i) => {
          t.rate = (t.completed - completedAtLastProgress[i]!) / dt;
          completedAtLastProgress[i] = t.completed;
        });
        lastProgress = now;
        options.onProgress(p);
      }
      if (!sending && pool.finished && faults.resumed) {
        options.signal?.removeEventListener('abort', onAbort);
        const cpu = process.cpuUsage(cpuAtT0 ?? undefined);
        mainLoop.stop();
        resolve({ endedMs: Math.min(elapsed, durationMs), cpuUs: cpu.user + cpu.system, mainLoopMaxes });
        return;
      }
      setTimeout(tick, MAIN_TICK_MS);
    };
    tick();
  });
}
