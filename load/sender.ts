/**
 * A sender thread: sends its slice of every target's schedule over its own connection pools, reads and
 * verifies the answers where they arrive, and reports to the main thread (load/sender-pool.ts), which
 * merges. Nothing else runs on this thread's event loop, so nothing else can delay a send. Started by
 * sender-thread.mjs, it serves one run after another; its messages are in sender-messages.ts.
 */
import { performance } from 'node:perf_hooks';
import { parentPort } from 'node:worker_threads';
import { raiseThreadPriority } from '../services/contract/thread-priority.ts';
import { verifierFrom } from './body-verifier.ts';
import { toLocalMs } from './clock.ts';
import { createHistogram, encodeHistogram, type Histogram, recordMicros } from './histogram.ts';
import { LoopDelay } from './loop-delay.ts';
import { buildRequestMix } from './request-mix.ts';
import type {
  EncodedHistogram,
  FromSender,
  GeneratorSecondPart,
  SecondPart,
  SenderInit,
  SenderReport,
  ToSender,
} from './sender-messages.ts';
import { CompletionLog, TargetRunner } from './target-runner.ts';

/** The warm-up's files come from a sequence of their own, so the measured sequence is the same for any warm-up. */
const WARMUP_SEED_SALT = 0x5bd1e995;

/** This thread's send lag and event-loop delay, second by second of the measured window. */
class ThreadMonitor {
  private readonly eventLoop = new LoopDelay();
  private secondLag: Histogram = createHistogram(2);
  private started = false;
  private closedUpTo = 0;
  private pending: GeneratorSecondPart[] = [];
  readonly lagSink = (lagUs: number) => recordMicros(this.secondLag, lagUs);

  /**
   * Closes the seconds of the run (`durationMs`) that ended by `elapsedMs`; `final` also closes the one
   * the run ended in. A stall that spans several seconds gives each of them its figures.
   */
  tick(elapsedMs: number, durationMs: number, final = false): void {
    if (elapsedMs < 0) return;
    if (!this.started) {
      // What the loop did before the measured window (start-up, warm-up) does not count.
      this.started = true;
      this.eventLoop.reset();
    }
    const lastSecond = Math.ceil(durationMs / 1000);
    const upTo = final
      ? Math.ceil(Math.min(elapsedMs, durationMs) / 1000)
      : Math.min(Math.floor(elapsedMs / 1000), lastSecond);
    if (upTo <= this.closedUpTo) return;
    const eventLoopP99 = this.eventLoop.p99();
    const sendLag = encodeHistogram(this.secondLag);
    const sendLagMax = this.secondLag.maxValue;
    for (let t = this.closedUpTo; t < upTo; t++) this.pending.push({ t, sendLag, sendLagMax, eventLoopP99 });
    this.eventLoop.reset();
    this.secondLag.destroy();
    this.secondLag = createHistogram(2);
    this.closedUpTo = upTo;
  }

  take(): GeneratorSecondPart[] {
    const out = this.pending;
    this.pending = [];
    return out;
  }

  stop(): void {
    this.eventLoop.stop();
  }
}

const encoded = (h: Histogram): EncodedHistogram => ({ encoded: encodeHistogram(h), max: h.maxValue });

const port = parentPort!;
const post = (message: FromSender, transfer?: ArrayBuffer[]) => port.postMessage(message, transfer ?? []);

/** One run's work on this thread: its runners, its timer, its reports. */
class SenderRun {
  private readonly runners: TargetRunner[];
  private readonly log: CompletionLog | null;
  private readonly monitor = new ThreadMonitor();
  private t0 = 0;
  private timer: NodeJS.Timeout | null = null;
  private lastReport = 0;
  private finished = false;

  constructor(readonly init: SenderInit) {
    const mix = buildRequestMix(init.manifest, init.mix);
    const verifier = verifierFrom(init.verifier);
    const log = init.streamCompletions ? new CompletionLog() : null;
    this.log = log;
    this.runners = init.targets.map(
      (t, i) =>
        new TargetRunner({
          name: t.name,
          url: t.url,
          rate: init.rate,
          connections: t.connections,
          timeoutMs: init.timeoutMs,
          picker: mix.picker(init.seed),
          warmupPicker: mix.picker((init.seed ^ WARMUP_SEED_SALT) + init.thread),
          verifier,
          slice: { index: init.thread, of: init.threads },
          warmupMs: init.warmupMs,
          ...(log ? { completions: { log, target: i } } : {}),
        }),
    );
  }

  start(t0Shared: number): void {
    this.t0 = toLocalMs(t0Shared);
    for (const runner of this.runners) runner.start(this.t0, this.init.durationMs);
    this.lastReport = performance.now();
    this.tick();
  }

  stop(): void {
    for (const runner of this.runners) runner.stop();
  }

  /** Ends the run: closes its pools and answers with its whole-run numbers. */
  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.monitor.stop();
    await Promise.all(this.runners.map((r) => r.close()));
    post({
      type: 'final',
      thread: this.init.thread,
      targets: this.runners.map((r) => ({
        latency: encoded(r.latency),
        serviceTime: encoded(r.serviceTime),
        sendLag: encoded(r.sendLag),
        errorSamples: r.errorSamples(),
      })),
    });
  }

  /** One timer sends what is due for every target, sweeps timeouts, closes seconds and reports. */
  private readonly tick = () => {
    const now = performance.now();
    for (const runner of this.runners) runner.dispatchDue(now, this.monitor.lagSink);
    for (const runner of this.runners) runner.sweepTimeouts(now);
    this.monitor.tick(now - this.t0, this.init.durationMs);
    const sending = this.runners.some((r) => !r.sendingDone);
    if (
      now - this.lastReport >= this.init.reportIntervalMs ||
      (!sending && this.runners.every((r) => r.idle))
    )
      this.report(now);
    if (this.finished) {
      this.timer = null;
      return;
    }
    this.timer = setTimeout(this.tick, sending ? 1 : 5);
  };

  private report(now: number): void {
    this.lastReport = now;
    const targets = this.runners.map((r) => r.counters());
    const seconds: SecondPart[] = this.runners.flatMap((r, i) => r.takeSeconds(i));
    this.finished = this.runners.every((r) => r.sendingDone && r.idle);
    // Seconds the thread ticked through are closed; once finished, so is the one it ended in.
    if (this.finished) this.monitor.tick(now - this.t0, this.init.durationMs, true);
    const completions = this.log?.take() ?? null;
    const message: SenderReport = {
      type: 'report',
      thread: this.init.thread,
      nowMs: performance.now() - this.t0,
      targets,
      seconds,
      generator: this.monitor.take(),
      completions,
      finished: this.finished,
    };
    post(message, completions ? [completions.buffer as ArrayBuffer] : []);
  }
}

/**
 * The scheduling a sender thread asks for. It shares the cores with the targets it measures (a lab, a
 * restarting style); a sender that waits for a core sends late, and its lateness is the instrument's
 * error, not the target's latency. A nice value is not enough: the lab's styles run in sessions of their
 * own, and with the kernel's autogroup each session weighs as much as ours whatever its threads' nice
 * values, so a style compiling its code at start-up kept the sender in the run queue for 15–30 ms
 * (/proc/thread-self/schedstat; load/README.md, 'In the demo'). A SCHED_FIFO thread is run as soon as it
 * is runnable. It is safe to ask for: the thread sleeps between its 1 ms ticks (a few % of a core at the
 * demo's rate, a third at 10,000 req/s), and the kernel keeps 5% of every second for other threads
 * whatever a real-time thread does. Both need root or CAP_SYS_NICE (chrt: util-linux); elsewhere the
 * thread runs as it was started, and the results say how it ran.
 */
const SENDER_REALTIME_PRIORITY = 10;
const SENDER_NICE = -10;

const priority = raiseThreadPriority('thread-self', SENDER_REALTIME_PRIORITY, SENDER_NICE);

// A thread serves one run after another (the main thread keeps idle ones for the next run).
let run: SenderRun | null = null;
port.on('message', (message: ToSender) => {
  if (message.type === 'run') {
    try {
      run = new SenderRun(message.init);
      post({ type: 'ready', thread: message.init.thread, priority });
    } catch (err) {
      post({ type: 'failed', thread: message.init.thread, message: (err as Error).stack ?? String(err) });
    }
  } else if (message.type === 'start') run?.start(message.t0);
  else if (message.type === 'stop') run?.stop();
  else if (message.type === 'close') {
    const ending = run;
    run = null;
    ending?.close().catch((err: Error) => {
      post({ type: 'failed', thread: ending.init.thread, message: err.stack ?? String(err) });
    });
  }
});
