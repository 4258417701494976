import { performance } from 'node:perf_hooks';
import { type BodyCheck, type BodyVerifier, sha256Verifier } from './body-verifier.ts';
import { createHistogram, encodeHistogram, type Histogram, recordMicros } from './histogram.ts';
import { HttpPool, type ResponseHandler } from './http-client.ts';
import type { RequestFile, RequestPicker } from './request-mix.ts';
import type { SecondPart, TargetCounters } from './sender-messages.ts';
import {
  type ErrorSample,
  emptyOutcomeCounts,
  OUTCOMES,
  type Outcome,
  type OutcomeCounts,
  type SecondStats,
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
  shipped: boolean;
};

const MAX_ERROR_SAMPLES = 20;
const OUTCOME_INDEX = Object.fromEntries(OUTCOMES.map((o, i) => [o, i])) as Record<Outcome, number>;

/** Maps a transport error (a socket's, or the client's own transportError) to an outcome class. */
function classifyError(err: unknown): Outcome {
  const code = (err as { code?: string })?.code;
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ETIMEDOUT') return 'timeout';
  return 'reset';
}

function errorMessage(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return [e?.code, e?.message].filter(Boolean).join(': ') || String(err);
}

/**
 * One request in flight. It is its own response handler (no stream, no promise per request), which
 * keeps the per-request cost low enough for thousands of requests a second.
 */
class InFlight implements ResponseHandler {
  sentMs = -1;
  done = false;
  status = 0;
  bytes = 0;
  check: BodyCheck | null = null;
  abort: ((err: Error) => void) | null = null;
  /** Handed to the pool and not yet given back (ended or failed there). */
  active = false;

  constructor(
    readonly runner: TargetRunner,
    readonly file: RequestFile,
    readonly intendedMs: number,
    readonly dispatchedMs: number,
    /** Second of the measured window, or -1 for a warm-up request. */
    readonly second: number,
  ) {}

  onSent(abort: (err: Error) => void): void {
    if (this.done) {
      // Timed out while its connection was being made: the answer would not count.
      abort(new Error('kstyles load: request timed out'));
      return;
    }
    this.abort = abort;
    this.sentMs = performance.now();
  }

  onStatus(status: number): void {
    this.status = status;
    if (status === 200) this.check = this.runner.verifier.begin(this.file);
  }

  onBody(chunk: Buffer): void {
    this.bytes += chunk.length;
    this.check?.update(chunk);
  }

  onEnd(): void {
    this.runner.release(this);
    if (this.done) return;
    const status = this.status;
    if (status === 200) {
      const check = this.check!;
      const mismatch = check.finish();
      if (this.second >= 0) this.runner.verified[check.mode]++;
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

/** Measured completions in completion order, for the main thread (layout: COMPLETION_FIELDS). */
export class CompletionLog {
  private data = new Float64Array(4096);
  private length = 0;

  push(code: number, intendedMs: number, completedMs: number, latencyUs: number): void {
    if (this.length + 4 > this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    const d = this.data;
    const i = this.length;
    d[i] = code;
    d[i + 1] = intendedMs;
    d[i + 2] = completedMs;
    d[i + 3] = latencyUs;
    this.length = i + 4;
  }

  /** What was logged since the last call, in a buffer of its own (transferable). */
  take(): Float64Array | null {
    if (this.length === 0) return null;
    const out = this.data.slice(0, this.length);
    this.length = 0;
    return out;
  }
}

/** Which requests of the constant-rate schedule a thread sends: those with i ≡ index (mod of). */
export type Slice = { index: number; of: number };

export type TargetRunnerOptions = {
  name: string;
  url: string;
  /** Requests per second to this target, all threads together. */
  rate: number;
  /** Keep-alive connections of this runner's pool. */
  connections: number;
  timeoutMs: number;
  /** The run's request sequence (the same for every target); this runner takes its slice of it. */
  picker: RequestPicker;
  /** Files for the warm-up requests (default: `picker`'s files, from its own sequence). */
  warmupPicker?: RequestPicker;
  /** Checks every 200 body (data loss when it is not the file); default sha256 against the manifest. */
  verifier?: BodyVerifier;
  slice?: Slice;
  /** Requests in the `warmupMs` before t0, at the same rate; counted apart, in no figure. */
  warmupMs?: number;
  /** Where measured completions go for the main thread, with this target's index. */
  completions?: { log: CompletionLog; target: number };
};

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

/**
 * Drives one target from one sender thread: its slice of the target's schedule, its own connection
 * pool, its own numbers (merged with the other threads' by the main thread).
 */
export class TargetRunner {
  readonly name: string;
  readonly url: string;
  readonly verifier: BodyVerifier;
  /** 200 bodies checked, by how (measured window only). */
  readonly verified = { bytes: 0, sha256: 0 };
  private readonly pool: HttpPool;
  private readonly rate: number;
  private readonly timeoutMs: number;
  private readonly picker: RequestPicker;
  private readonly warmupPicker: RequestPicker;
  private readonly slice: Slice;
  private readonly warmupCount: number;
  private readonly completions: TargetRunnerOptions['completions'];
  private t0 = 0;
  /** Schedule index of the next request this runner sends (negative: warm-up). */
  private nextIndex = 0;
  /** Files taken from `picker` so far (it is advanced over every index, ours or not). */
  private picked = 0;
  /** Indices below this are inside the run. */
  private endIndex = 0;
  private stopped = false;
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
  private shippedUpTo = 0;

  sent = 0;
  completed = 0;
  bytes = 0;
  readonly outcomes = emptyOutcomeCounts();
  readonly warmup = { sent: 0, completed: 0, outcomes: emptyOutcomeCounts() };
  readonly latency = createHistogram();
  readonly serviceTime = createHistogram();
  readonly sendLag = createHistogram();
  private readonly samples = new Map<string, ErrorSample>();

  constructor(opts: TargetRunnerOptions) {
    this.name = opts.name;
    // Requests go to /files/… on the origin; a path in the target URL would be ignored by the pool anyway.
    this.url = new URL(opts.url).origin;
    this.rate = opts.rate;
    this.timeoutMs = opts.timeoutMs;
    this.picker = opts.picker;
    this.warmupPicker = opts.warmupPicker ?? opts.picker;
    this.verifier = opts.verifier ?? sha256Verifier();
    this.slice = opts.slice ?? { index: 0, of: 1 };
    this.warmupCount = Math.floor(((opts.warmupMs ?? 0) * opts.rate) / 1000);
    this.completions = opts.completions;
    this.connections = opts.connections;
    // Request timeouts are ours (sweepTimeouts): measured from the intended send time, recorded at their value.
    this.pool = new HttpPool(this.url, opts.connections, opts.timeoutMs);
  }

  /** Starts the schedule: the measured window begins at `t0` (this thread's clock) and lasts `durationMs`. */
  start(t0: number, durationMs: number): void {
    this.t0 = t0;
    const { index, of } = this.slice;
    const first = -this.warmupCount;
    this.nextIndex = first + ((((index - first) % of) + of) % of);
    // Request i is inside the run while i/rate < duration: i < duration × rate.
    this.endIndex = Math.ceil((durationMs * this.rate) / 1000);
  }

  /** Intended time of schedule index i: t0 + i/rate (i/rate computed last, so spacing stays exact). */
  private intendedOf(i: number): number {
    return this.t0 + (i * 1000) / this.rate;
  }

  get inFlight(): number {
    return this.sent - this.completed;
  }

  /** No more requests will be sent (the schedule is done or the run was stopped). */
  get sendingDone(): boolean {
    return this.stopped || this.nextIndex >= this.endIndex;
  }

  /** Sends nothing more; requests in flight still finish. */
  stop(): void {
    this.stopped = true;
  }

  /** Sends every request of this runner's slice whose intended time has come. Reports lags in µs. */
  dispatchDue(now: number, lagSink: (lagUs: number) => void): void {
    if (this.stopped) return;
    const of = this.slice.of;
    while (this.nextIndex < this.endIndex) {
      const i = this.nextIndex;
      const intended = this.intendedOf(i);
      if (intended > now) break;
      this.nextIndex += of;
      const dispatched = performance.now();
      let req: InFlight;
      if (i < 0) {
        this.warmup.sent++;
        req = new InFlight(this, this.warmupPicker(), intended, dispatched, -1);
      } else {
        // The file of request i is the i-th of the run's sequence, whichever thread sends it.
        while (this.picked < i) {
          this.picker();
          this.picked++;
        }
        const file = this.picker();
        this.picked++;
        const second = Math.floor((intended - this.t0) / 1000);
        let bucket = this.seconds[second];
        if (!bucket) {
          bucket = {
            sent: 0,
            pending: 0,
            outcomes: emptyOutcomeCounts(),
            histogram: createHistogram(2),
            shipped: false,
          };
          this.seconds[second] = bucket;
        }
        bucket.sent++;
        bucket.pending++;
        this.sent++;
        const lagUs = (dispatched - intended) * 1000;
        recordMicros(this.sendLag, lagUs);
        lagSink(lagUs);
        req = new InFlight(this, file, intended, dispatched, second);
      }
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
      this.pool.get(req.file.urlPath, req);
    }
    if (this.waitingHead > 4096 && this.waitingHead * 2 > waiting.length) {
      waiting.splice(0, this.waitingHead);
      this.waitingHead = 0;
    }
  }

  /** The pool is done with a request (answered, failed or aborted): its connection is free again. */
  release(req: InFlight): void {
    if (!req.active) return;
    req.active = false;
    this.active--;
    // Not synchronously: the pool is still inside its read of this connection.
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
    if (req.second < 0) {
      this.warmup.completed++;
      this.warmup.outcomes[outcome]++;
      return;
    }
    const now = performance.now();
    const latencyUs = outcome === 'timeout' ? this.timeoutMs * 1000 : (now - req.intendedMs) * 1000;
    const fromUs = req.sentMs >= 0 ? req.sentMs : req.dispatchedMs;
    recordMicros(this.latency, latencyUs);
    recordMicros(this.serviceTime, (now - fromUs) * 1000);
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
    if (this.completions) {
      const code = this.completions.target * OUTCOMES.length + OUTCOME_INDEX[outcome];
      this.completions.log.push(code, req.intendedMs - this.t0, now - this.t0, latencyUs);
    }
    this.finalizeSeconds();
  }

  /** Advances over the seconds whose requests this runner has all sent and seen complete. */
  private finalizeSeconds(): void {
    const done = this.sendingDone;
    while (this.finalizedUpTo < this.seconds.length) {
      const t = this.finalizedUpTo;
      const bucket = this.seconds[t];
      // Every request of second t is sent once the next one is intended at or after its end.
      const sentAll = done || this.nextIndex >= (t + 1) * this.rate;
      if ((bucket && bucket.pending > 0) || !sentAll) break;
      this.finalizedUpTo++;
    }
  }

  /** True when nothing is in flight any more (warm-up included). */
  get idle(): boolean {
    return this.completed >= this.sent && this.warmup.completed >= this.warmup.sent;
  }

  /** This runner's totals so far, for the main thread. */
  counters(): TargetCounters {
    this.finalizeSeconds();
    const over = this.idle && this.sendingDone;
    if (over) this.finalizedUpTo = Math.max(this.finalizedUpTo, this.seconds.length);
    return {
      sent: this.sent,
      completed: this.completed,
      bytes: this.bytes,
      outcomes: { ...this.outcomes },
      verified: { ...this.verified },
      warmup: {
        sent: this.warmup.sent,
        completed: this.warmup.completed,
        outcomes: { ...this.warmup.outcomes },
      },
      // Once over, no later second can get a request from this runner.
      finalizedUpTo: over ? Number.MAX_SAFE_INTEGER : this.finalizedUpTo,
    };
  }

  /** The final seconds not handed over yet (each once), their histograms encoded and freed. */
  takeSeconds(target: number): SecondPart[] {
    const parts: SecondPart[] = [];
    for (; this.shippedUpTo < this.finalizedUpTo; this.shippedUpTo++) {
      const bucket = this.seconds[this.shippedUpTo];
      if (!bucket || bucket.shipped) continue;
      bucket.shipped = true;
      parts.push({
        target,
        t: this.shippedUpTo,
        sent: bucket.sent,
        outcomes: bucket.outcomes,
        histogram: encodeHistogram(bucket.histogram),
        max: bucket.histogram.maxValue,
      });
      bucket.histogram.destroy();
    }
    return parts;
  }

  errorSamples(): ErrorSample[] {
    return [...this.samples.values()];
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
