import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

/** How often the event-loop monitor samples; its readings are whole intervals, so this is subtracted. */
const LOOP_RESOLUTION_MS = 10;

/** Watches the event-loop delay of the thread that creates it. */
export function watchEventLoop(): IntervalHistogram {
  const monitor = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  monitor.enable();
  return monitor;
}

/** The p99 delay (µs) since the monitor's last reset, without the sampling interval; 0 without samples. */
export function loopDelayP99(monitor: IntervalHistogram): number {
  return monitor.count === 0 ? 0 : withoutInterval(monitor.percentile(99));
}

/** The longest delay (µs) since the monitor's last reset, without the sampling interval; 0 without samples. */
export function loopDelayMax(monitor: IntervalHistogram): number {
  return monitor.count === 0 ? 0 : withoutInterval(monitor.max);
}

function withoutInterval(ns: number): number {
  return Math.round(Math.max(0, ns / 1000 - LOOP_RESOLUTION_MS * 1000));
}
