/**
 * The microkernel's gateway: the shared Express composition of the HTTP contract over a NATS-backed
 * FileService. It reaches the file server only through NATS (and, for readiness, both servers' PING).
 */
import { createServer } from 'node:http';
import type { NatsConnection } from '@nats-io/nats-core';
import type { Registry } from 'prom-client';
import { answerClientErrors } from '../contract/http-handler.ts';
import { closeGracefully, listen, reachableUrl } from '../contract/http-server.ts';
import { createHttpMetrics } from '../contract/metrics.ts';
import { createExpressApp } from '../express/express-app.ts';
import { createIpcMetrics } from '../ipc/ipc.ts';
import { NatsFileService } from './file-service-client.ts';

export const STYLE = 'microkernel';

export type GatewayOptions = {
  port: number;
  host?: string;
  /** Request deadline; default DEFAULT_DEADLINE_MS (5 s). */
  deadlineMs?: number;
  /** prom-client's process metrics; default on (off in tests that run several registries). */
  defaultMetrics?: boolean;
};

export type Gateway = {
  url: string;
  port: number;
  registry: Registry;
  /** Graceful: refuses new connections, lets in-flight responses finish up to timeoutMs. */
  close(timeoutMs?: number): Promise<void>;
};

export async function startGateway(nc: NatsConnection, options: GatewayOptions): Promise<Gateway> {
  const metrics = createHttpMetrics(STYLE, { defaultMetrics: options.defaultMetrics ?? true });
  const service = new NatsFileService(nc, { metrics: createIpcMetrics(metrics.registry) });
  const app = createExpressApp({
    style: STYLE,
    service,
    metrics,
    ...(options.deadlineMs !== undefined ? { deadlineMs: options.deadlineMs } : {}),
  });
  const server = createServer(app);
  answerClientErrors(server, STYLE);
  const host = options.host ?? '127.0.0.1';
  const port = await listen(server, options.port, host);
  return {
    url: reachableUrl(host, port),
    port,
    registry: metrics.registry,
    close: async (timeoutMs = 5000) => {
      await closeGracefully(server, timeoutMs);
    },
  };
}
