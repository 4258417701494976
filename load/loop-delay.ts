import { performance } from 'node:perf_hooks';
import { createHistogram, type Histogram, recordMicros } from './histogram.ts';

/** How often the delay is sampled. */
const LOOP_RESOLUTION_MS = 10;

/**
 * The event-loop delay of the thread that creates it: a timer every 10 ms records how much later than
 * asked it ran. (perf_hooks' monitor forgets its last timestamp on reset, so a stall under way when a
 * second is closed would be lost; this one keeps it, and the stall lands in the next second.)
 */
export class LoopDelay {
  private readonly histogram: Histogram = createHistogram(2);
  private last = performance.now();
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.timer = setInterval(() => {
      const now = performance.now();
      recordMicros(this.histogram, (now - this.last - LOOP_RESOLUTION_MS) * 1000);
      this.last = now;
    }, LOOP_RESOLUTION_MS);
    // A watcher, not work: it never keeps the thread alive.
    this.timer.unref();
  }

  /** p99 of the delays since the last reset, µs (0 without a sample). */
  p99(): number {
    return this.histogram.totalCount === 0 ? 0 : this.histogram.getValueAtPercentile(99);
  }

  /** The longest delay since the last reset, µs (0 without a sample). */
  max(): number {
    return this.histogram.maxValue;
  }

  reset(): void {
    this.histogram.reset();
  }

  stop(): void {
    clearInterval(this.timer);
    this.histogram.destroy();
  }
}
