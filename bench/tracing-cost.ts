/**
 * What tracing costs each style (issue 15): the style started three times side by side, with tracing
 * off (no exporter: the SDK is not loaded), on (the file exporter, every request traced) and sampled (the
 * file exporter, parent-based ratio), each driven by the load generator at one fixed rate, the three
 * interleaved run after run. Per run: corrected p50 and p99 (from the intended send time), and the CPU
 * time the style's whole process tree used (utime + stime from /proc, children included) divided by the
 * requests completed — the figure machine noise moves least. Per mode: median and min–max over the runs.
 * Also: spans and trace bytes per traced request, and what the off path costs per span it skips
 * (the span helpers timed in this process, where no SDK is registered).
 *
 *   npx tsx bench/tracing-cost.ts [--styles monolith,microkernel,unikernel] [--rate 200] [--duration 10s]
 *                                 [--repeats 3] [--ratio 0.01] [--mix small] [--data DIR] [--json]
 *
 * Figures taken on a shared, busy machine are indicative only: the report records the load average.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseCommand, UsageError } from '../cli/args.ts';
import { STYLES, type Style } from '../cli/kit/defaults.ts';
import { type Spread, spreadOf } from '../cli/kit/spread.ts';
import { formatMicros, parseDurationMs } from '../load/units.ts';
import { freePort } from '../services/contract/http-server.ts';
import { generateCorpus } from '../services/corpus/corpus.ts';
import { inSpan, SpanKind, tracingOn } from '../services/telemetry/spans.ts';
import { groupByTrace, parseTraceLines } from '../services/telemetry/trace-file.ts';
import { benchLoad } from './load-run.ts';
import { type Spawned, startProcess, treeCpuMicros, waitFor200 } from './procs.ts';
import { READY_PATHS, TARGETS } from './targets.ts';
import {
  type ModeResult,
  type ModeRun,
  type StyleResult,
  TRACING_MODES,
  type TracingCostReport,
  type TracingMode,
} from './types.ts';

export type TracingCostOptions = {
  styles: Style[];
  /** Requests per second, per run. */
  rate: number;
  durationMs: number;
  /** Runs per style and mode (at least 3), interleaved off, on, sampled, off, … */
  repeats: number;
  /** The sampled mode's parent-based ratio. */
  ratio: number;
  /** The request mix of load/request-mix.ts (default: small files, one chunk each). */
  mix: string;
  /** A corpus (MANIFEST.json); absent: a fresh one in a temporary directory. */
  corpusDir?: string;
  onProgress?: (line: string) => void;
};

/** The environment of each mode; the off mode blanks what the caller's environment might set. */
function modeEnv(mode: TracingMode, file: string, ratio: number): Record<string, string> {
  const off = {
    KSTYLES_TRACES_FILE: '',
    OTEL_EXPORTER_OTLP_ENDPOINT: '',
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '',
  };
  if (mode === 'off') return off;
  return {
    ...off,
    KSTYLES_TRACES_FILE: file,
    OTEL_TRACES_SAMPLER: mode === 'on' ? 'always_on' : 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: String(mode === 'on' ? 1 : ratio),
  };
}

/**
 * Nanoseconds per span helper call while tracing is off: the gate every instrumented call site passes
 * (services/telemetry/spans.ts, `inSpan`), timed against the same async work without it, in alternating
 * rounds after a warm-up; the spread of the rounds says how much of it this machine can resolve.
 */
export async function offPathNsPerSpan(iterations = 200_000, rounds = 7): Promise<Spread> {
  if (tracingOn()) throw new Error('measure the off path in a process that has not registered tracing');
  const work = async () => 1;
  const gated = () => inSpan('x', SpanKind.INTERNAL, work);
  const time = async (fn: () => Promise<number>) => {
    const started = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) await fn();
    return Number(process.hrtime.bigint() - started) / iterations;
  };
  const differences: number[] = [];
  for (let round = 0; round <= rounds; round++) {
    const bare = await time(work);
    const withGate = await time(gated);
    if (round > 0) differences.push(withGate - bare);
  }
  // Never empty: rounds > 1.
  return spreadOf(differences)!;
}

type Instance = { mode: TracingMode; child: Spawned; url: string; file: string };

async function startInstance(
  style: Style,
  mode: TracingMode,
  corpusDir: string,
  work: string,
  ratio: number,
) {
  const def = TARGETS[style];
  const port = await freePort();
  const launch = def.launch(port, corpusDir)!;
  const file = path.join(work, `${style}-${mode}.jsonl`);
  const child = startProcess(`${style} (tracing ${mode})`, launch.command, launch.args, {
    ...launch.env,
    ...modeEnv(mode, file, ratio),
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor200(child, url, [...READY_PATHS], def.readyTimeoutMs);
  } catch (err) {
    await child.stop(2000);
    throw err;
  }
  return { instance: { mode, child, url, file } satisfies Instance, describe: launch.describe };
}

/** Measures every style in `options.styles`; one style's three instances run at a time. */
export async function measureTracingCost(options: TracingCostOptions): Promise<TracingCostReport> {
  if (options.repeats < 3) throw new UsageError('tracing-cost: --repeats must be at least 3');
  const say = options.onProgress ?? (() => {});
  const work = mkdtempSync(path.join(tmpdir(), 'kstyles-tracing-cost-'));
  const before = loadavg()[0]!;
  try {
    const corpusDir = options.corpusDir ?? path.join(work, 'corpus');
    if (!options.corpusDir) await generateCorpus(corpusDir, { seed: 1, count: 40 });
    const offPath = await offPathNsPerSpan();
    const styles: StyleResult[] = [];
    for (const style of options.styles) {
      say(`${style}: starting it three times (tracing off, on, sampled ${options.ratio})`);
      const started: Array<Awaited<ReturnType<typeof startInstance>>> = [];
      try {
        for (const mode of TRACING_MODES)
          started.push(await startInstance(style, mode, corpusDir, work, options.ratio));
        const runs = new Map<TracingMode, ModeRun[]>(TRACING_MODES.map((m) => [m, []]));
        // A short warm-up each (JIT, connection pools, fd caches), not counted.
        for (const { instance } of started)
          await loadOnce(instance, options, corpusDir, Math.min(3000, options.durationMs));
        for (let repeat = 1; repeat <= options.repeats; repeat++) {
          for (const { instance } of started) {
            const run = await loadOnce(instance, options, corpusDir, options.durationMs);
            runs.get(instance.mode)!.push(run);
            say(
              `${style} ${instance.mode.padEnd(7)} run ${repeat}/${options.repeats}: p50 ${formatMicros(run.p50Us)}, p99 ${formatMicros(run.p99Us)}, CPU ${Math.round(run.cpuUsPerRequest)} µs/request (${run.requests} requests, ${run.errors} errors)`,
            );
          }
        }
        // Every list has `repeats` (at least 3) runs: none of these spreads is empty.
        const modes = started.map(({ instance }): ModeResult => {
          const list = runs.get(instance.mode)!;
          const result: ModeResult = {
            mode: instance.mode,
            runs: list,
            p50Us: spreadOf(list.map((r) => r.p50Us))!,
            p99Us: spreadOf(list.map((r) => r.p99Us))!,
            cpuUsPerRequest: spreadOf(list.map((r) => r.cpuUsPerRequest))!,
          };
          if (instance.mode !== 'off') {
            // Each traced request is one trace (warm-up and the readiness probe's GET included).
            const written = existsSync(instance.file);
            const spans = written ? parseTraceLines(readFileSync(instance.file, 'utf8')) : [];
            const traced = groupByTrace(spans).size;
            result.traced = {
              requests: traced,
              spansPerRequest: traced ? spans.length / traced : 0,
              bytesPerRequest: traced ? statSync(instance.file).size / traced : 0,
            };
          }
          return result;
        });
        styles.push({ style, describe: started[0]!.describe, modes });
      } finally {
        await Promise.all(started.map(({ instance }) => instance.child.stop(5000)));
      }
    }
    return {
      startedAt: new Date().toISOString(),
      rate: options.rate,
      durationMs: options.durationMs,
      repeats: options.repeats,
      ratio: options.ratio,
      mix: options.mix,
      loadAverage: { before, after: loadavg()[0]! },
      offPathNsPerSpan: offPath,
      styles,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** One load run against one instance: latency from the load generator, CPU from /proc around it. */
async function loadOnce(
  instance: Instance,
  options: TracingCostOptions,
  corpusDir: string,
  durationMs: number,
): Promise<ModeRun> {
  // Every file the traced modes write is flushed in the run it belongs to (each process writes every 250 ms).
  const cpu0 = treeCpuMicros(instance.child.pid);
  const results = await benchLoad({
    name: instance.mode,
    url: instance.url,
    rate: options.rate,
    durationMs,
    corpusDir,
    mix: options.mix,
    timeoutMs: 5000,
    connections: 32,
  });
  await new Promise((resolve) => setTimeout(resolve, 400));
  const cpu = treeCpuMicros(instance.child.pid) - cpu0;
  const target = results.targets[0]!;
  return {
    p50Us: target.latency.p50,
    p99Us: target.latency.p99,
    cpuUsPerRequest: target.completed > 0 ? cpu / target.completed : 0,
    requests: target.completed,
    errors: target.completed - target.outcomes.ok,
  };
}

const range = (s: Spread, format: (n: number) => string) =>
  `${format(s.median)} (${format(s.min)}–${format(s.max)})`;

/** The report as a plain-text table, with the method in a few lines. */
export function formatTracingCost(report: TracingCostReport): string {
  const us = (n: number) => `${Math.round(n)}`;
  const lines = [
    `tracing cost, ${report.startedAt}: ${report.rate} req/s for ${report.durationMs / 1000} s per run, ${report.repeats} runs per mode interleaved, mix ${report.mix}, sampled = parentbased_traceidratio ${report.ratio}`,
    `load average (1 min) ${report.loadAverage.before.toFixed(2)} → ${report.loadAverage.after.toFixed(2)}: figures from a busy machine are indicative only`,
    `off path: a span helper with no SDK registered costs ${range(report.offPathNsPerSpan, (n) => n.toFixed(1))} ns more than the bare call (median and min–max of alternating rounds)`,
    '',
    'style        tracing  p50 median (min–max)     p99 median (min–max)     CPU µs/request (min–max)  traced  spans/trace  bytes/trace',
  ];
  for (const style of report.styles) {
    for (const mode of style.modes) {
      lines.push(
        [
          style.style.padEnd(12),
          mode.mode.padEnd(8),
          range(mode.p50Us, formatMicros).padEnd(24),
          range(mode.p99Us, formatMicros).padEnd(24),
          range(mode.cpuUsPerRequest, us).padEnd(25),
          String(mode.traced?.requests ?? '—').padEnd(7),
          (mode.traced?.spansPerRequest.toFixed(1) ?? '—').padEnd(12),
          mode.traced ? Math.round(mode.traced.bytesPerRequest).toString() : '—',
        ].join(' '),
      );
    }
    const off = style.modes.find((m) => m.mode === 'off')!.cpuUsPerRequest.median;
    const deltas = style.modes
      .filter((m) => m.mode !== 'off')
      .map(
        (m) =>
          `${m.mode} ${m.cpuUsPerRequest.median - off >= 0 ? '+' : ''}${Math.round(m.cpuUsPerRequest.median - off)} µs (${Math.round(((m.cpuUsPerRequest.median - off) / off) * 100)}%)`,
      )
      .join(', ');
    const spans = style.modes.find((m) => m.mode === 'on')?.traced?.spansPerRequest ?? 0;
    lines.push(
      `${''.padEnd(12)} CPU per request against off: ${deltas}; with tracing off its ~${spans.toFixed(0)} span sites cost ≈ ${((spans * report.offPathNsPerSpan.median) / 1000).toFixed(3)} µs a request`,
    );
  }
  lines.push(
    '',
    'Method: three instances of each style (bench/targets.ts launches), tracing off / on / sampled, loaded in turn by',
    'load/run-load.ts (open loop, corrected latency); CPU = utime+stime of the whole process tree (/proc) over the run',
    '÷ requests completed; median and min–max over the runs. Off-path cost: the span helpers timed here with no SDK.',
  );
  return lines.join('\n');
}

const spec = {
  name: 'tracing-cost',
  summary: 'what tracing costs each style: off, on and sampled, interleaved',
  usage:
    'npx tsx bench/tracing-cost.ts [--styles LIST] [--rate R] [--duration D] [--repeats N] [--ratio R] [--mix M] [--data DIR] [--json]',
  flags: {
    styles: { type: 'string', value: 'LIST', default: STYLES.join(','), description: 'styles to measure' },
    rate: { type: 'string', value: 'R', default: '200', description: 'requests per second of each run' },
    duration: { type: 'string', value: 'D', default: '10s', description: 'length of each run' },
    repeats: { type: 'string', value: 'N', default: '3', description: 'runs per mode (at least 3)' },
    ratio: { type: 'string', value: 'R', default: '0.01', description: "the sampled mode's ratio" },
    mix: { type: 'string', value: 'M', default: 'small', description: 'request mix (load/request-mix.ts)' },
    data: { type: 'string', value: 'DIR', description: 'corpus to serve (default: a fresh one)' },
    json: { type: 'boolean', description: 'print the report as JSON' },
  },
} as const;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(spec, argv);
  if (!parsed) return 0;
  const { flags } = parsed;
  const styles = (flags.styles ?? '').split(',').filter(Boolean);
  for (const style of styles) {
    if (!(STYLES as readonly string[]).includes(style)) {
      throw new UsageError(`tracing-cost: --styles names ${style}; use ${STYLES.join(', ')}`);
    }
  }
  const number = (name: string, raw: string | undefined, min: number, max: number) => {
    const value = Number(raw);
    if (!(value >= min && value <= max)) {
      throw new UsageError(`tracing-cost: --${name} must be a number from ${min} to ${max}, not '${raw}'`);
    }
    return value;
  };
  const durationMs = parseDurationMs(flags.duration ?? '');
  if (durationMs === null || durationMs < 1000) {
    throw new UsageError(
      `tracing-cost: --duration must be a duration of at least 1s (e.g. 10s), not '${flags.duration}'`,
    );
  }
  const report = await measureTracingCost({
    styles: styles as Style[],
    rate: number('rate', flags.rate, 1, 100_000),
    durationMs,
    repeats: Math.floor(number('repeats', flags.repeats, 3, 100)),
    ratio: number('ratio', flags.ratio, 0, 1),
    mix: flags.mix ?? 'small',
    ...(flags.data ? { corpusDir: path.resolve(flags.data) } : {}),
    onProgress: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(
    flags.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatTracingCost(report)}\n`,
  );
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === new URL(import.meta.url).pathname) {
  run(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${err instanceof UsageError ? err.message : (err as Error).stack}\n`);
      process.exit(err instanceof UsageError ? err.exitCode : 1);
    },
  );
}
