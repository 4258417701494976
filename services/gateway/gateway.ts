/**
 * The microkernel's gateway: the shared Express composition of the HTTP contract over a NATS-backed
 * FileService. It reaches the file server only through NATS (and, for readiness, both servers' PING).
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NatsConnection } from '@nats-io/nats-core';
import type { Registry } from 'prom-client';
import { answerClientErrors } from '../contract/http-handler.ts';
import { closeGracefully, listen, reachableUrl } from '../contract/http-server.ts';
import { createHttpMetrics } from '../contract/metrics.ts';
import { createExpressApp } from '../express/express-app.ts';
import { createIpcMetrics } from '../ipc/ipc.ts';
import type { ShmSegments } from '../ipc/shm.ts';
import { NatsFileService } from './file-service-client.ts';

export const STYLE = 'microkernel';

export type GatewayOptions = {
  port: number;
  host?: string;
  /**
   * A listening socket held by the supervisor (services/supervisor/held-socket.ts): listen on this
   * descriptor instead of binding port and host, so connections that arrive while the gateway restarts
   * wait in the kernel's queue instead of being refused.
   */
  fd?: number;
  /** Request deadline; default DEFAULT_DEADLINE_MS (5 s). */
  deadlineMs?: number;
  /** prom-client's process metrics; default on (off in tests that run several registries). */
  defaultMetrics?: boolean;
  /** The run's shared-memory segments (`--transfer shm`, services/ipc/shm.ts). */
  shm?: ShmSegments;
};

export type Gateway = {
  url: string;
  port: number;
  registry: Registry;
  /** News from the supervisor that a file server exited or is ready (NatsFileService.nudge). */
  nudge(): void;
  /** Graceful: refuses new connections, lets in-flight responses finish up to timeoutMs. */
  close(timeoutMs?: number): Promise<void>;
};

/**
 * Every connection that arrives while no gateway runs waits in the socket's accept queue: a deep one
 * (the kernel caps it at net.core.somaxconn) holds a restart's worth of them at a few hundred req/s.
 */
const HELD_SOCKET_BACKLOG = 4096;

async function listenOnFd(server: Server, fd: number): Promise<{ host: string; port: number }> {
  server.listen({ fd, backlog: HELD_SOCKET_BACKLOG });
  try {
    await once(server, 'listening');
  } catch (err) {
    throw new Error(
      `cannot listen on the inherited socket (fd ${fd}): ${(err as Error).message}; start the gateway without KSTYLES_LISTEN_FD to bind --port itself`,
    );
  }
  const { address, port } = server.address() as AddressInfo;
  return { host: address, port };
}

export async function startGateway(nc: NatsConnection, options: GatewayOptions): Promise<Gateway> {
  const metrics = createHttpMetrics(STYLE, { defaultMetrics: options.defaultMetrics ?? true });
  const service = new NatsFileService(nc, {
    metrics: createIpcMetrics(metrics.registry),
    ...(options.shm ? { shm: options.shm } : {}),
  });
  const app = createExpressApp({
    style: STYLE,
    service,
    metrics,
    ...(options.deadlineMs !== undefined ? { deadlineMs: options.deadlineMs } : {}),
  });
  const server = createServer(app);
  answerClientErrors(server, STYLE);
  const { host, port } =
    options.fd === undefined
      ? { host: options.host ?? '127.0.0.1', port: await listen(server, options.port, options.host) }
      : await listenOnFd(server, options.fd);
  return {
    url: reachableUrl(host, port),
    port,
    registry: metrics.registry,
    nudge: () => service.nudge(),
    close: async (timeoutMs = 5000) => {
      await closeGracefully(server, timeoutMs);
    },
  };
}
