import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { encodeFilePath, readManifest } from '../services/corpus/corpus.ts';
import { chooseVerifier, type VerifyMode } from './body-verifier.ts';
import {
  type DriverContext,
  defaultFaultDrivers,
  type FaultDriver,
  type FaultInjection,
} from './fault-drivers.ts';
import { createHistogram, recordMicros, summarize } from './histogram.ts';
import { runHostileBattery } from './hostile-battery.ts';
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

/**
 * The faults of one run: fires each when it is due, tracks which requests it may affect, undoes
 * temporary ones after their `for`, and records what happened.
 */
class FaultSchedule {
  readonly records: FaultRecord[] = [];
  private readonly faults: FaultSpec[];
  private next = 0;
  private readonly trackers: { record: FaultRecord; tracker: FaultTracker }[] = [];
  private readonly pending: Promise<void>[] = [];
  private readonly resumes: { atMs: number; run: () => Promise<void>; done: boolean }[] = [];

  constructor(
    faults: FaultSpec[],
    private readonly drivers: FaultDriver[],
    private readonly runners: Map<string, TargetRunner>,
    private readonly metrics: LoadMetrics | null,
    private readonly window: { faultWindowMs: number; durationMs: number },
  ) {
    this.faults = [...faults].sort((a, b) => a.atMs - b.atMs);
  }

  /** Fires the faults due by `elapsedMs` while sending, and the undos due (all of them once sending ends). */
  tick(elapsedMs: number, sending: boolean, t0: number): void {
    while (this.next < this.faults.length && this.faults[this.next]!.atMs <= elapsedMs && sending) {
      this.pending.push(this.inject(this.faults[this.next]!, t0));
      this.next++;
    }
    for (const resume of this.resumes) {
      if (!resume.done && (resume.atMs <= elapsedMs || !sending)) {
        resume.done = true;
        this.pending.push(resume.run());
      }
    }
  }

  get resumed(): boolean {
    return this.resumes.every((r) => r.done);
  }

  /** Waits for every injection and undo, then closes the drivers. */
  async settle(): Promise<void> {
    await Promise.allSettled(this.pending);
    for (const d of this.drivers) await d.close?.().catch(() => undefined);
  }

  /** Adds each fault's resilience figures, from the timelines of the targets it affected. */
  recordResilience(targets: { name: string; timeline: LoadResults['targets'][number]['timeline'] }[]): void {
    for (const { record, tracker } of this.trackers) {
      const timeline = targets.find((t) => t.name === tracker.target)!.timeline;
      record.resilience.push(tracker.result(computeP99Recovery(timeline, record.firedAtMs)));
    }
  }

  private async inject(spec: FaultSpec, t0: number): Promise<void> {
    const firedAtMs = performance.now() - t0;
    const driver = this.drivers.find((d) => d.supports(spec.target, spec.kind));
    const affected = affectedTargets(spec, [...this.runners.keys()]);
    const record: FaultRecord = {
      ...spec,
      firedAtMs,
      driver: driver?.name ?? 'none',
      ok: false,
      message: '',
      resilience: [],
    };
    this.records.push(record);
    this.track(record, affected, firedAtMs);
    if (!driver) {
      record.message = `no fault driver supports ${spec.kind} on '${spec.target}': kill/term/hang take pid:N, docker:NAME, SUPERVISOR:SERVICE or a name with a runtime-state file; poison takes a load target name; nats takes SUPERVISOR; slow (SIGUSR2) goes to the same targets as kill; crashloop takes SUPERVISOR:SERVICE of a service with a crash-at-start hook (the microkernel's driver with chaos on)`;
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
      for (const name of affected) this.metrics?.fault(name, spec.target, spec.kind);
      if (injection.resume) this.scheduleResume(record, firedAtMs + (spec.forMs ?? 0), injection.resume);
    } catch (err) {
      record.message = (err as Error).message;
    }
  }

  /** Opens the fault's window on each affected target; a new fault there closes the previous one's. */
  private track(record: FaultRecord, affected: string[], firedAtMs: number): void {
    for (const prev of this.trackers) {
      if (affected.includes(prev.tracker.target) && prev.tracker.endMs > firedAtMs)
        prev.tracker.endMs = firedAtMs;
    }
    const { faultWindowMs, durationMs } = this.window;
    for (const name of affected) {
      const tracker = new FaultTracker(name, firedAtMs, Math.min(firedAtMs + faultWindowMs, durationMs));
      this.runners.get(name)!.observers.push(tracker);
      this.trackers.push({ record, tracker });
    }
  }

  private scheduleResume(record: FaultRecord, atMs: number, resume: () => Promise<string>): void {
    this.resumes.push({
      atMs,
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
}

/** Watches the generator itself, second by second: how late requests left and the event-loop delay. */
class GeneratorMonitor {
  readonly timeline: GeneratorSecond[] = [];
  private readonly eventLoop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  private readonly loopAll = createHistogram();
  private secondLag = createHistogram(2);
  private lastSecond = 0;
  /** Records one request's send lag. */
  readonly lagSink = (lagUs: number) => recordMicros(this.secondLag, lagUs);

  constructor() {
    this.eventLoop.enable();
  }

  /** Closes the second that just ended, if one did. */
  tick(elapsedMs: number, durationMs: number): void {
    const second = Math.floor(elapsedMs / 1000);
    if (second <= this.lastSecond || this.lastSecond * 1000 >= durationMs) return;
    const { eventLoop } = this;
    // The monitor reports whole intervals between its samples: subtract its resolution.
    const loopP99 =
      eventLoop.count > 0 ? Math.max(0, eventLoop.percentile(99) / 1000 - LOOP_RESOLUTION_MS * 1000) : 0;
    if (eventLoop.count > 0) recordMicros(this.loopAll, loopP99);
    const lag = summarize(this.secondLag);
    this.timeline.push({
      t: this.lastSecond,
      sendLagP99: lag.p99,
      sendLagMax: lag.max,
      eventLoopP99: Math.round(loopP99),
      behind: lag.p99 > BEHIND_LAG_US || loopP99 > BEHIND_LOOP_US,
    });
    eventLoop.reset();
    this.secondLag.destroy();
    this.secondLag = createHistogram(2);
    this.lastSecond = second;
  }

  stop(): void {
    this.eventLoop.disable();
  }

  result(): LoadResults['generator'] {
    return {
      timeline: this.timeline,
      eventLoop: summarize(this.loopAll),
      warnings: describeBehind(this.timeline),
    };
  }
}

/** The live view of a run (rates are filled in by the caller, over its own interval). */
function progressOf(
  elapsedMs: number,
  durationMs: number,
  runners: TargetRunner[],
  faults: FaultSchedule,
  generator: GeneratorMonitor,
): LoadProgress {
  const recent = generator.timeline.at(-1);
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
    faults: faults.records,
    behind: recent?.behind
      ? `generator fell behind: requests leave up to ${formatMicros(recent.sendLagMax)} late; results for this window reflect the generator, not the target`
      : null,
  };
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
  const verifier = await chooseVerifier(options.corpusDir, manifest.files, options.verify);
  const durationMs = options.durationMs;

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
      verifier,
      ...(observe ? { onComplete: observe } : {}),
    });
  });
  // Before any fault: every target's request parser is up.
  const facts = withMeasuredFacts(options.targets, options.facts);
  if (options.hostileBattery ?? true) {
    const rangeFile = manifest.files.find((file) => file.size > 0 && !file.poison);
    const range = rangeFile
      ? { urlPath: `/files/${encodeFilePath(rangeFile.path)}`, size: rangeFile.size }
      : undefined;
    const outcomes = await Promise.all(
      options.targets.map((target) => runHostileBattery(target.url, range, timeoutMs)),
    );
    facts.facts ??= {};
    options.targets.forEach((target, i) => {
      facts.facts![target.name] = { hostile: outcomes[i]!, ...facts.facts![target.name] };
    });
  }
  const driverCtx: DriverContext = {
    targets: new Map(options.targets.map((t) => [t.name, t.url])),
    poisonUrlPath: poisonFile(manifest)?.urlPath ?? null,
    ...(options.natsUrl ? { natsUrl: options.natsUrl } : {}),
    ...(options.stateDir ? { stateDir: options.stateDir } : {}),
  };
  const faults = new FaultSchedule(
    options.faults ?? [],
    options.faultDrivers ?? defaultFaultDrivers(driverCtx),
    new Map(runners.map((r) => [r.name, r])),
    metrics,
    { faultWindowMs, durationMs },
  );
  const generator = new GeneratorMonitor();

  const startedAt = new Date();
  const t0 = performance.now();
  for (const runner of runners) runner.start(t0, durationMs);
  const endedMs = await drive({ options, runners, faults, generator, t0 });

  await faults.settle();
  generator.stop();
  await Promise.all(runners.map((r) => r.close()));
  await metrics?.close();

  const runDurationMs = Math.max(1, Math.min(durationMs, endedMs));
  const targets = runners.map((r) => r.result(runDurationMs));
  faults.recordResilience(targets);
  options.onProgress?.(progressOf(performance.now() - t0, durationMs, runners, faults, generator));
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
    generator: generator.result(),
    ...facts,
  };
}

/**
 * The run itself: one timer sends what is due, sweeps timeouts, fires faults, closes seconds and reports
 * progress, until sending has ended and every request and undo is done. Resolves with the ms it sent for.
 */
async function drive(run: {
  options: LoadOptions;
  runners: TargetRunner[];
  faults: FaultSchedule;
  generator: GeneratorMonitor;
  t0: number;
}): Promise<number> {
  const { options, runners, faults, generator, t0 } = run;
  const durationMs = options.durationMs;
  let lastProgress = t0;
  const completedAtLastProgress = runners.map(() => 0);
  const progressEvery = options.progressIntervalMs ?? 250;
  await new Promise<void>((resolve) => {
    let stopped = false;
    options.signal?.addEventListener(
      'abort',
      () => {
        stopped = true;
      },
      { once: true },
    );
    const tick = () => {
      const now = performance.now();
      const elapsed = now - t0;
      const sending = elapsed < durationMs && !stopped;
      // dispatchDue stops at the end of the run by itself; this also sends the last few after the final tick.
      if (!stopped) for (const runner of runners) runner.dispatchDue(now, generator.lagSink);
      for (const runner of runners) runner.sweepTimeouts(now);
      faults.tick(elapsed, sending, t0);
      generator.tick(elapsed, durationMs);
      if (options.onProgress && now - lastProgress >= progressEvery) {
        const p = progressOf(elapsed, durationMs, runners, faults, generator);
        const dt = (now - lastProgress) / 1000;
        p.targets.forEach((t, i) => {
          t.rate = (t.completed - completedAtLastProgress[i]!) / dt;
          completedAtLastProgress[i] = t.completed;
        });
        lastProgress = now;
        options.onProgress(p);
      }
      if (!sending && runners.every((r) => r.idle) && faults.resumed) {
        resolve();
        return;
      }
      // One timer for everything: requests due before the next tick go out together in that tick.
      setTimeout(tick, sending ? 1 : 5);
    };
    tick();
  });
  return Math.min(performance.now() - t0, durationMs);
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
