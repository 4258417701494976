/**
 * The Express composition of the HTTP contract, shared by the monolith and the microkernel's gateway:
 * Express does the routing, the shared handlers do everything else. Kept lean on purpose: no body
 * parsers, no Express ETag (the fs core computes a strong one), no `x-powered-by`.
 */
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import {
  type HttpContext,
  sendProblem,
  serveFile,
  serveHealth,
  serveMetrics,
  serveReady,
  serveUnknownRoute,
} from '../contract/http-handler.ts';
import { filePathOf } from '../contract/http-semantics.ts';

export function createExpressApp(ctx: HttpContext): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', false);
  // Every method reaches serveFile, which answers 405 itself; req.url is the raw target, never decoded.
  // Matched by hand, not with a '/files/{*rest}' pattern: Express decodes pattern parameters and answers a
  // malformed escape ('/files/%zz') with its own HTML 400 and a stack trace.
  app.use((req, res, next) => {
    const rawPath = filePathOf(req.url);
    if (rawPath === null) return next();
    void serveFile(ctx, req, res, rawPath);
  });
  app.get('/healthz', (req, res) => serveHealth(ctx, req, res));
  app.get('/readyz', (req, res) => serveReady(ctx, req, res));
  app.get('/metrics', (req, res) => serveMetrics(ctx, req, res));
  app.use((req, res) => serveUnknownRoute(ctx, req, res));
  // Whatever Express itself might throw is answered as problem+json too, never as its HTML error page.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) =>
    sendProblem(ctx, req, res, err),
  );
  return app;
}
