/**
 * The console's steady load: the load generator's own sender threads (its request mix, its verifier),
 * its fault schedule with faults fired on a click instead of from a schedule, its fault drivers and its
 * recovery measures. Seconds are counted by completion time, so the page shows what a client saw in the
 * second that just ended. The lab's own work runs on this process's main thread; the sending does not.
 */
import { performance } from 'node:perf_hooks';
import { UsageError } from '../../cli/args.ts';
import { planVerifier } from '../../load/body-verifier.ts';
import { type DriverContext, defaultFaultDrivers, type FaultDriver } from '../../load/fault-drivers.ts';
import { FaultSchedule } from '../../load/fault-schedule.ts';
import { createHistogram, type Histogram, recordMicros } from '../../load/histogram.ts';
import { buildRequestMix, DEFAULT_MIX, poisonFile } from '../../load/request-mix.ts';
import { LOAD_DEFAULTS, type LoadTarget } from '../../load/run-load.ts';
import { chooseSenderThreads, SenderPool } from '../../load/sender-pool.ts';
import { secondStatsOf } from '../../load/target-runner.ts';
import {
  emptyOutcomeCounts,
  FAULT_KINDS,
  type FaultKind,
  type FaultRecord,
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

type Run = {
  rate: number;
  mix: string;
  startedAt: number;
  pool: SenderPool;
  current: Map<string, { histogram: Histogram; outcomes: Record<Outcome, number> }>;
  /** Every completed second of the run per target (recovery reads it; the page gets the tail). */
  timeline: Map<string, SecondStats[]>;
  timer: NodeJS.Timeout | null;
  second: number;
};

const RUN_CAP_MS = 24 * 3600_000;
/** A second is closed this long after its end even without a completion in the next one (reports come every 50 ms). */
const SECOND_GRACE_MS = 250;

export class LiveLoad {
  private run: Run | null = null;
  private readonly history = new Map<string, LiveSecond[]>();
  private schedule: FaultSchedule | null = null;
  private scheduling: Promise<FaultSchedule> | null = null;
  private drivers: FaultDriver[] | null = null;
  /** Wall-clock time of each fault, in the order of the schedule's records (every one comes from inject). */
  private readonly firedAt: number[] = [];
  /** How far takeSendLag() has read the run's generator seconds, and the requests sent by then. */
  private sendLagMark = { seconds: 0, sent: 0 };

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

  /** Every fault fired from the page, newest last. */
  get faults(): LiveFault[] {
    const schedule = this.schedule;
    if (!schedule) return [];
    return schedule.records.map((record, i) => ({
      id: i + 1,
      target: record.target,
      kind: record.kind,
      ...(record.forMs ? { forMs: record.forMs } : {}),
      ...(record.times ? { times: record.times } : {}),
      at: this.firedAt[i]!,
      ok: record.ok,
      message: record.message,
      recovery: record.resilience,
      open: schedule.isOpen(record),
    }));
  }

  /** The console's one fault schedule, with the load generator's drivers (made on first use). */
  private faultSchedule(): Promise<FaultSchedule> {
    this.scheduling ??= readManifest(this.corpusDir).then((manifest) => {
      this.drivers = defaultFaultDrivers({
        targets: new Map(this.targets.map((t) => [t.name, t.url])),
        poisonUrlPath: poisonFile(manifest)?.urlPath ?? null,
        ...this.reach,
      });
      this.schedule = new FaultSchedule({
        drivers: this.drivers,
        faultWindowMs: LOAD_DEFAULTS.faultWindowMs,
      });
      return this.schedule;
    });
    // A corpus that could not be read now may be there on the next click.
    this.scheduling.catch(() => {
      this.scheduling = null;
    });
    return this.scheduling;
  }

  async start(rate: number, mixText = DEFAULT_MIX): Promise<void> {
    if (this.run) throw new UsageError('the load is already running: stop it first');
    if (!Number.isFinite(rate) || rate <= 0 || rate > MAX_RATE) {
      throw new UsageError(`rate must be a number of requests per second in 1…${MAX_RATE}`);
    }
    const manifest = await readManifest(this.corpusDir);
    buildRequestMix(manifest, mixText);
    const schedule = await this.faultSchedule();
    const pool = await SenderPool.start({
      targets: this.targets,
      rate,
      durationMs: RUN_CAP_MS,
      warmupMs: LOAD_DEFAULTS.warmupMs,
      timeoutMs: LOAD_DEFAULTS.timeoutMs,
      connections: LOAD_DEFAULTS.connections,
      seed: LOAD_DEFAULTS.seed,
      mix: mixText,
      manifest,
      // Every body against the manifest: the console must not hold the corpus in memory for hours.
      verifier: await planVerifier(this.corpusDir, manifest.files, 'sha256'),
      threads: chooseSenderThreads(undefined, rate * this.targets.length).threads,
      streamCompletions: true,
    });
    const t0 = pool.begin();
    const run: Run = {
      rate,
      mix: mixText,
      startedAt: Date.now() + (t0 - performance.now()),
      pool,
      current: new Map(
        this.targets.map((t) => [t.name, { histogram: createHistogram(2), outcomes: emptyOutcomeCounts() }]),
      ),
      timeline: new Map(this.targets.map((t) => [t.name, []])),
      timer: null,
      second: 0,
    };
    pool.onCompletion = (target, outcome, _intendedMs, completedMs, latencyUs) => {
      while (completedMs >= (run.second + 1) * 1000) this.closeSecond(run);
      const bucket = run.current.get(target.name)!;
      bucket.outcomes[outcome]++;
      recordMicros(bucket.histogram, latencyUs);
    };
    for (const h of this.history.values()) h.length = 0;
    this.sendLagMark = { seconds: 0, sent: 0 };
    this.run = run;
    schedule.watch({ t0, targets: new Map(pool.targets.map((t) => [t.name, t])), endMs: RUN_CAP_MS });
    const tick = () => {
      if (this.run !== run) return;
      // Completions close their seconds as they come; this closes those nothing completed after.
      while (performance.now() - t0 >= (run.second + 1) * 1000 + SECOND_GRACE_MS) this.closeSecond(run);
      run.timer = setTimeout(tick, 100);
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
    this.schedule?.closeWindows((name) => run.timeline.get(name) ?? [], t * 1000);
  }

  async stop(): Promise<void> {
    const run = this.run;
    if (!run) throw new UsageError('the load is not running');
    this.run = null;
    if (run.timer) clearTimeout(run.timer);
    this.schedule?.closeWindows((name) => run.timeline.get(name) ?? []);
    this.schedule?.watch(null);
    run.pool.stop();
    await run.pool.close();
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
    const schedule = await this.faultSchedule();
    this.firedAt.push(Date.now());
    const record: FaultRecord = await schedule.fire({
      target,
      kind: kind as FaultKind,
      ...(forMs ? { forMs } : {}),
      ...(times ? { times } : {}),
    });
    return this.faults[schedule.records.indexOf(record)]!;
  }

  /**
   * Whether the generator kept its schedule since the last call: of the seconds every sender thread has
   * closed since then, the worst second's send-lag p99 (`p99`, µs), the largest lag (`max`) and the
   * requests sent (`count`). Zeros when no load runs.
   */
  takeSendLag(): Pick<LatencySummary, 'p99' | 'max' | 'count'> {
    const run = this.run;
    if (!run) return { p99: 0, max: 0, count: 0 };
    const seconds = run.pool.generator.slice(this.sendLagMark.seconds);
    const sent = run.pool.targets.reduce((sum, t) => sum + t.sent, 0);
    const taken = {
      p99: Math.max(0, ...seconds.map((s) => s.sendLagP99)),
      max: Math.max(0, ...seconds.map((s) => s.sendLagMax)),
      count: sent - this.sendLagMark.sent,
    };
    this.sendLagMark = { seconds: run.pool.generator.length, sent };
    return taken;
  }

  /** Totals of the running load per target, for the comparison table. */
  totals(target: string): { completed: number; ok: number; failed: number } | null {
    const merged = this.run?.pool.targets.find((t) => t.name === target);
    if (!merged) return null;
    return {
      completed: merged.completed,
      ok: merged.outcomes.ok,
      failed: merged.completed - merged.outcomes.ok,
    };
  }

  async close(): Promise<void> {
    if (this.run) await this.stop();
    // Nothing stays stopped or slowed once the console is gone.
    this.schedule?.resumeAll();
    await this.schedule?.settle();
    for (const d of this.drivers ?? []) await d.close?.().catch(() => undefined);
  }
}
