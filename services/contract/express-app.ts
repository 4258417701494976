/**
 * The Express composition of the HTTP contract, shared by the monolith and the microkernel's gateway:
 * Express does the routing, the shared handlers do everything else. Kept lean on purpose: no body
 * parsers, no Express ETag (the fs core computes a strong one), no `x-powered-by`.
 */
import express, { type Express } from 'express';
import {
  type HttpContext,
  serveFile,
  serveHealth,
  serveMetrics,
  serveReady,
  serveUnknownRoute,
} from './http-handler.ts';
import { filePathOf } from './http-semantics.ts';

export function createExpressApp(ctx: HttpContext): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', false);
  // Every method reaches serveFile, which answers 405 itself; req.url is the raw target, never decoded.
  app.all('/files/{*rest}', (req, res) => serveFile(ctx, req, res, filePathOf(req.url) ?? ''));
  app.get('/healthz', (req, res) => serveHealth(ctx, req, res));
  app.get('/readyz', (req, res) => serveReady(ctx, req, res));
  app.get('/metrics', (req, res) => serveMetrics(ctx, req, res));
  app.use((req, res) => serveUnknownRoute(ctx, req, res));
  return app;
}
