/**
 * The one `/metrics` endpoint of the processes that have no contract HTTP server of their own: the
 * supervisor, the microkernel's file server and driver, and the load generator. Its method policy is the
 * contract's: GET and HEAD answer, any other method on /metrics is 405, any other path 404. A process
 * may add plain-text status paths beside it (the supervisor's /started).
 */
import { createServer } from 'node:http';
import type { Registry } from 'prom-client';
import { listen, reachableUrl } from './http-server.ts';

export type MetricsEndpoint = { url: string; port: number; close(): Promise<void> };

/** A plain-text status answered on a path beside /metrics, computed at each request. */
export type StatusRoute = () => { status: number; text: string };

/**
 * Serves the registry on host:port (0 = any free port). The URL is one this machine can fetch (a
 * wildcard address is reported as its loopback); a port in use is an error that names it.
 */
export async function serveMetricsEndpoint(
  registry: Registry,
  port: number,
  options: { host?: string; flag?: string; routes?: Record<string, StatusRoute> } = {},
): Promise<MetricsEndpoint> {
  const { host = '127.0.0.1', flag = '--metrics-port', routes = {} } = options;
  const paths = ['/metrics', ...Object.keys(routes)];
  const server = createServer((req, res) => {
    const pathname = req.url?.split('?')[0] ?? '/';
    if (!paths.includes(pathname)) {
      res
        .writeHead(404, { 'content-type': 'text/plain' })
        .end(`not found: this port serves only GET ${paths.join(', ')}\n`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res
        .writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' })
        .end(`method ${req.method} not allowed: use GET ${pathname}\n`);
      return;
    }
    const route = routes[pathname];
    if (route) {
      const { status, text } = route();
      res.writeHead(status, { 'content-type': 'text/plain' }).end(req.method === 'HEAD' ? undefined : text);
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
  const bound = await listen(server, port, host, flag);
  return {
    url: reachableUrl(host, bound, '/metrics'),
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
