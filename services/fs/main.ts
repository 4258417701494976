/**
 * The file server as a process:
 *   node --import tsx services/fs/main.ts --data DIR [--transfer grant|copy|shm] [--nats URL] [--metrics-port P]
 * It serves kstyles-fs and reads bytes from kstyles-driver, both over NATS.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';
import { intFlag, UsageError } from '../../cli/args.ts';
import { createIpcMetrics } from '../ipc/ipc.ts';
import { RETRY_DEFAULTS } from '../ipc/resilient-requester.ts';
import {
  metricsFlags,
  NATS_FLAGS,
  runServerMain,
  serveMetricsFromFlags,
  TRANSFER_FLAG,
  transferFlag,
} from '../ipc/server-main.ts';
import { followSupervisedChild } from '../ipc/supervisor-news.ts';
import { CHILD_NAMES } from '../microkernel/composition.ts';
import { NatsBlockReader } from './block-reader-client.ts';
import { FileSystem } from './file-system.ts';
import { fileServerTransfer, startFileServer } from './nats-server.ts';

await runServerMain({
  command: {
    name: 'fs',
    summary: 'the file server (kstyles-fs on NATS)',
    usage:
      'node --import tsx services/fs/main.ts --data DIR [--transfer grant|copy|shm] [--nats URL] [--metrics-port P]',
    flags: {
      ...NATS_FLAGS,
      data: { type: 'string', env: 'KSTYLES_DATA', value: 'DIR', description: 'data root to serve' },
      'driver-timeout-ms': {
        type: 'string',
        env: 'KSTYLES_DRIVER_TIMEOUT_MS',
        value: 'MS',
        default: String(RETRY_DEFAULTS.attemptTimeoutMs),
        description: 'how long one driver read attempt may take before it is retried',
      },
      ...TRANSFER_FLAG,
      ...metricsFlags('KSTYLES_FS_METRICS_PORT'),
    },
  },
  prepare(flags) {
    if (!flags.data) throw new UsageError('kstyles fs: --data DIR (or KSTYLES_DATA) is required.');
    transferFlag('fs', flags.transfer);
  },
  async start(nc, flags) {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    const reader = new NatsBlockReader(nc, {
      attemptTimeoutMs: intFlag('fs', 'driver-timeout-ms', flags['driver-timeout-ms'], 1, 600_000),
      metrics: createIpcMetrics(registry),
    });
    // A driver's exit (or return) from the supervisor reissues the reads it held at once.
    const driverNews = followSupervisedChild(nc, CHILD_NAMES.driver, () => reader.nudge());
    const fileSystem = await FileSystem.mount(flags.data as string, reader);
    const mode = transferFlag('fs', flags.transfer);
    const hosted = await startFileServer(nc, fileSystem, {
      registry,
      transfer: fileServerTransfer(mode, reader),
    });
    const metrics = await serveMetricsFromFlags('fs', registry, flags);
    return {
      facts: {
        serviceId: hosted.id,
        data: fileSystem.root,
        transfer: mode,
        ...(metrics ? { metrics: metrics.url } : {}),
      },
      stop: async () => {
        driverNews.unsubscribe();
        await hosted.stop();
        await metrics?.close();
      },
    };
  },
});
