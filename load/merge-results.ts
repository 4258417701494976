import { encodeHistogram, mergeHistograms, summarize } from './histogram.ts';
import {
  type ErrorSample,
  emptyOutcomeCounts,
  type LoadResults,
  OUTCOMES,
  type SecondStats,
  type TargetResult,
} from './types.ts';

/** Error samples of several parts, the same (outcome, message) added up, most frequent first. */
export function mergeErrorSamples(parts: ErrorSample[][]): ErrorSample[] {
  const samples = new Map<string, ErrorSample>();
  for (const s of parts.flat()) {
    const key = `${s.outcome}\u0000${s.message}`;
    const prev = samples.get(key);
    samples.set(key, prev ? { ...prev, count: prev.count + s.count } : { ...s });
  }
  return [...samples.values()].sort((a, b) => b.count - a.count);
}

function mergeTimelines(timelines: SecondStats[][]): SecondStats[] {
  const length = Math.max(0, ...timelines.map((t) => t.length));
  const out: SecondStats[] = [];
  for (let t = 0; t < length; t++) {
    const seconds = timelines.map((tl) => tl[t]).filter((s): s is SecondStats => s !== undefined);
    const outcomes = emptyOutcomeCounts();
    for (const s of seconds) for (const o of OUTCOMES) outcomes[o] += s.outcomes[o];
    out.push({
      t,
      sent: seconds.reduce((sum, s) => sum + s.sent, 0),
      outcomes,
      // Per-second histograms are not kept, so merged per-second percentiles are the worst input's (an upper bound).
      p50: Math.max(0, ...seconds.map((s) => s.p50)),
      p90: Math.max(0, ...seconds.map((s) => s.p90)),
      p99: Math.max(0, ...seconds.map((s) => s.p99)),
      max: Math.max(0, ...seconds.map((s) => s.max)),
    });
  }
  return out;
}

function mergeTarget(parts: TargetResult[], durationMs: number): TargetResult {
  const histograms = (key: keyof TargetResult['histograms']) =>
    mergeHistograms(parts.map((p) => p.histograms[key]));
  const latency = histograms('latency');
  const serviceTime = histograms('serviceTime');
  const sendLag = histograms('sendLag');
  const outcomes = emptyOutcomeCounts();
  for (const p of parts) for (const o of OUTCOMES) outcomes[o] += p.outcomes[o];
  const completed = parts.reduce((sum, p) => sum + p.completed, 0);
  return {
    name: parts[0]!.name,
    url: [...new Set(parts.map((p) => p.url))].join(' '),
    sent: parts.reduce((sum, p) => sum + p.sent, 0),
    completed,
    outcomes,
    availability: completed === 0 ? 1 : outcomes.ok / completed,
    throughput: outcomes.ok / (durationMs / 1000),
    bytes: parts.reduce((sum, p) => sum + p.bytes, 0),
    latency: summarize(latency),
    serviceTime: summarize(serviceTime),
    sendLag: summarize(sendLag),
    histograms: {
      latency: encodeHistogram(latency),
      serviceTime: encodeHistogram(serviceTime),
      sendLag: encodeHistogram(sendLag),
    },
    timeline: mergeTimelines(parts.map((p) => p.timeline)),
    errorSamples: mergeErrorSamples(parts.map((p) => p.errorSamples)),
    ...mergeVerification(parts),
  };
}

/** Counts add up; the methods are listed once each (parts older than verification reports have none). */
function mergeVerification(parts: TargetResult[]): Pick<TargetResult, 'verification'> {
  const known = parts.flatMap((p) => (p.verification ? [p.verification] : []));
  if (known.length === 0) return {};
  return {
    verification: {
      method: [...new Set(known.map((v) => v.method))].join('; '),
      bytes: known.reduce((sum, v) => sum + v.bytes, 0),
      sha256: known.reduce((sum, v) => sum + v.sha256, 0),
    },
  };
}

/**
 * Merges runs that loaded the same targets side by side (e.g. one generator per machine, started
 * together): counts add up, HdrHistograms are added exactly, rates add up, the duration is the
 * longest run's. Targets are matched by name.
 */
export function mergeResults(runs: LoadResults[]): LoadResults {
  if (runs.length === 0) throw new Error('mergeResults: nothing to merge');
  if (runs.length === 1) return runs[0]!;
  const durationMs = Math.max(...runs.map((r) => r.durationMs));
  const names = [...new Set(runs.flatMap((r) => r.targets.map((t) => t.name)))];
  const first = runs[0]!;
  const facts = Object.assign({}, ...runs.map((r) => r.facts ?? {}));
  const { thresholds: _thresholds, warmup: _warmup, ...base } = first;
  const warmups = runs.flatMap((r) => (r.warmup ? [r.warmup] : []));
  return {
    ...base,
    startedAt: runs.map((r) => r.startedAt).sort()[0]!,
    durationMs,
    rate: runs.reduce((sum, r) => sum + r.rate, 0),
    seed: first.seed,
    mix: [...new Set(runs.map((r) => r.mix))].join(' | '),
    targets: names.map((name) =>
      mergeTarget(
        runs.flatMap((r) => r.targets.filter((t) => t.name === name)),
        durationMs,
      ),
    ),
    faults: runs.flatMap((r) => r.faults).sort((a, b) => a.firedAtMs - b.firedAtMs),
    generator: {
      timeline: first.generator.timeline,
      eventLoop: first.generator.eventLoop,
      warnings: runs.flatMap((r) => r.generator.warnings),
    },
    ...(warmups.length ? { warmup: mergeWarmups(warmups) } : {}),
    ...(Object.keys(facts).length ? { facts } : {}),
  };
}

/** Warm-ups of side-by-side runs: counts add up, the duration is the longest. */
function mergeWarmups(parts: NonNullable<LoadResults['warmup']>[]): NonNullable<LoadResults['warmup']> {
  const outcomes = emptyOutcomeCounts();
  for (const p of parts) for (const o of OUTCOMES) outcomes[o] += p.outcomes[o];
  const sum = (pick: (p: (typeof parts)[number]) => number) => parts.reduce((n, p) => n + pick(p), 0);
  return {
    durationMs: Math.max(...parts.map((p) => p.durationMs)),
    sent: sum((p) => p.sent),
    completed: sum((p) => p.completed),
    errors: sum((p) => p.errors),
    outcomes,
  };
}
