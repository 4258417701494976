/**
 * A sender thread: sends its slice of every target's schedule over its own connection pools, reads and
 * verifies the answers where they arrive, and reports to the main thread (load/sender-pool.ts), which
 * merges. Nothing else runs on this thread's event loop, so nothing else can delay a send. Started by
 * sender-thread.mjs; its messages are in sender-messages.ts.
 */
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { verifierFrom } from './body-verifier.ts';
import { toLocalMs } from './clock.ts';
import { createHistogram, encodeHistogram, type Histogram, recordMicros } from './histogram.ts';
import { loopDelayP99, watchEventLoop } from './loop-delay.ts';
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
  private readonly eventLoop = watchEventLoop();
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
    const eventLoopP99 = loopDelayP99(this.eventLoop);
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
    this.eventLoop.disable();
  }
}

const encoded = (h: Histogram): EncodedHistogram => ({ encoded: encodeHistogram(h), max: h.maxValue });

const port = parentPort!;
const init = workerData as SenderInit;
const post = (message: FromSender, transfer?: ArrayBuffer[]) => port.postMessage(message, transfer ?? []);

try {
  const mix = buildRequestMix(init.manifest, init.mix);
  const verifier = verifierFrom(init.verifier);
  const log = init.streamCompletions ? new CompletionLog() : null;
  const runners = init.targets.map(
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
  const monitor = new ThreadMonitor();
  let t0 = 0;
  let timer: NodeJS.Timeout | null = null;
  let lastReport = 0;
  let finished = false;

  const report = (now: number) => {
    lastReport = now;
    const targets = runners.map((r) => r.counters());
    const seconds: SecondPart[] = runners.flatMap((r, i) => r.takeSeconds(i));
    finished = runners.every((r) => r.sendingDone && r.idle);
    // Seconds the thread ticked through are closed; once finished, so is the one it ended in.
    if (finished) monitor.tick(now - t0, init.durationMs, true);
    const completions = log?.take() ?? null;
    const message: SenderReport = {
      type: 'report',
      thread: init.thread,
      nowMs: performance.now() - t0,
      targets,
      seconds,
      generator: monitor.take(),
      completions,
      finished,
    };
    post(message, completions ? [completions.buffer as ArrayBuffer] : []);
  };

  // One timer sends what is due for every target, sweeps timeouts, closes seconds and reports.
  const tick = () => {
    const now = performance.now();
    for (const runner of runners) runner.dispatchDue(now, monitor.lagSink);
    for (const runner of runners) runner.sweepTimeouts(now);
    monitor.tick(now - t0, init.durationMs);
    const sending = runners.some((r) => !r.sendingDone);
    if (now - lastReport >= init.reportIntervalMs || (!sending && runners.every((r) => r.idle))) report(now);
    if (finished) {
      timer = null;
      return;
    }
    timer = setTimeout(tick, sending ? 1 : 5);
  };

  port.on('message', (message: ToSender) => {
    if (message.type === 'start') {
      t0 = toLocalMs(message.t0);
      for (const runner of runners) runner.start(t0, init.durationMs);
      lastReport = performance.now();
      tick();
    } else if (message.type === 'stop') {
      for (const runner of runners) runner.stop();
    } else if (message.type === 'close') {
      if (timer) clearTimeout(timer);
      monitor.stop();
      void Promise.all(runners.map((r) => r.close())).then(() => {
        post({
          type: 'final',
          thread: init.thread,
          targets: runners.map((r) => ({
            latency: encoded(r.latency),
            serviceTime: encoded(r.serviceTime),
            sendLag: encoded(r.sendLag),
            errorSamples: r.errorSamples(),
          })),
        });
        port.close();
      });
    }
  });
  post({ type: 'ready', thread: init.thread });
} catch (err) {
  post({ type: 'failed', thread: init.thread, message: (err as Error).stack ?? String(err) });
  port.close();
}
