/**
 * Every load the benchmark offers goes through benchLoad: the one place that sets the load generator
 * up (connections, timeouts, its sender threads, no warm-up of its own, no hostile battery, no Security
 * measurement), so a change of the engine's options is a change here only.
 */
import {
  type FaultDriver,
  type FaultSpec,
  type LoadProgress,
  type LoadResults,
  runLoad,
} from '../load/index.ts';
import { formatMicros } from '../load/units.ts';

/**
 * Sender threads of the engine (load/sender-pool.ts): one, off this process's event loop, so the rate
 * the calibration finds "per core" is the rate every other load is sent at.
 */
export const GENERATOR_THREADS = 1;

/**
 * The engine's settings for a measurement: the sender threads the calibration counts; no warm-up before
 * each load (2 s unless told: the benchmark warms a target up once per size itself, warmUp in
 * run-bench.ts, rather than before each of its hundreds of loads); no Security measurement (it belongs
 * to a load run's report, like the hostile battery, and its requests would land in the measured
 * server's counts; the benchmark's own Security phase measures it once).
 */
const ENGINE = { workers: GENERATOR_THREADS, warmupMs: 0, security: false };

export type BenchLoad = {
  name: string;
  url: string;
  /** Directory of a MANIFEST.json that names the files to ask for. */
  corpusDir: string;
  rate: number;
  durationMs: number;
  timeoutMs: number;
  connections: number;
  /** The request mix (load/request-mix.ts); default every file of the corpus, uniformly. */
  mix?: string;
  faults?: FaultSpec[];
  faultDrivers?: FaultDriver[];
  faultWindowMs?: number;
  /** Shown before the live numbers. */
  label?: string;
  onLive?: (text: string) => void;
  /** The whole bench's signal: aborting it ends this load early. */
  signal?: AbortSignal | undefined;
};

/** One line of a running load: elapsed, sent, rate, p99, errors. */
export function liveText(p: LoadProgress): string {
  const t = p.targets[0];
  const elapsed = `${(p.elapsedMs / 1000).toFixed(1)}/${(p.durationMs / 1000).toFixed(0)}s`;
  if (!t) return elapsed;
  return `${elapsed}  sent ${t.sent}  ${t.rate.toFixed(0)} resp/s  p99 ${formatMicros(t.p99)}  errors ${t.errors}${p.behind ? '  (generator behind)' : ''}`;
}

export async function benchLoad(load: BenchLoad): Promise<LoadResults> {
  // The engine keeps its listener on the signal it is given, and a bench runs hundreds of loads:
  // each gets its own signal that follows the bench's, released when it ends.
  const step = new AbortController();
  const forward = () => step.abort();
  load.signal?.addEventListener('abort', forward, { once: true });
  const onLive = load.onLive;
  try {
    return await runLoad({
      ...ENGINE,
      targets: [{ name: load.name, url: load.url }],
      rate: load.rate,
      durationMs: load.durationMs,
      corpusDir: load.corpusDir,
      mix: load.mix ?? 'all',
      connections: load.connections,
      timeoutMs: load.timeoutMs,
      // A measurement: the hostile battery belongs to the report of a load run, not to every step.
      hostileBattery: false,
      faults: load.faults ?? [],
      faultDrivers: load.faultDrivers ?? [],
      ...(load.faultWindowMs !== undefined ? { faultWindowMs: load.faultWindowMs } : {}),
      progressIntervalMs: 500,
      ...(onLive
        ? { onProgress: (p: LoadProgress) => onLive(`${load.label ?? load.name}  ${liveText(p)}`) }
        : {}),
      signal: step.signal,
    });
  } finally {
    load.signal?.removeEventListener('abort', forward);
  }
}
