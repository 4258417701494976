import { performance } from 'node:perf_hooks';
import { type Dispatcher, Pool } from 'undici';
import { type BodyCheck, type BodyVerifier, sha256Verifier } from './body-verifier.ts';
import { createHistogram, encodeHistogram, type Histogram, recordMicros, summarize } from './histogram.ts';
import type { RequestFile, RequestPicker } from './request-mix.ts';
import {
  type ErrorSample,
  emptyOutcomeCounts,
  type Outcome,
  type OutcomeCounts,
  type SecondStats,
  type TargetResult,
} from './types.ts';

/** Watches completions of one target for one fault's window (client-side resilience). */
export type CompletionObserver = {
  startMs: number;
  endMs: number;
  observe(intendedMs: number, completedMs: number, ok: boolean): void;
};

type Second = {
  sent: number;
  pending: number;
  outcomes: OutcomeCounts;
  histogram: Histogram;
  stats?: SecondStats;
};

const MAX_ERROR_SAMPLES = 20;

/** Maps a transport error to an outcome class. */
export function classifyError(err: unknown): Outcome {
  const e = err as { code?: string; name?: string; cause?: { code?: string } };
  const code = e?.code ?? e?.cause?.code;
  if (code === 'ECONNREFUSED') return 'refused';
  if (
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT' ||
    code === 'UND_ERR_CONNECT_TIMEOUT'
  ) {
    return 'timeout';
  }
  if (code === 'ETIMEDOUT') return 'timeout';
  return 'reset';
}

function errorMessage(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return [e?.code, e?.message].filter(Boolean).join(': ') || String(err);
}

/**
 * One request in flight. It is its own undici dispatch handler (legacy handler API: no stream, no
 * promise per request), which keeps the per-request cost low enough for thousands of requests a second.
 */
class InFlight {
  sentMs = -1;
  done = false;
  status = 0;
  bytes = 0;
  check: BodyCheck | null = null;
  abort: ((err?: Error) => void) | null = null;
  /** Handed to undici and not yet given back (completed or errored there). */
  active = false;

  constructor(
    readonly runner: TargetRunner,
    readonly file: RequestFile,
    readonly intendedMs: number,
    readonly dispatchedMs: number,
    readonly second: number,
  ) {}

  onConnect(abort: (err?: Error) => void): void {
    if (this.done) {
      abort();
      return;
    }
    this.abort = abort;
    this.sentMs = performance.now();
  }

  onHeaders(status: number): boolean {
    this.status = status;
    if (status === 200) this.check = this.runner.verifier.begin(this.file);
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.bytes += chunk.length;
    this.check?.update(chunk);
    return true;
  }

  onComplete(): void {
    this.runner.release(this);
    if (this.done) return;
    const status = this.status;
    if (status === 200) {
      const check = this.check!;
      const mismatch = check.finish();
      this.runner.verified[check.mode]++;
      if (mismatch !== null) this.runner.finish(this, 'data_loss', mismatch);
      else this.runner.finish(this, 'ok');
    } else if (status >= 500) this.runner.finish(this, '5xx', `HTTP ${status}`);
    else if (status >= 400) this.runner.finish(this, '4xx', `HTTP ${status}`);
    // We asked for the whole file: any other status means the bytes did not arrive.
    else this.runner.finish(this, 'data_loss', `HTTP ${status} instead of 200`);
  }

  onError(err: Error): void {
    this.runner.release(this);
    if (this.done) return;
    this.runner.finish(this, classifyError(err), errorMessage(err));
  }
}

export type TargetRunnerOptions = {
  name: string;
  url: string;
  rate: number;
  connections: number;
  timeoutMs: number;
  picker: RequestPicker;
  /** Checks every 200 body (data loss when it is not the file); default sha256 against the manifest. */
  verifier?: BodyVerifier;
  /** Called for every completed request: corrected latency in seconds. */
  onComplete?: (outcome: Outcome, latencySeconds: number) => void;
};

/** Drives one target: its own schedule, its own connection pool, its own numbers. */
/** One second of a target's timeline, from that second's histogram (microseconds) and outcome counts. */
export function secondStatsOf(
  t: number,
  sent: number,
  outcomes: SecondStats['outcomes'],
  h: Histogram,
): SecondStats {
  const has = h.totalCount > 0;
  return {
    t,
    sent,
    outcomes,
    p50: has ? h.getValueAtPercentile(50) : 0,
    p90: has ? h.getValueAtPercentile(90) : 0,
    p99: has ? h.getValueAtPercentile(99) : 0,
    max: has ? h.maxValue : 0,
  };
}

export class TargetRunner {
  readonly name: string;
  readonly url: string;
  readonly verifier: BodyVerifier;
  /** 200 bodies checked, by how. */
  readonly verified = { bytes: 0, sha256: 0 };
  private readonly pool: Pool;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly picker: RequestPicker;
  private readonly onCompleteHook: TargetRunnerOptions['onComplete'];
  private t0 = 0;
  private next = 0;
  /** Every request not yet swept, in intended-time order (= deadline order). */
  private readonly queue: InFlight[] = [];
  private queueHead = 0;
  /** Requests waiting for a free connection; they keep their intended time, so waiting counts as latency. */
  private readonly waiting: InFlight[] = [];
  private waitingHead = 0;
  private active = 0;
  private readonly connections: number;
  private readonly seconds: Second[] = [];
  private finalizedUpTo = 0;

  sent = 0;
  completed = 0;
  bytes = 0;
  readonly outcomes = emptyOutcomeCounts();
  readonly latency = createHistogram();
  readonly serviceTime = createHistogram();
  readonly sendLag = createHistogram();
  /** Corrected latencies of completions since the last progress report (live view). */
  live = createHistogram(2);
  private readonly samples = new Map<string, ErrorSample>();
  readonly observers: CompletionObserver[] = [];
  endMs = 0;

  constructor(opts: TargetRunnerOptions) {
    this.name = opts.name;
    // Requests go to /files/… on the origin; a path in the target URL would be ignored by the pool anyway.
    this.url = new URL(opts.url).origin;
    this.intervalMs = 1000 / opts.rate;
    this.timeoutMs = opts.timeoutMs;
    this.picker = opts.picker;
    this.verifier = opts.verifier ?? sha256Verifier();
    this.onCompleteHook = opts.onComplete;
    this.connections = opts.connections;
    this.pool = new Pool(this.url, {
      connections: opts.connections,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      // Timeouts are ours: measured from the intended send time and recorded at their value.
      headersTimeout: 0,
      bodyTimeout: 0,
      connect: { timeout: opts.timeoutMs },
    });
  }

  start(t0: number, endMs: number): void {
    this.t0 = t0;
    this.endMs = endMs;
  }

  get inFlight(): number {
    return this.sent - this.completed;
  }

  /** Sends every request whose intended time has come (and that is inside the run). Returns lags in µs. */
  dispatchDue(now: number, lagSink: (lagUs: number) => void): void {
    const limit = Math.min(now, this.t0 + this.endMs);
    while (true) {
      const intended = this.t0 + this.next * this.intervalMs;
      if (intended > limit || intended >= this.t0 + this.endMs) break;
      this.next++;
      const second = Math.floor((intended - this.t0) / 1000);
      let bucket = this.seconds[second];
      if (!bucket) {
        bucket = { sent: 0, pending: 0, outcomes: emptyOutcomeCounts(), histogram: createHistogram(2) };
        this.seconds[second] = bucket;
      }
      bucket.sent++;
      bucket.pending++;
      this.sent++;
      const dispatched = performance.now();
      const lagUs = (dispatched - intended) * 1000;
      recordMicros(this.sendLag, lagUs);
      lagSink(lagUs);
      const req = new InFlight(this, this.picker(), intended, dispatched, second);
      this.queue.push(req);
      this.waiting.push(req);
    }
    this.pump();
  }

  /**
   * Hands waiting requests to the pool while a connection is free. The queue is ours, not undici's,
   * so a request that times out while waiting is dropped from it without touching any socket.
   */
  private pump(): void {
    const waiting = this.waiting;
    while (this.active < this.connections && this.waitingHead < waiting.length) {
      const req = waiting[this.waitingHead++]!;
      if (req.done) continue;
      req.active = true;
      this.active++;
      this.pool.dispatch(
        { origin: this.url, path: req.file.urlPath, method: 'GET' },
        req as unknown as Dispatcher.DispatchHandler,
      );
    }
    if (this.waitingHead > 4096 && this.waitingHead * 2 > waiting.length) {
      waiting.splice(0, this.waitingHead);
      this.waitingHead = 0;
    }
  }

  /** undici is done with a request (answered, failed or aborted): its connection is free again. */
  release(req: InFlight): void {
    if (!req.active) return;
    req.active = false;
    this.active--;
    // Not synchronously: undici is still inside its callback for this connection.
    queueMicrotask(() => this.pump());
  }

  /** Times out requests whose deadline (intended time + timeout) has passed; one pass over the queue head. */
  sweepTimeouts(now: number): void {
    const queue = this.queue;
    while (this.queueHead < queue.length) {
      const head = queue[this.queueHead]!;
      if (!head.done) {
        if (head.intendedMs + this.timeoutMs > now) break;
        this.finish(head, 'timeout', `no complete response within ${this.timeoutMs} ms`);
        head.abort?.(new Error('kstyles load: request timed out'));
      }
      this.queueHead++;
    }
    if (this.queueHead > 4096 && this.queueHead * 2 > queue.length) {
      queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
  }

  finish(req: InFlight, outcome: Outcome, message?: string): void {
    req.done = true;
    const now = performance.now();
    const latencyUs = outcome === 'timeout' ? this.timeoutMs * 1000 : (now - req.intendedMs) * 1000;
    const fromUs = req.sentMs >= 0 ? req.sentMs : req.dispatchedMs;
    recordMicros(this.latency, latencyUs);
    recordMicros(this.serviceTime, (now - fromUs) * 1000);
    recordMicros(this.live, latencyUs);
    this.completed++;
    this.outcomes[outcome]++;
    if (outcome === 'ok') this.bytes += req.bytes;
    const bucket = this.seconds[req.second]!;
    bucket.outcomes[outcome]++;
    bucket.pending--;
    recordMicros(bucket.histogram, latencyUs);
    if (message !== undefined) {
      const key = `${outcome}\u0000${message}`;
      const sample = this.samples.get(key);
      if (sample) sample.count++;
      else if (this.samples.size < MAX_ERROR_SAMPLES) this.samples.set(key, { outcome, message, count: 1 });
    }
    if (this.observers.length > 0) {
      const intended = req.intendedMs - this.t0;
      const completed = now - this.t0;
      for (const observer of this.observers) {
        if (intended >= observer.startMs && intended < observer.endMs)
          observer.observe(intended, completed, outcome === 'ok');
      }
    }
    this.onCompleteHook?.(outcome, latencyUs / 1e6);
    this.finalizeSeconds();
  }

  private finalizeSeconds(): void {
    while (this.finalizedUpTo < this.seconds.length) {
      const bucket = this.seconds[this.finalizedUpTo];
      const sentAll = (this.finalizedUpTo + 1) * 1000 <= this.next * this.intervalMs;
      if (bucket && (bucket.pending > 0 || !sentAll)) break;
      if (bucket) this.freeze(this.finalizedUpTo, bucket);
      this.finalizedUpTo++;
    }
  }

  private freeze(t: number, bucket: Second): void {
    if (bucket.stats) return;
    bucket.stats = secondStatsOf(t, bucket.sent, bucket.outcomes, bucket.histogram);
    bucket.histogram.destroy();
  }

  /** The last second whose requests have all completed (its p99), for the live view. */
  lastP99(): number {
    for (let t = this.finalizedUpTo - 1; t >= 0; t--) {
      const stats = this.seconds[t]?.stats;
      if (stats) return stats.p99;
    }
    return 0;
  }

  /** True when nothing is in flight any more. */
  get idle(): boolean {
    return this.completed >= this.sent;
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }

  timeline(): SecondStats[] {
    const out: SecondStats[] = [];
    const lastSecond = Math.ceil(this.endMs / 1000);
    for (let t = 0; t < Math.max(lastSecond, this.seconds.length); t++) {
      const bucket = this.seconds[t];
      if (bucket) this.freeze(t, bucket);
      out.push(
        bucket?.stats ?? { t, sent: 0, outcomes: emptyOutcomeCounts(), p50: 0, p90: 0, p99: 0, max: 0 },
      );
    }
    return out;
  }

  result(durationMs: number): TargetResult {
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
      latency: summarize(this.latency),
      serviceTime: summarize(this.serviceTime),
      sendLag: summarize(this.sendLag),
      histograms: {
        latency: encodeHistogram(this.latency),
        serviceTime: encodeHistogram(this.serviceTime),
        sendLag: encodeHistogram(this.sendLag),
      },
      timeline: this.timeline(),
      errorSamples: [...this.samples.values()].sort((a, b) => b.count - a.count),
      verification: { method: this.verifier.describe, ...this.verified },
    };
  }
}
