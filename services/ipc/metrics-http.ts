/** A tiny HTTP server for `GET /metrics`, for the servers that have no HTTP of their own (fs, driver). */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import { listen } from '../contract/http-server.ts';

export type MetricsEndpoint = { url: string; port: number; close(): Promise<void> };

export async function serveMetricsHttp(
  registry: Registry,
  port: number,
  host = '127.0.0.1',
): Promise<MetricsEndpoint> {
  const server: Server = createServer((req, res) => {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || req.url?.split('?')[0] !== '/metrics') {
      res
        .writeHead(404, { 'content-type': 'text/plain' })
        .end('not found: this port serves only GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) =>
        res
          .writeHead(200, { 'content-type': registry.contentType })
          .end(req.method === 'HEAD' ? undefined : text),
      (err: unknown) =>
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${String(err)}\n`),
    );
  });
  const bound = await listen(server, port, host);
  return {
    url: `http://${host}:${bound}/metrics`,
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
