import { readFile } from 'node:fs/promises';
import { intFlag, type ParsedFlags, parseCommand, UsageError } from '../cli/args.ts';
import { outputDirectory } from '../cli/kit/output-dir.ts';
import { ManifestError } from '../services/corpus/corpus.ts';
import { VERIFY_MODES, type VerifyMode } from './body-verifier.ts';
// The library (index.ts) does the work; this module only reads flags and prints.
import {
  createLiveView,
  evaluateThresholds,
  formatChecklist,
  formatSummary,
  LOAD_DEFAULTS,
  type LoadOptions,
  type LoadResults,
  type LoadTarget,
  loadScenario,
  parseThreshold,
  runLoad,
  type Scenario,
  ScenarioError,
  type TargetFacts,
  THRESHOLD_GRAMMAR,
  type Threshold,
  ThresholdError,
  thresholdExitCode,
  writeReports,
} from './index.ts';
import { MixError } from './request-mix.ts';
import { checkScenarioFitsRun, checkScenarioTargets, SCENARIO_EXAMPLE } from './scenario.ts';
import { chooseSenderThreads, SENDER_THREAD_RATE } from './sender-pool.ts';
import { checkThresholdTargets } from './thresholds.ts';
import { parseDurationMs } from './units.ts';

const SPEC = {
  name: 'load',
  summary: 'open-loop load with byte verification, chaos schedules and reports',
  usage:
    'kstyles load --target NAME=URL … --rate R --duration D [--scenario FILE] [--out DIR] [--threshold EXPR …]',
  flags: {
    target: {
      type: 'string',
      multiple: true,
      value: 'NAME=URL',
      description: 'a service to load, e.g. monolith=http://127.0.0.1:8081',
    },
    rate: {
      type: 'string',
      value: 'R',
      default: '100',
      env: 'KSTYLES_RATE',
      description: 'requests per second, per target (constant arrival rate)',
    },
    duration: {
      type: 'string',
      value: 'D',
      default: '10s',
      env: 'KSTYLES_DURATION',
      description: 'how long to send, e.g. 30s, 2m',
    },
    scenario: { type: 'string', value: 'FILE', description: 'chaos schedule (YAML or JSON)' },
    out: { type: 'string', value: 'DIR', description: 'write results.json, report.md and report.html there' },
    connections: {
      type: 'string',
      value: 'N',
      default: String(LOAD_DEFAULTS.connections),
      description: 'keep-alive connections per target (spread over the sender threads)',
    },
    seed: {
      type: 'string',
      value: 'S',
      default: String(LOAD_DEFAULTS.seed),
      description: 'seed of the request mix (same for every target)',
    },
    timeout: {
      type: 'string',
      value: 'T',
      default: '5s',
      description: 'request timeout, counted from the intended send time',
    },
    mix: {
      type: 'string',
      value: 'MIX',
      default: 'small=90,medium=9,large=1',
      description: 'small | medium | large | all | weights (small < 64 KiB ≤ medium < 1 MiB ≤ large)',
    },
    verify: {
      type: 'string',
      value: 'HOW',
      description:
        'bytes (compare with the local corpus files) | sha256 (against the manifest); default: bytes when the files are here',
    },
    threshold: {
      type: 'string',
      multiple: true,
      value: 'EXPR',
      description: "pass/fail rule, e.g. 'monolith:p99<50ms' (exit 1 when one fails)",
    },
    'metrics-port': {
      type: 'string',
      value: 'P',
      env: 'KSTYLES_LOAD_METRICS_PORT',
      description: 'serve the client-side Prometheus metrics on /metrics while running',
    },
    corpus: {
      type: 'string',
      value: 'DIR',
      env: 'KSTYLES_DATA',
      default: './.kstyles/corpus',
      description: 'corpus directory with MANIFEST.json',
    },
    nats: {
      type: 'string',
      value: 'URL',
      env: 'NATS_URL',
      description: 'NATS for the supervisor control API (else from its runtime-state file)',
    },
    facts: {
      type: 'string',
      value: 'FILE',
      description:
        'JSON of measured facts per style, e.g. {"unikernel":{"imageBytes":…,"hasShell":false,"bootMs":…}}',
    },
    window: {
      type: 'string',
      value: 'D',
      description: "fault window for resilience numbers (default 10s, or the scenario's window)",
    },
    workers: {
      type: 'string',
      value: 'N',
      env: 'KSTYLES_LOAD_WORKERS',
      description: `sender threads (default: enough for the rate at ${SENDER_THREAD_RATE.toLocaleString('en-US')} req/s each, at most one fewer than the cores)`,
    },
    warmup: {
      type: 'string',
      value: 'D',
      env: 'KSTYLES_LOAD_WARMUP',
      default: `${LOAD_DEFAULTS.warmupMs / 1000}s`,
      description: 'requests at the same rate before the measured window, counted in no figure (0 for none)',
    },
  },
  details: `Latency is measured from each request's intended send time (wrk2's model), in microseconds.
Requests are sent from sender threads, each with its own connections and a share of every target's
schedule; the main thread only fires faults, draws the live view and writes the reports.
Every 200 body is checked, byte for byte against the local corpus file or by the manifest's\nsha256 where the file is not here: a mismatch is DATA LOSS.
Exit codes: 0 all thresholds pass, 1 a threshold failed, 2 usage error.

Fault targets: SUPERVISOR:SERVICE (supervisor control API over NATS), pid:N (signals),
docker:NAME (container's host PID via the Docker engine), a load target name (poison;
or a process with a runtime-state file). Scenario example:
${SCENARIO_EXAMPLE}

Thresholds: ${THRESHOLD_GRAMMAR}`,
} as const;

/** `NAME=URL` flags as load targets, checked; errors name `kstyles <command>` and the bad flag. */
export function parseTargets(raw: string[], command = 'load'): LoadTarget[] {
  if (raw.length === 0)
    throw new UsageError(
      `kstyles ${command}: --target NAME=URL is required (e.g. --target monolith=http://127.0.0.1:8081). Run 'kstyles ${command} --help'.`,
    );
  const targets = raw.map((text) => {
    const eq = text.indexOf('=');
    const name = text.slice(0, eq).trim();
    const url = text.slice(eq + 1).trim();
    if (eq <= 0 || !/^[\w.-]+$/.test(name))
      throw new UsageError(
        `kstyles ${command}: --target '${text}': use NAME=URL with a name of letters, digits, '.', '_' or '-'`,
      );
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new UsageError(
        `kstyles ${command}: --target '${text}': '${url}' is not a URL (e.g. http://127.0.0.1:8081)`,
      );
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
      throw new UsageError(`kstyles ${command}: --target '${text}': only http and https URLs`);
    return { name, url: parsed.origin };
  });
  const names = new Set<string>();
  for (const t of targets) {
    if (names.has(t.name))
      throw new UsageError(`kstyles ${command}: --target name '${t.name}' is given twice`);
    names.add(t.name);
  }
  return targets;
}

function durationFlag(flag: string, raw: string): number {
  const ms = parseDurationMs(raw);
  if (ms === null || ms <= 0)
    throw new UsageError(`kstyles load: --${flag} must be a duration such as 500ms, 10s or 2m, got '${raw}'`);
  return ms;
}

async function readFacts(file: string): Promise<Record<string, TargetFacts>> {
  try {
    const json = JSON.parse(await readFile(file, 'utf8')) as unknown;
    if (!json || typeof json !== 'object' || Array.isArray(json))
      throw new Error('expected an object keyed by style');
    return json as Record<string, TargetFacts>;
  } catch (err) {
    throw new UsageError(`kstyles load: --facts ${file}: ${(err as Error).message}`);
  }
}

/** Where the command writes its live view, summary and checklist (tests pass their own). */
export type Output = { write(text: string): unknown; isTTY?: boolean };

type LoadFlags = ParsedFlags<typeof SPEC.flags>;

/** Everything the flags ask for, checked: a bad value is a UsageError that names its flag. */
async function planFromFlags(flags: LoadFlags) {
  const targets = parseTargets(flags.target);
  const rate = Number(flags.rate);
  if (!(rate > 0) || !Number.isFinite(rate) || rate > 1_000_000) {
    throw new UsageError(
      `kstyles load: --rate must be a number of requests per second above 0, got '${flags.rate}'`,
    );
  }
  const durationMs = durationFlag('duration', flags.duration!);
  const timeoutMs = durationFlag('timeout', flags.timeout!);
  const connections = intFlag('load', 'connections', flags.connections, 1, 10_000);
  const seed = intFlag('load', 'seed', flags.seed, 0, 2 ** 32 - 1);
  const metricsPort =
    flags['metrics-port'] === undefined
      ? undefined
      : intFlag('load', 'metrics-port', flags['metrics-port'], 0, 65535);
  const names = targets.map((t) => t.name);
  let thresholds: Threshold[];
  let scenario: Scenario | undefined;
  try {
    thresholds = flags.threshold.map(parseThreshold);
    checkThresholdTargets(thresholds, names);
    if (flags.scenario) {
      scenario = await loadScenario(flags.scenario);
      checkScenarioTargets(scenario, names);
      checkScenarioFitsRun(scenario, durationMs);
    }
  } catch (err) {
    if (err instanceof ThresholdError || err instanceof ScenarioError)
      throw new UsageError(`kstyles load: ${err.message}`);
    throw err;
  }
  const verify = flags.verify;
  if (verify !== undefined && !(VERIFY_MODES as readonly string[]).includes(verify))
    throw new UsageError(
      `kstyles load: --verify must be ${VERIFY_MODES.join(' or ')}, got '${verify}' (bytes compares bodies with the local corpus files, sha256 checks them against the manifest)`,
    );
  const facts = flags.facts ? await readFacts(flags.facts) : undefined;
  const windowMs = flags.window ? durationFlag('window', flags.window) : scenario?.windowMs;
  const workers = flags.workers === undefined ? undefined : intFlag('load', 'workers', flags.workers, 1, 256);
  const warmupMs = parseDurationMs(flags.warmup!);
  if (warmupMs === null || warmupMs > 600_000)
    throw new UsageError(
      `kstyles load: --warmup must be a duration from 0 to 10m such as 2s or 500ms, got '${flags.warmup}'`,
    );
  const options: LoadOptions = {
    targets,
    rate,
    durationMs,
    timeoutMs,
    connections,
    seed,
    corpusDir: flags.corpus!,
    mix: flags.mix!,
    ...(verify ? { verify: verify as VerifyMode } : {}),
    faults: scenario?.faults ?? [],
    ...(flags.nats ? { natsUrl: flags.nats } : {}),
    ...(windowMs ? { faultWindowMs: windowMs } : {}),
    ...(metricsPort !== undefined ? { metricsPort } : {}),
    ...(facts ? { facts } : {}),
    ...(workers !== undefined ? { workers } : {}),
    warmupMs,
  };
  return { options, thresholds, scenario };
}

/** Runs the load with the live view on stdout; the first Ctrl-C stops it early, the second at once. */
/** `faults`: how many the scenario schedules (undefined without one), for the first line. */
async function runWithLiveView(
  options: LoadOptions,
  faults: number | undefined,
  stdout: Output,
): Promise<LoadResults> {
  const view = createLiveView(stdout);
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write(
      '\nkstyles load: stopping (Ctrl-C again to quit at once); waiting for requests in flight…\n',
    );
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  stdout.write(
    `kstyles load: ${options.targets.map((t) => `${t.name} (${t.url})`).join(', ')} at ${options.rate} req/s each for ${options.durationMs / 1000}s${faults !== undefined ? `, ${faults} fault(s)` : ''}\n`,
  );
  // The same choice runLoad makes (and records in results.json), said before the run.
  const senders = chooseSenderThreads(options.workers, options.rate * options.targets.length);
  stdout.write(
    `  ${senders.reason}; warm-up ${(options.warmupMs ?? LOAD_DEFAULTS.warmupMs) / 1000}s before the measured window\n`,
  );
  try {
    return await runLoad({
      ...options,
      onMetricsListening: (port) => stdout.write(`metrics: http://127.0.0.1:${port}/metrics\n`),
      onProgress: (p) => view.update(p),
      progressIntervalMs: stdout.isTTY ? 250 : 1000,
      signal: controller.signal,
    });
  } catch (err) {
    if (err instanceof MixError || err instanceof ManifestError)
      throw new UsageError(`kstyles load: ${err.message}`);
    throw err;
  } finally {
    process.off('SIGINT', onSigint);
    view.done();
  }
}

export async function run(argv: string[], stdout: Output = process.stdout): Promise<number | undefined> {
  const parsed = parseCommand(SPEC, argv);
  if (!parsed) return 0;
  const { flags } = parsed;
  const { options, thresholds, scenario } = await planFromFlags(flags);
  const out = flags.out === undefined ? undefined : outputDirectory('load', '--out', flags.out);
  const results = await runWithLiveView(options, scenario?.faults.length, stdout);
  results.thresholds = evaluateThresholds(results, thresholds);
  const color = !!stdout.isTTY && !process.env.NO_COLOR;
  stdout.write(`\n${formatSummary(results, color)}`);
  if (out) {
    const files = await writeReports(results, out);
    stdout.write(`\nwrote ${files.json}, ${files.markdown}, ${files.html}\n`);
  }
  const checklist = formatChecklist(results, color);
  if (checklist) stdout.write(`\n${checklist}`);
  return thresholdExitCode(results.thresholds);
}
