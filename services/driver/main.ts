/**
 * The storage driver server as a process:
 *   node --import tsx services/driver/main.ts [--nats URL] [--chaos] [--metrics-port P] [--shm-dir DIR]
 * With chaos on, a start that finds KSTYLES_DRIVER_CRASH_AT_START set exits at once (exit 70): the
 * "crashloop" fault, which the supervisor arms for the next N starts through its control API
 * (chaos-env.ts). SIGUSR2 toggles the `slow` fault.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';
import { intFlag } from '../../cli/args.ts';
import { logLine } from '../contract/http-server.ts';
import { createFaultsInjectedCounter } from '../contract/metrics.ts';
import {
  metricsFlags,
  NATS_FLAGS,
  runServerMain,
  SHM_DIR_FLAG,
  serveMetricsFromFlags,
  shmSegmentsFlag,
} from '../ipc/server-main.ts';
import { SEGMENT_MAX_AGE_MS } from '../ipc/shm.ts';
import { DriverChaos, PANIC_EXIT_CODE } from './chaos.ts';
import { CRASH_AT_START_ENV, readChaosEnv } from './chaos-env.ts';
import { startDriverServer } from './nats-server.ts';
import { slowFaultToggle } from './slow-fault.ts';
import { StorageDriver } from './storage-driver.ts';

/** The crashloop fault: this start was armed to exit at once (only ever called with chaos on). */
function crashAtStartIfAsked(env: NodeJS.ProcessEnv): void {
  const which = env[CRASH_AT_START_ENV];
  if (!which) return;
  process.stderr.write(
    `${JSON.stringify({ level: 'fatal', service: 'driver', msg: `chaos crashloop: start ${which} exits at once`, pid: process.pid })}\n`,
  );
  process.exit(PANIC_EXIT_CODE);
}

/** The connection the driver publishes file bytes on, apart from its service's replies. */
const BULK_CONNECTION = 'bulk';

await runServerMain({
  connections: [BULK_CONNECTION],
  command: {
    name: 'driver',
    summary: 'the storage driver server (kstyles-driver on NATS)',
    usage:
      'node --import tsx services/driver/main.ts [--nats URL] [--chaos] [--metrics-port P] [--shm-dir DIR]',
    flags: {
      ...NATS_FLAGS,
      chaos: {
        type: 'boolean',
        env: 'KSTYLES_CHAOS',
        description: 'enable the fault hooks (poison path, latency, error rate, crashloop)',
      },
      ...metricsFlags('KSTYLES_DRIVER_METRICS_PORT'),
      'max-open-files': {
        type: 'string',
        env: 'KSTYLES_DRIVER_MAX_OPEN_FILES',
        value: 'N',
        default: '64',
        description: 'file descriptors kept open',
      },
      ...SHM_DIR_FLAG,
    },
  },
  prepare(flags) {
    if (flags.chaos) crashAtStartIfAsked(process.env);
    shmSegmentsFlag('driver', flags['shm-dir']);
  },
  async start(nc, flags, openConnection) {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    const { latencyMs, errorRate, slowMs } = readChaosEnv('driver', flags.chaos);
    const chaos = new DriverChaos({ enabled: flags.chaos, latencyMs, errorRate });
    const counter = createFaultsInjectedCounter(registry);
    process.on(
      'SIGUSR2',
      slowFaultToggle(chaos, { slowMs, counter, style: 'microkernel', target: 'driver' }),
    );
    const driver = new StorageDriver({
      chaos,
      maxOpenFiles: intFlag('driver', 'max-open-files', flags['max-open-files'], 1, 100_000),
    });
    const bulk = await openConnection(BULK_CONNECTION);
    const shm = shmSegmentsFlag('driver', flags['shm-dir']);
    const hosted = await startDriverServer(nc, driver, { registry, bulk, ...(shm ? { shm } : {}) });
    // Segments whose gateway never took them (services/ipc/shm.ts).
    const sweeper = shm ? setInterval(() => void shm.sweep(), SEGMENT_MAX_AGE_MS / 3).unref() : undefined;
    const metrics = await serveMetricsFromFlags('driver', registry, flags);
    if (chaos.enabled)
      logLine({
        level: 'warn',
        service: 'driver',
        msg: 'chaos enabled',
        poisonPath: chaos.options.poisonPath,
      });
    return {
      facts: { serviceId: hosted.id, chaos: chaos.enabled, ...(metrics ? { metrics: metrics.url } : {}) },
      stop: async () => {
        clearInterval(sweeper);
        await hosted.stop();
        await metrics?.close();
        await driver.close();
      },
    };
  },
});
