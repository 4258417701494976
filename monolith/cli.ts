/**
 * `kstyles monolith`: runs the monolithic kernel in the foreground until SIGTERM or SIGINT. No restarter
 * here on purpose: a crashed monolith stays down until something outside (the local lab's supervisor, a
 * compose restart policy) starts it again; that is the style's blast radius.
 */

import { intFlag, parseCommand, portFlag, UsageError } from '../cli/args.ts';
import { requireDataDir } from '../cli/kit/data-dir.ts';
import { DEFAULT_PORTS } from '../cli/kit/defaults.ts';
import { chaosFlagSpec, dataFlagSpec, hostFlagSpec, portFlagSpec } from '../cli/kit/flags.ts';
import { logLine } from '../services/contract/http-server.ts';
import { readChaosEnv } from '../services/driver/chaos-env.ts';
import { DEFAULT_SLOW_MS, slowFaultToggle } from '../services/driver/slow-fault.ts';
import { exitWhenOrphaned } from '../services/supervisor/child-identity.ts';
import { startTracing } from '../services/telemetry/setup.ts';
import type { RunningMonolith } from './app.ts';
import { STYLE } from './style.ts';

export const MONOLITH_DEFAULTS = {
  data: './.kstyles/corpus',
  drainMs: '10000',
  slowMs: DEFAULT_SLOW_MS,
} as const;

const spec = {
  name: 'monolith',
  summary: 'serve the contract from one in-process Express app',
  usage: 'kstyles monolith [--port P] [--data DIR] [--host H] [--chaos] [--drain-ms MS]',
  flags: {
    port: portFlagSpec(DEFAULT_PORTS.monolith, 'TCP port to listen on (0 = any free port)'),
    data: dataFlagSpec('data root to serve (make one with kstyles corpus)', MONOLITH_DEFAULTS.data),
    host: hostFlagSpec('address to listen on'),
    chaos: chaosFlagSpec('arm the storage driver fault hooks (see below)'),
    'drain-ms': {
      type: 'string',
      value: 'MS',
      env: 'KSTYLES_DRAIN_MS',
      default: MONOLITH_DEFAULTS.drainMs,
      description: 'on SIGTERM/SIGINT, how long in-flight requests may take to finish',
    },
  },
  details: `Routes: GET|HEAD /files/<path>, /healthz, /readyz, /metrics.

Chaos (only with --chaos or KSTYLES_CHAOS=1; without it the hooks are inert):
  GET /files/chaos/poison.bin    the driver panics: the whole process exits with code 70
  KSTYLES_CHAOS_LATENCY_MS=N     milliseconds added to every driver read
  KSTYLES_CHAOS_ERROR_RATE=R     share of driver reads (0..1) that fail with a 500
  kill -USR2 <pid>               toggles the 'slow' fault: +KSTYLES_CHAOS_SLOW_MS (default ${MONOLITH_DEFAULTS.slowMs}) per read

SIGTERM or SIGINT: stop accepting, let in-flight requests finish (--drain-ms), exit 0.
A second signal stops at once (exit 1).`,
} as const;

/** Listening failures the user fixes with a flag; anything else is a bug and keeps its stack. */
function listenUsageError(err: unknown, host: string): never {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    throw new UsageError(
      `kstyles monolith: cannot listen on host ${host} (${code}): use an address of this machine, e.g. --host 127.0.0.1 or --host 0.0.0.0.`,
    );
  }
  if (code === undefined && err instanceof Error && /port \d+/.test(err.message)) {
    throw new UsageError(`kstyles monolith: ${err.message}.`);
  }
  throw err;
}

/** Resolves with the exit code once a stop signal has drained the server. */
function serveUntilSignal(
  running: RunningMonolith,
  drainMs: number,
  onSlowToggle: () => void,
): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onStop = (signal: NodeJS.Signals) => {
      if (stopping) {
        logLine({ level: 'warn', msg: 'second stop signal: exiting at once', style: STYLE, signal });
        process.exit(1);
      }
      stopping = true;
      running.server.getConnections((_err, connections) => {
        logLine({
          level: 'info',
          msg: 'stopping: draining in-flight requests',
          style: STYLE,
          signal,
          connections,
          drainMs,
        });
      });
      void running.stop(drainMs).then((drained) => {
        logLine({
          level: drained ? 'info' : 'warn',
          msg: drained ? 'stopped' : `stopped: requests still running after ${drainMs} ms were cut`,
          style: STYLE,
          drained,
          pid: process.pid,
        });
        process.off('SIGUSR2', onSlowToggle);
        resolve(0);
      });
    };
    process.on('SIGTERM', onStop);
    process.on('SIGINT', onStop);
    exitWhenOrphaned();
    // Installed even without chaos: SIGUSR2's default action would kill the process.
    process.on('SIGUSR2', onSlowToggle);
  });
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(spec, argv);
  if (!parsed) return 0;
  const { flags } = parsed;
  const port = portFlag('monolith', flags.port);
  const drainMs = intFlag('monolith', 'drain-ms', flags['drain-ms'], 0, 600_000);
  const host = flags.host ?? '127.0.0.1';
  const dataDir = requireDataDir('monolith', flags.data ?? MONOLITH_DEFAULTS.data);
  const { latencyMs, errorRate, slowMs } = readChaosEnv('monolith', flags.chaos);
  const chaos = { enabled: flags.chaos, latencyMs, errorRate };

  // Before the first request; loads the tracing SDK only when the environment names an exporter.
  const tracing = await startTracing({ style: STYLE });
  // Express and prom-client load only now: usage errors and --help stay quick.
  const { startMonolith } = await import('./app.ts');
  const { createFaultsInjectedCounter } = await import('../services/contract/metrics.ts');
  let running: RunningMonolith;
  try {
    running = await startMonolith({ dataDir, chaos, port, host });
  } catch (err) {
    listenUsageError(err, host);
  }
  const counter = createFaultsInjectedCounter(running.metrics.registry);
  const onSlowToggle = slowFaultToggle(running.chaos, { slowMs, counter, style: STYLE, target: STYLE });
  // Signal handlers first: whoever reads the start line may signal at once (SIGUSR2's default action kills).
  const stopped = serveUntilSignal(running, drainMs, onSlowToggle).then(async (code) => {
    await tracing.shutdown();
    return code;
  });
  const options = running.chaos.options;
  logLine({
    level: 'info',
    msg: 'monolith listening',
    style: STYLE,
    pid: process.pid,
    port: running.port,
    url: running.url,
    dataRoot: running.dataRoot,
    ...(tracing.summary ? { tracing: tracing.summary } : {}),
    chaos: options.enabled
      ? {
          enabled: true,
          poisonPath: options.poisonPath,
          latencyMs: options.latencyMs,
          errorRate: options.errorRate,
          slowToggleMs: slowMs,
        }
      : { enabled: false },
  });
  return stopped;
}
