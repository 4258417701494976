import { performance } from 'node:perf_hooks';

/**
 * One clock for every thread of a run. `performance.now()` counts from each thread's own start, so the
 * same instant reads differently in the main thread and in a sender thread; the system's monotonic
 * clock (`process.hrtime`) reads the same everywhere. Each thread measures once how far its
 * `performance.now()` is from it (a constant: Node derives both from the same clock), then converts.
 */
const OFFSET_MS = (() => {
  let best = Number.POSITIVE_INFINITY;
  let offset = 0;
  // The smallest gap between two reads of performance.now() brackets the hrtime read best.
  for (let i = 0; i < 5; i++) {
    const before = performance.now();
    const hr = Number(process.hrtime.bigint()) / 1e6;
    const after = performance.now();
    if (after - before < best) {
      best = after - before;
      offset = hr - (before + after) / 2;
    }
  }
  return offset;
})();

/** This thread's `performance.now()` as a time every thread of the process agrees on (ms). */
export function toSharedMs(localMs: number): number {
  return localMs + OFFSET_MS;
}

/** A shared time (ms) as this thread's `performance.now()`. */
export function toLocalMs(sharedMs: number): number {
  return sharedMs - OFFSET_MS;
}

export function sharedNowMs(): number {
  return performance.now() + OFFSET_MS;
}
