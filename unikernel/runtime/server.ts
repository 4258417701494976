/**
 * The unikernel's composition: node:http + the shared request listener + the `fs` core + the worker-pool
 * driver, in one process. No framework, no message bus, no admin routes.
 */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import type { BundleInventory } from '../../services/contract/code-inventory.ts';
import { answerClientErrors, createRequestListener } from '../../services/contract/http-handler.ts';
import { closeGracefully, listen } from '../../services/contract/http-server.ts';
import { createHttpMetrics } from '../../services/contract/metrics.ts';
import { FileSystem } from '../../services/fs/file-system.ts';
import { PoolBlockReader, type PoolOptions } from './pool.ts';

export const STYLE = 'unikernel';

export type UnikernelOptions = PoolOptions & {
  root: string;
  port: number;
  host: string;
  /** The bundle this process runs (its build's metafile), for the code counted on /metrics. */
  bundle?: BundleInventory | undefined;
};

export type RunningUnikernel = {
  port: number;
  server: Server;
  reader: PoolBlockReader;
  registry: Registry;
  /** Graceful stop; resolves true when every in-flight request finished within `timeoutMs`. */
  close(timeoutMs: number): Promise<boolean>;
};

export async function startUnikernel(options: UnikernelOptions): Promise<RunningUnikernel> {
  const metrics = createHttpMetrics(STYLE, {
    security: { dataDir: options.root, ...(options.bundle ? { bundle: options.bundle } : {}) },
  });
  const reader = new PoolBlockReader({ ...options, registry: metrics.registry });
  let fileSystem: FileSystem;
  try {
    fileSystem = await FileSystem.mount(options.root, reader);
  } catch (err) {
    await reader.close();
    throw err;
  }
  const server = createServer(
    { keepAliveTimeout: 5000 },
    createRequestListener({ style: STYLE, service: fileSystem, metrics }),
  );
  answerClientErrors(server, STYLE);
  let port: number;
  try {
    port = await listen(server, options.port, options.host);
  } catch (err) {
    await fileSystem.close();
    throw err;
  }
  return {
    port,
    server,
    reader,
    registry: metrics.registry,
    async close(timeoutMs) {
      const finished = await closeGracefully(server, timeoutMs);
      await fileSystem.close();
      return finished;
    },
  };
}
