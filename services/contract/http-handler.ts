/**
 * The HTTP contract on node's request/response objects. Express apps (monolith, gateway) call these from
 * their routes; the unikernel uses `createRequestListener` directly on node:http. Same code, same bytes.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { inHttpServerSpan } from '../telemetry/spans.ts';
import {
  HeadersTooLargeError,
  InvalidPathError,
  MethodNotAllowedError,
  NotFoundError,
  RangeNotSatisfiableError,
  TimeoutError,
  toServiceError,
  UnavailableError,
} from './errors.ts';
import { type CallOptions, DEFAULT_DEADLINE_MS, type FileService, type OpenFile } from './file-service.ts';
import {
  contentRange,
  fileHeaders,
  filePathOf,
  ifNoneMatchHit,
  ifRangeHolds,
  parseRange,
  pathOf,
} from './http-semantics.ts';
import { logLine } from './http-server.ts';
import { type HttpMetrics, Route } from './metrics.ts';

export type HttpContext = {
  style: string;
  service: FileService;
  deadlineMs?: number;
  metrics?: HttpMetrics;
};

const PROBLEM_JSON = 'application/problem+json';
/** The route of every file request, as its trace span names it (`GET /files/*`). */
const FILES_ROUTE = '/files/*';

/** Records the request's duration and status once the response is finished or abandoned. */
export function instrument(ctx: HttpContext, res: ServerResponse, route: Route): void {
  const metrics = ctx.metrics;
  if (!metrics) return;
  const started = process.hrtime.bigint();
  res.once('close', () => {
    metrics.observe(route, res.statusCode, Number(process.hrtime.bigint() - started) / 1e9);
  });
}

export function sendProblem(
  ctx: HttpContext,
  req: IncomingMessage,
  res: ServerResponse,
  error: unknown,
): void {
  const err = toServiceError(error);
  if (res.headersSent) {
    // The status line is gone: the only honest signal left is a cut connection, and the log says why.
    logLine({
      level: 'warn',
      msg: 'response cut after its status line',
      style: ctx.style,
      path: pathOf(req.url ?? ''),
      code: err.code,
      detail: err.message,
    });
    res.destroy(err);
    return;
  }
  const body = JSON.stringify(err.toProblem(pathOf(req.url ?? '')));
  const headers: Record<string, string | number> = {
    'content-type': PROBLEM_JSON,
    'content-length': Buffer.byteLength(body),
    'x-kernel-style': ctx.style,
    'cache-control': 'no-store',
  };
  if (err.retryAfterSeconds !== undefined) headers['retry-after'] = err.retryAfterSeconds;
  if (err instanceof RangeNotSatisfiableError) headers['content-range'] = `bytes */${err.size}`;
  if (err instanceof MethodNotAllowedError) headers.allow = 'GET, HEAD';
  res.writeHead(err.status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

function sendJson(
  ctx: HttpContext,
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  value: unknown,
): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-kernel-style': ctx.style,
    'cache-control': 'no-store',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** Fails with TIMEOUT when `promise` has not settled by `deadline`. */
export async function withDeadline<T>(promise: Promise<T>, deadline: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new TimeoutError(`${what} did not answer within the request deadline`)),
      Math.max(0, deadline - Date.now()),
    );
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Waits for 'drain' or 'close', then removes both listeners (else each chunk leaks two). Plain
 * listeners, not `once` with an AbortSignal: aborting one builds an AbortError, once per chunk written
 * to a slow socket.
 */
function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * GET/HEAD /files/<rawPath>: status, headers and streamed bytes per
 * docs/architecture.md, 'The HTTP contract'.
 */
export function serveFile(
  ctx: HttpContext,
  req: IncomingMessage,
  res: ServerResponse,
  rawPath: string,
): Promise<void> {
  instrument(ctx, res, Route.files);
  // One SERVER span per file request (services/telemetry); /healthz, /readyz and /metrics are not
  // traced: the supervisors' heartbeats would bury the requests.
  return inHttpServerSpan(req, res, FILES_ROUTE, () => answerFile(ctx, req, res, rawPath));
}

async function answerFile(
  ctx: HttpContext,
  req: IncomingMessage,
  res: ServerResponse,
  rawPath: string,
): Promise<void> {
  try {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new MethodNotAllowedError(req.method ?? '?');
    const deadlineMs = ctx.deadlineMs ?? DEFAULT_DEADLINE_MS;
    const deadline = Date.now() + deadlineMs;
    const abort = new AbortController();
    // Only a client that left early aborts the work (an abort builds an exception: not on every request).
    res.once('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    const statOnly = req.method === 'HEAD' || req.headers['if-none-match'] !== undefined;
    const options = { deadline, signal: abort.signal, statOnly };
    const file = await withDeadline(ctx.service.open(rawPath, options), deadline, 'the file service');
    try {
      await respondWithFile(ctx, req, res, file, options, deadlineMs);
    } finally {
      await file.close();
    }
  } catch (err) {
    sendProblem(ctx, req, res, err);
  }
}

/** The response to a GET or HEAD of a file `open` found: 304, 416, headers only, or the bytes. */
async function respondWithFile(
  ctx: HttpContext,
  req: IncomingMessage,
  res: ServerResponse,
  file: OpenFile,
  options: CallOptions,
  deadlineMs: number,
): Promise<void> {
  const deadline = options.deadline;
  // After the first chunk each chunk gets a deadline of its own, from when it is asked for: a client
  // that reads slowly holds its stream open, but the service must still answer every chunk in time.
  const nextChunk = (chunks: AsyncIterator<Uint8Array>) => {
    options.deadline = Math.max(options.deadline, Date.now() + deadlineMs);
    return withDeadline(chunks.next(), options.deadline, 'the file service');
  };
  const stat = file.stat;
  const headers: Record<string, string | number> = fileHeaders(stat, ctx.style);
  if (ifNoneMatchHit(req.headers['if-none-match'], stat.etag)) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  const ifRange = req.headers['if-range'];
  const decision = ifRangeHolds(Array.isArray(ifRange) ? ifRange[0] : ifRange, stat)
    ? parseRange(req.headers.range, stat.size)
    : ({ kind: 'full' } as const);
  if (decision.kind === 'unsatisfiable') {
    throw new RangeNotSatisfiableError(
      `${stat.path} has ${stat.size} bytes; no requested range starts inside it`,
      stat.size,
    );
  }
  const range = decision.kind === 'partial' ? decision.range : { start: 0, end: stat.size - 1 };
  headers['content-length'] = range.end - range.start + 1;
  if (decision.kind === 'partial') headers['content-range'] = contentRange(range, stat.size);
  if (req.method === 'HEAD' || stat.size === 0) {
    res.writeHead(decision.kind === 'partial' ? 206 : 200, headers);
    res.end();
    return;
  }
  const chunks = file.read(range, options)[Symbol.asyncIterator]();
  // Read the first chunk before the status line, so a failing read still gets a proper error status.
  const first = await withDeadline(chunks.next(), deadline, 'the file service');
  res.writeHead(decision.kind === 'partial' ? 206 : 200, headers);
  if (!first.done && first.value.byteLength === headers['content-length']) {
    // The whole body in one chunk (most files): headers and bytes leave in one write.
    await chunks.return?.();
    res.end(first.value);
    return;
  }
  for (let next = first; !next.done; next = await nextChunk(chunks)) {
    if (res.destroyed) {
      await chunks.return?.();
      return;
    }
    if (!res.write(next.value)) await drainedOrClosed(res);
  }
  res.end();
}

export function serveHealth(ctx: HttpContext, req: IncomingMessage, res: ServerResponse): void {
  instrument(ctx, res, Route.healthz);
  sendJson(ctx, req, res, 200, {
    status: 'ok',
    style: ctx.style,
    pid: process.pid,
    uptimeSeconds: process.uptime(),
  });
}

export async function serveReady(ctx: HttpContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  instrument(ctx, res, Route.readyz);
  try {
    const deadline = Date.now() + 1000;
    const report = await withDeadline(ctx.service.ready({ deadline }), deadline, 'the readiness check');
    if (!report.ready) throw new UnavailableError(`not ready: ${report.detail}`);
    sendJson(ctx, req, res, 200, { status: 'ready', style: ctx.style, detail: report.detail });
  } catch (err) {
    sendProblem(ctx, req, res, err);
  }
}

export async function serveMetrics(
  ctx: HttpContext,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  instrument(ctx, res, Route.metrics);
  if (!ctx.metrics) {
    sendProblem(ctx, req, res, new NotFoundError('this build exposes no metrics'));
    return;
  }
  const body = await ctx.metrics.registry.metrics();
  res.writeHead(200, { 'content-type': ctx.metrics.registry.contentType, 'x-kernel-style': ctx.style });
  res.end(req.method === 'HEAD' ? undefined : body);
}

export function serveUnknownRoute(ctx: HttpContext, req: IncomingMessage, res: ServerResponse): void {
  instrument(ctx, res, Route.unknown);
  sendProblem(
    ctx,
    req,
    res,
    new NotFoundError(
      `no route for ${pathOf(req.url ?? '').slice(0, 200)}: use /files/<path>, /healthz, /readyz or /metrics`,
    ),
  );
}

/** The whole contract as a node:http request listener (no framework). */
export function createRequestListener(ctx: HttpContext): (req: IncomingMessage, res: ServerResponse) => void {
  const routes = new Map<string, (req: IncomingMessage, res: ServerResponse) => unknown>([
    ['/healthz', (req, res) => serveHealth(ctx, req, res)],
    ['/readyz', (req, res) => serveReady(ctx, req, res)],
    ['/metrics', (req, res) => serveMetrics(ctx, req, res)],
  ]);
  return (req, res) => {
    const url = req.url ?? '';
    const rawPath = filePathOf(url);
    if (rawPath !== null) {
      void serveFile(ctx, req, res, rawPath);
      return;
    }
    const route = routes.get(pathOf(url));
    if (!route) return serveUnknownRoute(ctx, req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      instrument(ctx, res, Route.unknown);
      return sendProblem(ctx, req, res, new MethodNotAllowedError(req.method ?? '?'));
    }
    void route(req, res);
  };
}

/**
 * Requests node's parser rejects (a raw space or control byte in the request line, oversized headers)
 * never reach a route; answer them with a problem+json too instead of node's bare 400.
 */
export function answerClientErrors(server: Server, style: string): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable || (err.code === 'ECONNRESET' && !socket.readable)) {
      socket.destroy();
      return;
    }
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    const detail = `the HTTP request could not be parsed (${err.code ?? err.message})`;
    const problem = (tooLarge ? new HeadersTooLargeError(detail) : new InvalidPathError(detail)).toProblem();
    const status = problem.status;
    const body = JSON.stringify(problem);
    socket.end(
      `HTTP/1.1 ${status} ${tooLarge ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
        `content-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
        `x-kernel-style: ${style}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
}
