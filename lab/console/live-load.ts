/**
 * The console's steady load: the load generator's own client (`TargetRunner`, its request mix, its fault
 * drivers and its recovery measures), started and stopped from the page, with faults fired on a click
 * instead of from a schedule. Seconds are counted by completion time, so the page shows what a client
 * saw in the second that just ended.
 */
import { performance } from 'node:perf_hooks';
import { UsageError } from '../../cli/args.ts';
import { type DriverContext, defaultFaultDrivers, type FaultDriver } from '../../load/fault-drivers.ts';
import { createHistogram, type Histogram, recordMicros, summarize } from '../../load/histogram.ts';
import { buildRequestMix, DEFAULT_MIX, poisonFile } from '../../load/request-mix.ts';
import { computeP99Recovery, FaultTracker } from '../../load/resilience.ts';
import { affectedTargets, LOAD_DEFAULTS, type LoadTarget } from '../../load/run-load.ts';
import { secondStatsOf, TargetRunner } from '../../load/target-runner.ts';
import {
  emptyOutcomeCounts,
  FAULT_KINDS,
  type FaultKind,
  type LatencySummary,
  type Outcome,
  type Resilience,
  type SecondStats,
} from '../../load/types.ts';
import { readManifest } from '../../services/corpus/corpus.ts';

/** Seconds of history kept for the charts. */
export const HISTORY_SECONDS = 120;
/** The console's limits: it must not be what makes the generator fall behind. */
export const MAX_RATE = 2000;

export type LiveSecond = SecondStats & { target: string; at: number };

export type LiveFault = {
  id: number;
  target: string;
  kind: FaultKind;
  forMs?: number;
  /** crashloop: how many starts fail. */
  times?: number;
  /** Unix ms. */
  at: number;
  ok: boolean;
  message: string;
  /** Per affected load target, once its window has closed; empty while it is open or without load. */
  recovery: Resilience[];
  open: boolean;
};

type Tracked = { fault: LiveFault; tracker: FaultTracker; runner: TargetRunner };

type Run = {
  rate: number;
  mix: string;
  startedAt: number;
  t0: number;
  runners: TargetRunner[];
  current: Map<string, { histogram: Histogram; outcomes: Record<Outcome, number> }>;
  /** Every completed second of the run per target (recovery reads it; the page gets the tail). */
  timeline: Map<string, SecondStats[]>;
  timer: NodeJS.Timeout | null;
  second: number;
};

const RUN_CAP_MS = 24 * 3600_000;

export class LiveLoad {
  private run: Run | null = null;
  private readonly history = new Map<string, LiveSecond[]>();
  readonly faults: LiveFault[] = [];
  private readonly tracked: Tracked[] = [];
  private drivers: FaultDriver[] | null = null;
  private nextFaultId = 1;
  /** How late requests left (µs), every target, since the last takeSendLag(): the generator's health. */
  private sendLag = createHistogram(2);

  constructor(
    private readonly targets: LoadTarget[],
    private readonly corpusDir: string,
    /** How the fault drivers reach the supervisors and the Docker engine. */
    private readonly reach: Omit<DriverContext, 'targets' | 'poisonUrlPath'> = {},
  ) {
    for (const t of targets) this.history.set(t.name, []);
  }

  get running(): { rate: number; mix: string; startedAt: number } | null {
    return this.run ? { rate: this.run.rate, mix: this.run.mix, startedAt: this.run.startedAt } : null;
  }

  seconds(target: string): LiveSecond[] {
    return this.history.get(target) ?? [];
  }

  private async faultDrivers(): Promise<FaultDriver[]> {
    if (!this.drivers) {
      const manifest = await readManifest(this.corpusDir);
      this.drivers = defaultFaultDrivers({
        targets: new Map(this.targets.map((t) => [t.name, t.url])),
        poisonUrlPath: poisonFile(manifest)?.urlPath ?? null,
        ...this.reach,
      });
    }
    return this.drivers;
  }

  async start(rate: number, mixText = DEFAULT_MIX): Promise<void> {
    if (this.run) throw new UsageError('the load is already running: stop it first');
    if (!Number.isFinite(rate) || rate <= 0 || rate > MAX_RATE) {
      throw new UsageError(`rate must be a number of requests per second in 1…${MAX_RATE}`);
    }
    const manifest = await readManifest(this.corpusDir);
    const mix = buildRequestMix(manifest, mixText);
    const runners = this.targets.map(
      (t) =>
        new TargetRunner({
          name: t.name,
          url: t.url,
          rate,
          connections: LOAD_DEFAULTS.connections,
          timeoutMs: LOAD_DEFAULTS.timeoutMs,
          picker: mix.picker(LOAD_DEFAULTS.seed),
          onComplete: (outcome, latencySeconds) => {
            const bucket = run.current.get(t.name)!;
            bucket.outcomes[outcome]++;
            recordMicros(bucket.histogram, latencySeconds * 1e6);
          },
        }),
    );
    const t0 = performance.now();
    const run: Run = {
      rate,
      mix: mixText,
      startedAt: Date.now(),
      t0,
      runners,
      current: new Map(
        this.targets.map((t) => [t.name, { histogram: createHistogram(2), outcomes: emptyOutcomeCounts() }]),
      ),
      timeline: new Map(this.targets.map((t) => [t.name, []])),
      timer: null,
      second: 0,
    };
    for (const h of this.history.values()) h.length = 0;
    this.run = run;
    for (const runner of runners) runner.start(t0, RUN_CAP_MS);
    const lag = (lagUs: number) => recordMicros(this.sendLag, lagUs);
    const tick = () => {
      if (this.run !== run) return;
      const now = performance.now();
      for (const runner of runners) {
        runner.dispatchDue(now, lag);
        runner.sweepTimeouts(now);
      }
      if (now - t0 >= (run.second + 1) * 1000) this.closeSecond(run);
      run.timer = setTimeout(tick, 1);
    };
    tick();
  }

  /** Freezes the second that just ended for every target, and closes fault windows that are over. */
  private closeSecond(run: Run): void {
    const t = run.second++;
    for (const [name, bucket] of run.current) {
      const completed = Object.values(bucket.outcomes).reduce((a, b) => a + b, 0);
      const stats = secondStatsOf(t, completed, bucket.outcomes, bucket.histogram);
      bucket.histogram.reset();
      bucket.outcomes = emptyOutcomeCounts();
      run.timeline.get(name)!.push(stats);
      const history = this.history.get(name)!;
      history.push({ ...stats, target: name, at: run.startedAt + (t + 1) * 1000 });
      if (history.length > HISTORY_SECONDS) history.shift();
    }
    this.closeWindows(run, (t + 1) * 1000);
  }

  private closeWindows(run: Run, nowMs: number, all = false): void {
    for (let i = this.tracked.length - 1; i >= 0; i--) {
      const { fault, tracker, runner } = this.tracked[i]!;
      if (!all && tracker.endMs > nowMs - 1000) continue;
      this.tracked.splice(i, 1);
      runner.observers.splice(runner.observers.indexOf(tracker), 1);
      const timeline = run.timeline.get(tracker.target) ?? [];
      fault.recovery.push(tracker.result(computeP99Recovery(timeline, tracker.startMs)));
      fault.open = this.tracked.some((x) => x.fault === fault);
    }
  }

  async stop(): Promise<void> {
    const run = this.run;
    if (!run) throw new UsageError('the load is not running');
    this.run = null;
    if (run.timer) clearTimeout(run.timer);
    this.closeWindows(run, performance.now() - run.t0, true);
    await Promise.all(run.runners.map((r) => r.close()));
    for (const bucket of run.current.values()) bucket.histogram.destroy();
  }

  /** Fires one fault through the load generator's drivers; measured against the load when it runs. */
  async inject(target: string, kind: string, forMs?: number, times?: number): Promise<LiveFault> {
    if (!(FAULT_KINDS as readonly string[]).includes(kind)) {
      throw new UsageError(`unknown fault kind '${kind}': use one of ${FAULT_KINDS.join(', ')}`);
    }
    if (kind === 'hang' && !(forMs && forMs > 0 && forMs <= 60_000)) {
      throw new UsageError('a hang needs a duration of 1…60 s');
    }
    const faultKind = kind as FaultKind;
    const fault: LiveFault = {
      id: this.nextFaultId++,
      target,
      kind: faultKind,
      ...(forMs ? { forMs } : {}),
      ...(times ? { times } : {}),
      at: Date.now(),
      ok: false,
      message: '',
      recovery: [],
      open: false,
    };
    this.faults.push(fault);
    const run = this.run;
    if (run) this.track(run, fault);
    const drivers = await this.faultDrivers();
    const driver = drivers.find((d) => d.supports(target, faultKind));
    if (!driver) {
      fault.message = `no fault driver supports ${kind} on '${target}'`;
      return fault;
    }
    try {
      const injection = await driver.inject(target, faultKind, {
        ...(forMs ? { forMs } : {}),
        ...(times ? { times } : {}),
      });
      fault.ok = true;
      fault.message = injection.message;
      if (injection.resume) {
        const resume = injection.resume;
        setTimeout(() => {
          resume().then(
            (message) => {
              fault.message += `; ${message}`;
            },
            (err: Error) => {
              fault.message += `; resume FAILED: ${err.message}`;
              fault.ok = false;
            },
          );
        }, forMs ?? 0).unref();
      }
    } catch (err) {
      fault.message = (err as Error).message;
    }
    return fault;
  }

  /** Opens a recovery window on each load target the fault can hit; it closes the previous one there. */
  private track(run: Run, fault: LiveFault): void {
    const firedAtMs = performance.now() - run.t0;
    const names = this.targets.map((t) => t.name);
    for (const name of affectedTargets({ atMs: 0, target: fault.target, kind: fault.kind }, names)) {
      for (const prev of this.tracked) {
        if (prev.tracker.target === name && prev.tracker.endMs > firedAtMs) prev.tracker.endMs = firedAtMs;
      }
      const runner = run.runners.find((r) => r.name === name)!;
      const tracker = new FaultTracker(name, firedAtMs, firedAtMs + LOAD_DEFAULTS.faultWindowMs);
      runner.observers.push(tracker);
      this.tracked.push({ fault, tracker, runner });
      fault.open = true;
    }
  }

  /** The send lag since the last call (whether the generator keeps its schedule), and a fresh start. */
  takeSendLag(): LatencySummary {
    const summary = summarize(this.sendLag);
    this.sendLag.reset();
    return summary;
  }

  /** Totals of the running load per target, for the comparison table. */
  totals(target: string): { completed: number; ok: number; failed: number } | null {
    const runner = this.run?.runners.find((r) => r.name === target);
    if (!runner) return null;
    return {
      completed: runner.completed,
      ok: runner.outcomes.ok,
      failed: runner.completed - runner.outcomes.ok,
    };
  }

  async close(): Promise<void> {
    if (this.run) await this.stop();
    for (const d of this.drivers ?? []) await d.close?.().catch(() => undefined);
  }
}
