import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { readManifest } from '../services/corpus/corpus.ts';
import {
  type DriverContext,
  defaultFaultDrivers,
  type FaultDriver,
  type FaultInjection,
} from './fault-drivers.ts';
import { createHistogram, recordMicros, summarize } from './histogram.ts';
import { type LoadMetrics, startLoadMetrics } from './load-metrics.ts';
import { listenerFacts } from './process-facts.ts';
import { buildRequestMix, DEFAULT_MIX, poisonFile } from './request-mix.ts';
import { computeP99Recovery, FaultTracker } from './resilience.ts';
import { TargetRunner } from './target-runner.ts';
import type {
  FaultRecord,
  FaultSpec,
  GeneratorSecond,
  LoadProgress,
  LoadResults,
  TargetFacts,
} from './types.ts';
import { formatMicros } from './units.ts';

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
  onProgress?: (progress: LoadProgress) => void;
  /** How often onProgress is called (default 250 ms). */
  progressIntervalMs?: number;
  /** Called once the metrics endpoint listens. */
  onMetricsListening?: (port: number) => void;
  /** Stops the run early (results cover what ran). */
  signal?: AbortSignal;
};

export const LOAD_DEFAULTS = { connections: 32, seed: 1, timeoutMs: 5000, faultWindowMs: 10_000 } as const;

/** Send lag (p99 within a second) beyond which the generator, not the target, shapes the numbers. */
const BEHIND_LAG_US = 10_000;
const BEHIND_LOOP_US = 20_000;
const LOOP_RESOLUTION_MS = 10;

/** Splits a fault target into the load targets it can affect: `microkernel:driver` → microkernel. */
export function affectedTargets(fault: FaultSpec, names: string[]): string[] {
  if (fault.affects?.length) return fault.affects.filter((n) => names.includes(n));
  const parts = fault.target.split(':').filter((p) => names.includes(p));
  return parts.length > 0 ? [parts[0]!] : names;
}

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

/** Runs open-loop load against every target at once and returns everything measured. */
export async function runLoad(options: LoadOptions): Promise<LoadResults> {
  if (options.targets.length === 0) throw new Error('runLoad: at least one target is needed');
  if (!(options.rate > 0)) throw new Error('runLoad: rate must be above 0 requests per second');
  const connections = options.connections ?? LOAD_DEFAULTS.connections;
  const seed = options.seed ?? LOAD_DEFAULTS.seed;
  const timeoutMs = options.timeoutMs ?? LOAD_DEFAULTS.timeoutMs;
  const faultWindowMs = options.faultWindowMs ?? LOAD_DEFAULTS.faultWindowMs;
  const mixText = options.mix ?? DEFAULT_MIX;
  const manifest = await readManifest(options.corpusDir);
  const mix = buildRequestMix(manifest, mixText);
  const names = options.targets.map((t) => t.name);
  const targetUrls = new Map(options.targets.map((t) => [t.name, t.url]));

  let metrics: LoadMetrics | null = null;
  if (options.metricsPort !== undefined) {
    metrics = await startLoadMetrics(options.metricsPort);
    options.onMetricsListening?.(metrics.port);
  }

  const runners = options.targets.map((t) => {
    const observe = metrics?.observer(t.name);
    return new TargetRunner({
      name: t.name,
      url: t.url,
      rate: options.rate,
      connections,
      timeoutMs,
      picker: mix.picker(seed),
      ...(observe ? { onComplete: observe } : {}),
    });
  });
  const byName = new Map(runners.map((r) => [r.name, r]));
  // Before any fault: every target's request parser is up.
  const facts = withMeasuredFacts(options.targets, options.facts);
  const driverCtx: DriverContext = {
    targets: targetUrls,
    poisonUrlPath: poisonFile(manifest)?.urlPath ?? null,
    ...(options.natsUrl ? { natsUrl: options.natsUrl } : {}),
    ...(options.stateDir ? { stateDir: options.stateDir } : {}),
  };
  const drivers = options.faultDrivers ?? defaultFaultDrivers(driverCtx);
  const faults = [...(options.faults ?? [])].sort((a, b) => a.atMs - b.atMs);
  const faultRecords: FaultRecord[] = [];
  const trackers: { record: FaultRecord; tracker: FaultTracker }[] = [];
  const pendingInjections: Promise<void>[] = [];
  const resumes: { atMs: number; run: () => Promise<void>; done: boolean }[] = [];

  const eventLoop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  eventLoop.enable();
  const loopAll = createHistogram();
  const generator: GeneratorSecond[] = [];
  let secondLag = createHistogram(2);
  let lastSecond = 0;

  const startedAt = new Date();
  const t0 = performance.now();
  const durationMs = options.durationMs;
  for (const runner of runners) runner.start(t0, durationMs);

  const inject = async (spec: FaultSpec): Promise<void> => {
    const firedAtMs = performance.now() - t0;
    const driver = drivers.find((d) => d.supports(spec.target, spec.kind));
    const affected = affectedTargets(spec, names);
    const record: FaultRecord = {
      ...spec,
      firedAtMs,
      driver: driver?.name ?? 'none',
      ok: false,
      message: '',
      resilience: [],
    };
    faultRecords.push(record);
    // A new fault on a target closes the window of the previous one there.
    for (const prev of trackers) {
      if (
        prev.record !== record &&
        affected.includes(prev.tracker.target) &&
        prev.tracker.endMs > firedAtMs
      ) {
        prev.tracker.endMs = firedAtMs;
      }
    }
    for (const name of affected) {
      const tracker = new FaultTracker(name, firedAtMs, Math.min(firedAtMs + faultWindowMs, durationMs));
      byName.get(name)!.observers.push(tracker);
      trackers.push({ record, tracker });
    }
    if (!driver) {
      record.message = `no fault driver supports ${spec.kind} on '${spec.target}': kill/term/hang take pid:N, docker:NAME, SUPERVISOR:SERVICE or a name with a runtime-state file; poison takes a load target name; nats takes SUPERVISOR; slow (SIGUSR2) goes to the same targets as kill; crashloop is a chaos setting of the services, not a fault this generator can switch on`;
      return;
    }
    try {
      const injection: FaultInjection = await driver.inject(spec.target, spec.kind, {
        ...(spec.forMs !== undefined ? { forMs: spec.forMs } : {}),
        ...(spec.latencyMs !== undefined ? { latencyMs: spec.latencyMs } : {}),
        ...(spec.times !== undefined ? { times: spec.times } : {}),
      });
      record.ok = true;
      record.message = injection.message;
      for (const name of affected) metrics?.fault(name, spec.target, spec.kind);
      if (injection.resume) {
        const resume = injection.resume;
        resumes.push({
          atMs: firedAtMs + (spec.forMs ?? 0),
          done: false,
          run: async () => {
            try {
              record.message += `; ${await resume()}`;
            } catch (err) {
              record.message += `; resume FAILED: ${(err as Error).message}`;
              record.ok = false;
            }
          },
        });
      }
    } catch (err) {
      record.message = (err as Error).message;
    }
  };

  const progress = (now: number): LoadProgress => {
    const elapsedMs = now - t0;
    const recent = generator.at(-1);
    return {
      elapsedMs: Math.min(elapsedMs, durationMs),
      durationMs,
      targets: runners.map((r) => ({
        name: r.name,
        sent: r.sent,
        completed: r.completed,
        inFlight: r.inFlight,
        rate: 0,
        p99: r.lastP99(),
        errors: r.completed - r.outcomes.ok,
        dataLoss: r.outcomes.data_loss,
      })),
      faults: faultRecords,
      behind: recent?.behind
        ? `generator fell behind: requests leave up to ${formatMicros(recent.sendLagMax)} late; results for this window reflect the generator, not the target`
        : null,
    };
  };

  let faultIndex = 0;
  let lastProgress = t0;
  const completedAtLastProgress = runners.map(() => 0);
  const progressEvery = options.progressIntervalMs ?? 250;
  const lagSink = (lagUs: number) => recordMicros(secondLag, lagUs);

  await new Promise<void>((resolve) => {
    let stopped = false;
    const stop = () => {
      stopped = true;
    };
    options.signal?.addEventListener('abort', stop, { once: true });
    const tick = () => {
      const now = performance.now();
      const elapsed = now - t0;
      const sending = elapsed < durationMs && !stopped;
      // dispatchDue stops at the end of the run by itself; this also sends the last few after the final tick.
      if (!stopped) for (const runner of runners) runner.dispatchDue(now, lagSink);
      for (const runner of runners) runner.sweepTimeouts(now);
      while (faultIndex < faults.length && faults[faultIndex]!.atMs <= elapsed && sending) {
        pendingInjections.push(inject(faults[faultIndex]!));
        faultIndex++;
      }
      for (const resume of resumes) {
        if (!resume.done && (resume.atMs <= elapsed || !sending)) {
          resume.done = true;
          pendingInjections.push(resume.run());
        }
      }
      const second = Math.floor(elapsed / 1000);
      if (second > lastSecond && lastSecond * 1000 < durationMs) {
        // The monitor reports whole intervals between its samples: subtract its resolution.
        const loopP99 =
          eventLoop.count > 0 ? Math.max(0, eventLoop.percentile(99) / 1000 - LOOP_RESOLUTION_MS * 1000) : 0;
        if (eventLoop.count > 0) recordMicros(loopAll, loopP99);
        const lag = summarize(secondLag);
        generator.push({
          t: lastSecond,
          sendLagP99: lag.p99,
          sendLagMax: lag.max,
          eventLoopP99: Math.round(loopP99),
          behind: lag.p99 > BEHIND_LAG_US || loopP99 > BEHIND_LOOP_US,
        });
        eventLoop.reset();
        secondLag.destroy();
        secondLag = createHistogram(2);
        lastSecond = second;
      }
      if (options.onProgress && now - lastProgress >= progressEvery) {
        const p = progress(now);
        const dt = (now - lastProgress) / 1000;
        p.targets.forEach((t, i) => {
          t.rate = (t.completed - completedAtLastProgress[i]!) / dt;
          completedAtLastProgress[i] = t.completed;
        });
        lastProgress = now;
        options.onProgress(p);
      }
      if (!sending && runners.every((r) => r.idle) && resumes.every((r) => r.done)) {
        resolve();
        return;
      }
      // One timer for everything: requests due before the next tick go out together in that tick.
      setTimeout(tick, sending ? 1 : 5);
    };
    tick();
  });

  const endedMs = Math.min(performance.now() - t0, durationMs);
  await Promise.allSettled(pendingInjections);
  eventLoop.disable();
  await Promise.all(runners.map((r) => r.close()));
  for (const d of drivers) await d.close?.().catch(() => undefined);
  await metrics?.close();

  const runDurationMs = Math.max(1, Math.min(durationMs, endedMs));
  const targets = runners.map((r) => r.result(runDurationMs));
  for (const { record, tracker } of trackers) {
    const timeline = targets.find((t) => t.name === tracker.target)!.timeline;
    record.resilience.push(tracker.result(computeP99Recovery(timeline, record.firedAtMs)));
  }
  if (options.onProgress) options.onProgress(progress(performance.now()));
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
    faults: faultRecords,
    generator: { timeline: generator, eventLoop: summarize(loopAll), warnings: describeBehind(generator) },
    ...facts,
  };
}

/**
 * The given facts, with what /proc shows of each local target's listening process (its uid, open fds,
 * listening sockets) under the target's name; a given fact wins over a measured one.
 */
function withMeasuredFacts(
  targets: LoadTarget[],
  given: Record<string, TargetFacts> | undefined,
): { facts?: Record<string, TargetFacts> } {
  const facts: Record<string, TargetFacts> = {};
  for (const target of targets) {
    const measured = listenerFacts(target.url);
    if (measured) {
      const { uid, openFds, listeningSockets } = measured;
      facts[target.name] = { uid, openFds, listeningSockets };
    }
  }
  for (const [name, value] of Object.entries(given ?? {})) facts[name] = { ...facts[name], ...value };
  return Object.keys(facts).length > 0 ? { facts } : {};
}
