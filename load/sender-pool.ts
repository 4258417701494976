/**
 * The main thread's side of the sender threads (load/sender.ts): starts them, gives each its slice of
 * every target's schedule, and merges what they report into one view per target — counters, per-second
 * stats from merged per-second histograms, whole-run histograms — and one generator timeline. Measured
 * completions, when streamed, are handed on in completion order across all threads (fault windows and
 * metrics see them as a single-threaded generator would).
 */
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { Manifest } from '../services/corpus/corpus.ts';
import type { VerifierPlan } from './body-verifier.ts';
import { toSharedMs } from './clock.ts';
import {
  createHistogram,
  decodeHistogram,
  encodeHistogram,
  type Histogram,
  mergeHistograms,
  summarize,
} from './histogram.ts';
import { mergeErrorSamples } from './merge-results.ts';
import {
  COMPLETION_FIELDS,
  type FromSender,
  type GeneratorSecondPart,
  type SecondPart,
  type SenderFinal,
  type SenderInit,
  type SenderReport,
  type TargetCounters,
  type ToSender,
} from './sender-messages.ts';
import { type CompletionObserver, secondStatsOf } from './target-runner.ts';
import {
  emptyOutcomeCounts,
  type GeneratorSecond,
  OUTCOMES,
  type Outcome,
  type OutcomeCounts,
  type SecondStats,
  type SenderPriority,
  type TargetResult,
} from './types.ts';

/** What one sender thread is taken to hold when choosing how many to start (load/README.md, 'How it measures'). */
export const SENDER_THREAD_RATE = 10_000;
/** Send lag (p99 within a second) beyond which the generator, not the target, shapes the numbers. */
export const BEHIND_LAG_US = 10_000;
export const BEHIND_LOOP_US = 20_000;
/** Lead time of the start message: every thread has it before the first request is due. */
const START_MARGIN_MS = 30;
const DEFAULT_REPORT_INTERVAL_MS = 50;

export type SenderThreads = { threads: number; reason: string };

/**
 * How many sender threads a run uses: the number asked for, or enough for the rate at
 * SENDER_THREAD_RATE each, at most one fewer than the cores (the main thread and, often, the targets
 * need one), and at least one.
 */
export function chooseSenderThreads(
  requested: number | undefined,
  totalRate: number,
  cores = availableParallelism(),
): SenderThreads {
  const plural = (n: number) => `${n} sender thread${n === 1 ? '' : 's'}`;
  if (requested !== undefined)
    return { threads: requested, reason: `${plural(requested)}, as asked (--workers)` };
  const forRate = Math.max(1, Math.ceil(totalRate / SENDER_THREAD_RATE));
  const spare = Math.max(1, cores - 1);
  const threads = Math.min(forRate, spare);
  const need = `${Math.round(totalRate).toLocaleString('en-US')} req/s in all at up to ${SENDER_THREAD_RATE.toLocaleString('en-US')} req/s per thread`;
  return {
    threads,
    reason:
      threads < forRate
        ? `${plural(threads)}: ${need} would take ${forRate}, but ${cores} core${cores === 1 ? '' : 's'} leave ${spare} beside the main thread`
        : `${plural(threads)}: ${need} (${cores} core${cores === 1 ? '' : 's'} here)`,
  };
}

export type SenderPoolOptions = {
  targets: { name: string; url: string }[];
  /** Requests per second per target, all threads together. */
  rate: number;
  durationMs: number;
  warmupMs: number;
  timeoutMs: number;
  /** Keep-alive connections per target, all threads together (each thread gets at least one). */
  connections: number;
  seed: number;
  mix: string;
  manifest: Manifest;
  verifier: VerifierPlan;
  threads: number;
  /** Hand every measured completion to `onCompletion` and the targets' observers. */
  streamCompletions: boolean;
  reportIntervalMs?: number;
};

const sumCounts = (into: OutcomeCounts, from: OutcomeCounts) => {
  for (const o of OUTCOMES) into[o] += from[o];
};

/** The main thread's view of one target: the sum of every thread's part. */
export class MergedTarget {
  sent = 0;
  completed = 0;
  bytes = 0;
  outcomes = emptyOutcomeCounts();
  verified = { bytes: 0, sha256: 0 };
  warmup = { sent: 0, completed: 0, outcomes: emptyOutcomeCounts() };
  /** Fault windows watching this target's completions (fed only when completions are streamed). */
  readonly observers: CompletionObserver[] = [];
  /** The seconds every thread has finished, merged. */
  readonly timeline: SecondStats[] = [];
  private readonly counters: (TargetCounters | null)[];
  private readonly open = new Map<
    number,
    { sent: number; outcomes: OutcomeCounts; histogram: Histogram; max: number }
  >();
  readonly final: SenderFinal['targets'][number][] = [];

  constructor(
    readonly name: string,
    readonly url: string,
    threads: number,
    private readonly seconds: number,
  ) {
    this.counters = Array.from({ length: threads }, () => null);
  }

  get inFlight(): number {
    return this.sent - this.completed;
  }

  /** Corrected p99 of the last second all threads have finished (the live view). */
  lastP99(): number {
    for (let i = this.timeline.length - 1; i >= 0; i--)
      if (this.timeline[i]!.sent > 0) return this.timeline[i]!.p99;
    return 0;
  }

  update(thread: number, counters: TargetCounters): void {
    this.counters[thread] = counters;
    const all = this.counters.filter((c): c is TargetCounters => c !== null);
    const sum = (pick: (c: TargetCounters) => number) => all.reduce((n, c) => n + pick(c), 0);
    this.sent = sum((c) => c.sent);
    this.completed = sum((c) => c.completed);
    this.bytes = sum((c) => c.bytes);
    this.verified = { bytes: sum((c) => c.verified.bytes), sha256: sum((c) => c.verified.sha256) };
    this.outcomes = emptyOutcomeCounts();
    const warmup = {
      sent: sum((c) => c.warmup.sent),
      completed: sum((c) => c.warmup.completed),
      outcomes: emptyOutcomeCounts(),
    };
    for (const c of all) {
      sumCounts(this.outcomes, c.outcomes);
      sumCounts(warmup.outcomes, c.warmup.outcomes);
    }
    this.warmup = warmup;
  }

  addSecond(part: SecondPart): void {
    let second = this.open.get(part.t);
    if (!second) {
      second = { sent: 0, outcomes: emptyOutcomeCounts(), histogram: createHistogram(2), max: 0 };
      this.open.set(part.t, second);
    }
    second.sent += part.sent;
    sumCounts(second.outcomes, part.outcomes);
    second.max = Math.max(second.max, part.max);
    const decoded = decodeHistogram(part.histogram);
    second.histogram.add(decoded);
    decoded.destroy();
  }

  /** Merges the seconds every thread has finished (all of them, `all`, once the run is over). */
  advance(all = false): void {
    const ready = all
      ? this.seconds
      : Math.min(this.seconds, ...this.counters.map((c) => c?.finalizedUpTo ?? 0));
    const last = all ? Math.max(ready, ...[...this.open.keys()].map((t) => t + 1)) : ready;
    while (this.timeline.length < last) {
      const t = this.timeline.length;
      const second = this.open.get(t);
      if (second) {
        const stats = secondStatsOf(t, second.sent, second.outcomes, second.histogram);
        this.timeline.push({ ...stats, max: second.max });
        second.histogram.destroy();
        this.open.delete(t);
      } else {
        this.timeline.push({ t, sent: 0, outcomes: emptyOutcomeCounts(), p50: 0, p90: 0, p99: 0, max: 0 });
      }
    }
  }

  result(durationMs: number, verification: string): TargetResult {
    this.advance(true);
    const merged = (key: 'latency' | 'serviceTime' | 'sendLag') => {
      const parts = this.final.map((f) => f[key]);
      const histogram = mergeHistograms(parts.map((p) => p.encoded));
      const summary = { ...summarize(histogram), max: Math.max(0, ...parts.map((p) => p.max)) };
      const encoded = encodeHistogram(histogram);
      histogram.destroy();
      return { summary, encoded };
    };
    const latency = merged('latency');
    const serviceTime = merged('serviceTime');
    const sendLag = merged('sendLag');
    const completed = this.completed;
    return {
      name: this.name,
      url: this.url,
      sent: this.sent,
      completed,
      outcomes: { ...this.outcomes },
      availability: completed === 0 ? 1 : this.outcomes.ok / completed,
      throughput: this.outcomes.ok / (durationMs / 1000),
      bytes: this.bytes,
      latency: latency.summary,
      serviceTime: serviceTime.summary,
      sendLag: sendLag.summary,
      histograms: { latency: latency.encoded, serviceTime: serviceTime.encoded, sendLag: sendLag.encoded },
      timeline: this.timeline,
      errorSamples: mergeErrorSamples(this.final.map((f) => f.errorSamples)),
      verification: { method: verification, ...this.verified },
    };
  }
}

type ThreadState = {
  worker: Worker;
  nowMs: number;
  finished: boolean;
  batches: Float64Array[];
  /** Read position in batches[0]. */
  at: number;
};

/**
 * Sender threads between runs: starting one costs a few hundred ms (the TypeScript loader, undici), and
 * the benchmark runs hundreds of loads. Idle ones are unref'd, so they never keep the process alive.
 */
const idleThreads: Worker[] = [];

/**
 * The sender thread's young generation. A request's objects die within a millisecond or two, so a small
 * nursery, collected often and briefly, promotes little to the old space and keeps its mark-compacts
 * rare. Measured at 10,000 req/s on one core against nginx (load/measure-ceiling.ts, 5 interleaved pairs
 * of 8 s runs, quiet machine): seconds behind schedule 2 of 40 with 8 MiB against 8 of 40 with V8's
 * default; 32 MiB and more were worse (load/README.md, 'The ceiling').
 */
const SENDER_YOUNG_GENERATION_MB = 8;

function takeThread(): Worker {
  const idle = idleThreads.pop();
  if (idle) {
    idle.ref();
    return idle;
  }
  const worker = new Worker(new URL('./sender-thread.mjs', import.meta.url), {
    resourceLimits: { maxYoungGenerationSizeMb: SENDER_YOUNG_GENERATION_MB },
  });
  // While idle, a thread that fails or ends is simply not reused.
  const forget = () => {
    const i = idleThreads.indexOf(worker);
    if (i >= 0) idleThreads.splice(i, 1);
  };
  worker.on('error', forget).on('exit', forget);
  return worker;
}

function releaseThread(worker: Worker): void {
  worker.unref();
  idleThreads.push(worker);
}

/** Sender threads for one run, and what they have reported so far, merged. */
export class SenderPool {
  readonly targets: MergedTarget[];
  readonly threads: number;
  /** The measured window's start on this thread's clock (performance.now()); set by begin(). */
  t0 = Number.NaN;
  /** Seconds of the generator's health every thread has closed, merged. */
  readonly generator: GeneratorSecond[] = [];
  /** How each sender thread is scheduled, as it reported when ready. */
  readonly priority: (SenderPriority | null)[];
  /** Every measured completion in completion order, when streamed. */
  onCompletion:
    | ((
        target: MergedTarget,
        outcome: Outcome,
        intendedMs: number,
        completedMs: number,
        latencyUs: number,
      ) => void)
    | null = null;
  private readonly state: ThreadState[];
  private readonly generatorParts = new Map<number, GeneratorSecondPart[]>();
  private failure: Error | null = null;
  private readonly failed: Promise<never>;
  private readonly ready: Promise<void>[];
  /** Removes this pool's listeners from each thread (before it goes back to the idle ones). */
  private readonly detach: (() => void)[] = [];
  private fail: (err: Error) => void = () => {};
  private readonly finals: Promise<SenderFinal>[];

  private constructor(
    private readonly options: SenderPoolOptions,
    workers: Worker[],
  ) {
    this.threads = workers.length;
    const seconds = Math.ceil(options.durationMs / 1000);
    this.targets = options.targets.map(
      (t) => new MergedTarget(t.name, new URL(t.url).origin, this.threads, seconds),
    );
    this.state = workers.map((worker) => ({
      worker,
      nowMs: Number.NEGATIVE_INFINITY,
      finished: false,
      batches: [],
      at: 0,
    }));
    this.failed = new Promise<never>((_, reject) => {
      this.fail = (err) => {
        if (this.failure) return;
        this.failure = err;
        reject(err);
      };
    });
    this.failed.catch(() => undefined);
    const finals: ((final: SenderFinal) => void)[] = [];
    this.finals = workers.map((_, k) => new Promise<SenderFinal>((resolve) => (finals[k] = resolve)));
    const ready: (() => void)[] = [];
    this.ready = workers.map((_, k) => new Promise<void>((resolve) => (ready[k] = resolve)));
    this.priority = workers.map(() => null);
    workers.forEach((worker, k) => {
      const onMessage = (message: FromSender) => {
        if (message.type === 'report') this.onReport(message);
        else if (message.type === 'ready') {
          this.priority[k] = message.priority;
          ready[k]!();
        } else if (message.type === 'final') finals[k]!(message);
        else if (message.type === 'failed') this.fail(new Error(`sender thread ${k}: ${message.message}`));
      };
      const onError = (err: Error) =>
        this.fail(new Error(`sender thread ${k} failed: ${err.stack ?? err.message}`));
      const onExit = (code: number) => this.fail(new Error(`sender thread ${k} exited with code ${code}`));
      worker.on('message', onMessage).on('error', onError).on('exit', onExit);
      this.detach.push(() => worker.off('message', onMessage).off('error', onError).off('exit', onExit));
    });
  }

  /** Takes (or starts) the threads and waits until each has built its pools and verifier. */
  static async start(options: SenderPoolOptions): Promise<SenderPool> {
    const { threads } = options;
    const workers = Array.from({ length: threads }, takeThread);
    const pool = new SenderPool(options, workers);
    workers.forEach((worker, thread) => {
      const init: SenderInit = {
        thread,
        threads,
        // The target's connections, spread over the threads (each needs one at least).
        targets: options.targets.map((t) => ({
          name: t.name,
          url: t.url,
          connections: Math.max(
            1,
            Math.floor(options.connections / threads) + (thread < options.connections % threads ? 1 : 0),
          ),
        })),
        rate: options.rate,
        durationMs: options.durationMs,
        warmupMs: options.warmupMs,
        timeoutMs: options.timeoutMs,
        seed: options.seed,
        mix: options.mix,
        manifest: options.manifest,
        verifier: options.verifier,
        streamCompletions: options.streamCompletions,
        reportIntervalMs: options.reportIntervalMs ?? DEFAULT_REPORT_INTERVAL_MS,
      };
      worker.postMessage({ type: 'run', init } satisfies ToSender);
    });
    try {
      await Promise.race([Promise.all(pool.ready), pool.failed]);
    } catch (err) {
      await pool.end(false);
      throw err;
    }
    return pool;
  }

  /** Starts sending: the warm-up now, the measured window `warmupMs` later. Returns t0 (this thread's clock). */
  begin(): number {
    this.t0 = performance.now() + START_MARGIN_MS + this.options.warmupMs;
    this.post({ type: 'start', t0: toSharedMs(this.t0) });
    return this.t0;
  }

  /** Sends nothing more; what is in flight still finishes. */
  stop(): void {
    this.post({ type: 'stop' });
  }

  /** Every thread has sent all it will and has nothing in flight. */
  get finished(): boolean {
    return this.state.every((s) => s.finished);
  }

  /** The error of a thread that failed, or null. */
  get error(): Error | null {
    return this.failure;
  }

  /** Ends the run and gathers every thread's whole-run histograms and samples. */
  async close(): Promise<void> {
    this.post({ type: 'close' });
    let clean = false;
    try {
      const finals = await Promise.race([Promise.all(this.finals), this.failed]);
      for (const final of finals) {
        final.targets.forEach((t, i) => {
          this.targets[i]!.final.push(t);
        });
      }
      clean = true;
    } finally {
      await this.end(clean);
    }
    this.mergeGenerator(true);
    for (const target of this.targets) target.advance(true);
  }

  /** Lets go of the threads: back to the idle ones after a clean run, ended otherwise. */
  private async end(clean: boolean): Promise<void> {
    for (const detach of this.detach) detach();
    const workers = this.state.map((s) => s.worker);
    if (clean) for (const worker of workers) releaseThread(worker);
    else await Promise.all(workers.map((w) => w.terminate()));
  }

  /** Whole-run figures of every target. */
  results(durationMs: number): TargetResult[] {
    return this.targets.map((t) => t.result(durationMs, this.options.verifier.describe));
  }

  private post(message: ToSender): void {
    for (const s of this.state) s.worker.postMessage(message);
  }

  private onReport(report: SenderReport): void {
    const state = this.state[report.thread]!;
    report.targets.forEach((counters, i) => {
      this.targets[i]!.update(report.thread, counters);
    });
    for (const part of report.seconds) this.targets[part.target]!.addSecond(part);
    for (const target of this.targets) target.advance();
    for (const part of report.generator) {
      const parts = this.generatorParts.get(part.t) ?? [];
      parts.push(part);
      this.generatorParts.set(part.t, parts);
    }
    this.mergeGenerator(false);
    if (report.completions) state.batches.push(report.completions);
    state.nowMs = report.nowMs;
    state.finished = report.finished;
    this.release();
  }

  /** Merges the generator seconds every thread has closed (`all`: whatever there is, at the end). */
  private mergeGenerator(all: boolean): void {
    for (;;) {
      const t = this.generator.length;
      const parts = this.generatorParts.get(t);
      if (!parts || (!all && parts.length < this.threads)) {
        if (all && !parts && [...this.generatorParts.keys()].some((k) => k > t)) {
          this.generator.push({ t, sendLagP99: 0, sendLagMax: 0, eventLoopP99: 0, behind: false });
          continue;
        }
        return;
      }
      const lag = mergeHistograms(parts.map((p) => p.sendLag));
      const { p99 } = summarize(lag);
      const max = Math.max(...parts.map((p) => p.sendLagMax));
      lag.destroy();
      const eventLoopP99 = Math.max(...parts.map((p) => p.eventLoopP99));
      this.generator.push({
        t,
        sendLagP99: p99,
        sendLagMax: max,
        eventLoopP99,
        behind: p99 > BEHIND_LAG_US || eventLoopP99 > BEHIND_LOOP_US,
      });
      this.generatorParts.delete(t);
    }
  }

  /**
   * Hands on the completions no thread can still precede: each thread's come in its completion order,
   * and a thread's report says no later one of its completions is earlier than its clock then.
   */
  private release(): void {
    const watermark = Math.min(...this.state.map((s) => (s.finished ? Number.POSITIVE_INFINITY : s.nowMs)));
    for (;;) {
      let next: ThreadState | null = null;
      let nextAt = watermark;
      for (const s of this.state) {
        const batch = s.batches[0];
        if (!batch) continue;
        const completedMs = batch[s.at + 2]!;
        if (completedMs <= nextAt) {
          next = s;
          nextAt = completedMs;
        }
      }
      if (!next) return;
      const batch = next.batches[0]!;
      const i = next.at;
      next.at += COMPLETION_FIELDS;
      if (next.at >= batch.length) {
        next.batches.shift();
        next.at = 0;
      }
      const code = batch[i]!;
      const target = this.targets[Math.floor(code / OUTCOMES.length)]!;
      const outcome = OUTCOMES[code % OUTCOMES.length]!;
      const intendedMs = batch[i + 1]!;
      const completedMs = batch[i + 2]!;
      for (const observer of target.observers) {
        if (intendedMs >= observer.startMs && intendedMs < observer.endMs)
          observer.observe(intendedMs, completedMs, outcome === 'ok');
      }
      this.onCompletion?.(target, outcome, intendedMs, completedMs, batch[i + 3]!);
    }
  }
}
