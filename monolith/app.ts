/**
 * The monolithic kernel: one Express process in which the gateway (HTTP), the file system and the storage
 * driver are modules that call each other directly, in one address space. This file is only wiring: the HTTP
 * semantics are the shared handlers', the file logic the shared `fs` and `driver` cores'. A driver panic here
 * therefore ends the whole process, and every request in flight with it (docs/architecture.md, 'The styles').
 */
import { realpath } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { FileService } from '../services/contract/file-service.ts';
import { answerClientErrors, type HttpContext } from '../services/contract/http-handler.ts';
import { closeGracefully, listen, reachableUrl } from '../services/contract/http-server.ts';
import { createHttpMetrics, type HttpMetrics } from '../services/contract/metrics.ts';
import type { ChaosOptions, DriverChaos } from '../services/driver/chaos.ts';
import { createExpressApp } from '../services/express/express-app.ts';
import { openInProcessFileService } from './in-process.ts';
import { STYLE } from './style.ts';

export type MonolithServerOptions = {
  metrics?: HttpMetrics;
  /** Request deadline; the contract's default (5 s) when absent. */
  deadlineMs?: number;
};

/**
 * The HTTP server over any FileService: the shared Express composition, plus problem+json answers to
 * requests node's parser rejects before they reach Express.
 */
export function createMonolithServer(service: FileService, options: MonolithServerOptions = {}): Server {
  const ctx: HttpContext = {
    style: STYLE,
    service,
    ...(options.metrics ? { metrics: options.metrics } : {}),
    ...(options.deadlineMs ? { deadlineMs: options.deadlineMs } : {}),
  };
  const server = createServer(createExpressApp(ctx));
  answerClientErrors(server, STYLE);
  return server;
}

export type MonolithOptions = MonolithServerOptions & {
  dataDir: string;
  chaos?: Partial<ChaosOptions>;
  port?: number;
  host?: string;
};

export type RunningMonolith = {
  server: Server;
  port: number;
  url: string;
  /** The real path of the data root. */
  dataRoot: string;
  /** The storage driver's fault hooks (inert unless chaos is enabled). */
  chaos: DriverChaos;
  metrics: HttpMetrics;
  /**
   * Stops accepting connections, lets in-flight requests finish for up to `drainMs`, then cuts the rest and
   * closes the driver. Resolves true when every request finished in time.
   */
  stop(drainMs?: number): Promise<boolean>;
};

/** Opens the data root, composes the in-process services and listens (port 0 = any free port). */
export async function startMonolith(options: MonolithOptions): Promise<RunningMonolith> {
  const service = await openInProcessFileService(options.dataDir, {
    ...(options.chaos ? { chaos: options.chaos } : {}),
  });
  // FileSystem.open has just resolved it, so it exists; the log line names the real path.
  const dataRoot = await realpath(options.dataDir);
  const metrics = options.metrics ?? createHttpMetrics(STYLE, { security: { dataDir: dataRoot } });
  const server = createMonolithServer(service, { ...options, metrics });
  const host = options.host ?? '127.0.0.1';
  let port: number;
  try {
    port = await listen(server, options.port ?? 0, host);
  } catch (err) {
    await service.close();
    throw err;
  }
  let stopping: Promise<boolean> | undefined;
  return {
    server,
    port,
    url: reachableUrl(host, port),
    dataRoot,
    chaos: service.driver.chaos,
    metrics,
    stop(drainMs = 10_000) {
      stopping ??= closeGracefully(server, drainMs).finally(() => service.close());
      return stopping;
    },
  };
}
