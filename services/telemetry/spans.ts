/**
 * The spans every style records, on `@opentelemetry/api` alone: the cores (contract, fs, driver) and the
 * transports import this module, never the SDK (services/telemetry/README.md). Until a process entry
 * has registered the SDK (setup.ts), every helper here returns at its first line: no span object, no
 * context, no header work. The API alone is not that cheap: with no provider, `startSpan` still builds a
 * NonRecordingSpan and `startActiveSpan` a context for it, on every call.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type Attributes,
  type Context,
  context,
  type HrTime,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapSetter,
  trace,
} from '@opentelemetry/api';

export { type Span, SpanKind } from '@opentelemetry/api';

/** The instrumentation scope of every span this project records. */
export const TRACER_NAME = 'kernel-styles';

/**
 * Attribute names: the OpenTelemetry semantic conventions where one exists (HTTP, messaging, error),
 * `kstyles.*` for what only this project has.
 */
export const ATTR = {
  httpMethod: 'http.request.method',
  httpRoute: 'http.route',
  httpStatus: 'http.response.status_code',
  urlPath: 'url.path',
  errorType: 'error.type',
  messagingSystem: 'messaging.system',
  messagingDestination: 'messaging.destination.name',
  messagingOperationType: 'messaging.operation.type',
  messagingOperationName: 'messaging.operation.name',
  messagingBodySize: 'messaging.message.body.size',
  /** The file's path relative to the data root, as the fs core normalised it. */
  filePath: 'kstyles.file.path',
  fileSize: 'kstyles.file.size',
  offset: 'kstyles.read.offset',
  length: 'kstyles.read.length',
  /** Which try of a retried request this is (1, 2, …): services/ipc/resilient-requester.ts. */
  attempt: 'kstyles.ipc.attempt',
  /** How one attempt ended: the IpcOutcome, or `crashed` when the instance holding it vanished. */
  outcome: 'kstyles.ipc.outcome',
  /** How a chunk's bytes reach the gateway: grant (from the driver) or copy (through the file server). */
  transfer: 'kstyles.transfer',
  /** On a grant: the subject the driver publishes the bytes to (the gateway's reply inbox). */
  grantTo: 'kstyles.grant.to',
} as const;

/** Span names: one place, so the tests, the console and this README say the same thing. */
export const SPAN = {
  fsStat: 'fs stat',
  fsRead: 'fs read',
  driverRead: 'driver read',
  poolRead: 'pool read',
} as const;

let recording = false;

/** Whether a tracing SDK is registered in this thread (setup.ts says so once it has registered one). */
export function tracingOn(): boolean {
  return recording;
}

/** For setup.ts only: the SDK is registered (true) or shut down (false) in this thread. */
export function markTracingRegistered(on: boolean): void {
  recording = on;
}

const tracer = () => trace.getTracer(TRACER_NAME);

const ORIGIN_MS = performance.timeOrigin;
const ORIGIN: HrTime = [Math.floor(ORIGIN_MS / 1000), Math.round((ORIGIN_MS % 1000) * 1e6)];

/**
 * Now, to the microsecond, as [seconds, nanoseconds] since the epoch. The SDK would stamp a span's start
 * with Date.now(), whole milliseconds, which turns a waterfall of sub-millisecond chunk reads into a
 * heap; every span here is started, ended and annotated with this clock instead.
 */
export function hrNow(): HrTime {
  const elapsed = performance.now();
  let seconds = ORIGIN[0] + Math.floor(elapsed / 1000);
  let nanos = ORIGIN[1] + Math.round((elapsed % 1000) * 1e6);
  if (nanos >= 1e9) {
    seconds += 1;
    nanos -= 1e9;
  }
  return [seconds, nanos];
}

/** A span under the active one (or under `parent`), started now; undefined while tracing is off. */
export function startSpan(
  name: string,
  kind: SpanKind = SpanKind.INTERNAL,
  attributes?: Attributes,
  parent?: Context,
): Span | undefined {
  if (!recording) return undefined;
  return tracer().startSpan(
    name,
    { kind, startTime: hrNow(), ...(attributes ? { attributes } : {}) },
    parent ?? context.active(),
  );
}

/** Marks a span failed with the error's stable code (ServiceError, NATS) or its name. */
export function failSpan(span: Span, error: unknown): void {
  const err = error as { code?: unknown; name?: unknown; message?: unknown };
  span.setAttribute(ATTR.errorType, String(err?.code ?? err?.name ?? 'Error'));
  span.setStatus({ code: SpanStatusCode.ERROR, message: String(err?.message ?? error) });
}

/** Ends a span, failed when `error` is given; nothing without a span. */
export function endSpan(span: Span | undefined, error?: unknown): void {
  if (!span) return;
  if (error !== undefined) failSpan(span, error);
  span.end(hrNow());
}

/**
 * Runs `fn` inside a new span: the spans it starts nest under it, and a rejection marks it failed.
 * While tracing is off `fn` simply runs (with no span).
 */
export function inSpan<T>(
  name: string,
  kind: SpanKind,
  fn: (span: Span | undefined) => Promise<T>,
  start: { parent?: Context; attributes?: Attributes } = {},
): Promise<T> {
  if (!recording) return fn(undefined);
  const parent = start.parent ?? context.active();
  const span = startSpan(name, kind, start.attributes, parent)!;
  return context.with(trace.setSpan(parent, span), async () => {
    try {
      return await fn(span);
    } catch (err) {
      failSpan(span, err);
      throw err;
    } finally {
      span.end(hrNow());
    }
  });
}

/**
 * A grant transfer on the active span (services/ipc/headers.ts, TRANSFER_MODES): where the bytes go, and,
 * on the driver's side, an event when it published them there.
 */
export function traceGrant(to: string, publishedBytes?: number): void {
  if (!recording) return;
  const span = trace.getActiveSpan();
  span?.setAttributes({ [ATTR.transfer]: 'grant', [ATTR.grantTo]: to });
  if (publishedBytes !== undefined) {
    span?.addEvent(
      'grant: bytes published to the requester',
      { [ATTR.grantTo]: to, [ATTR.messagingBodySize]: publishedBytes },
      hrNow(),
    );
  }
}

/**
 * A header map with get/set/keys (NATS MsgHdrs has this shape); a missing header reads as ''.
 * Structural, so this module imports no transport.
 */
export type HeaderMap = {
  get(key: string): string;
  set(key: string, value: string): void;
  keys(): string[];
};

const headerGetter: TextMapGetter<HeaderMap> = {
  get: (carrier, key) => carrier.get(key) || undefined,
  keys: (carrier) => carrier.keys(),
};
const headerSetter: TextMapSetter<HeaderMap> = { set: (carrier, key, value) => carrier.set(key, value) };

/** Writes `span`'s W3C trace context (traceparent, tracestate) into message headers. */
export function injectHeaders(span: Span, headers: HeaderMap): void {
  propagation.inject(trace.setSpan(context.active(), span), headers, headerSetter);
}

/** Writes the active span's trace context into message headers (a publish that gets no span of its own). */
export function injectActiveTrace(headers: HeaderMap): void {
  if (!recording) return;
  propagation.inject(context.active(), headers, headerSetter);
}

/**
 * The W3C trace context a task message carries across a boundary that has no headers (the unikernel's
 * worker threads): `traceparent` and, when there is one, `tracestate`.
 */
export type TraceCarrier = { traceparent?: string; tracestate?: string };

/** `span`'s trace context as a TraceCarrier, for a task message to take along. */
export function traceCarrierOf(span: Span): TraceCarrier {
  const carrier: TraceCarrier = {};
  propagation.inject(trace.setSpan(context.active(), span), carrier);
  return carrier;
}

/** Whether a carried trace context is sampled (its traceparent's flags say so): its spans are recorded. */
export function sampledCarrier(carrier: TraceCarrier): boolean {
  const flags = carrier.traceparent?.split('-')[3];
  return flags !== undefined && (Number.parseInt(flags, 16) & 1) === 1;
}

/** Runs `fn` with the trace context a task message carried as the active one (just `fn` without one). */
export function inCarriedContext<T>(carrier: TraceCarrier | undefined, fn: () => Promise<T>): Promise<T> {
  if (!recording || !carrier) return fn();
  return context.with(propagation.extract(ROOT_CONTEXT, carrier), fn);
}

/** Messaging semantic conventions: a NATS request as its caller sees it, one span per attempt. */
export function startMessagingClientSpan(system: string, subject: string, attempt: number): Span | undefined {
  if (!recording) return undefined;
  return startSpan(`send ${subject}`, SpanKind.CLIENT, {
    [ATTR.messagingSystem]: system,
    [ATTR.messagingDestination]: subject,
    [ATTR.messagingOperationType]: 'send',
    [ATTR.messagingOperationName]: 'request',
    [ATTR.attempt]: attempt,
  });
}

/**
 * A message handler's SERVER span, whose parent is the trace context the message's headers carry (a
 * message without one starts a trace of its own); undefined while tracing is off. Run the handler with
 * inSpanContext and end the span when the reply has left.
 */
export function startMessagingServerSpan(
  system: string,
  subject: string,
  headers: HeaderMap | undefined,
): Span | undefined {
  if (!recording) return undefined;
  const parent = headers ? propagation.extract(ROOT_CONTEXT, headers, headerGetter) : ROOT_CONTEXT;
  return startSpan(
    `process ${subject}`,
    SpanKind.SERVER,
    {
      [ATTR.messagingSystem]: system,
      [ATTR.messagingDestination]: subject,
      [ATTR.messagingOperationType]: 'process',
      [ATTR.messagingOperationName]: 'process',
    },
    parent,
  );
}

/** Runs `fn` with `span` as the active span: the spans `fn` starts nest under it. */
export function inSpanContext<T>(span: Span, fn: () => Promise<T>): Promise<T> {
  return context.with(trace.setSpan(context.active(), span), fn);
}

/**
 * Runs an HTTP request's handling inside a SERVER span: a `traceparent` on the request continues that
 * trace. The span ends when the response is finished or abandoned, with its status code (5xx: failed).
 */
export function inHttpServerSpan<T>(
  req: IncomingMessage,
  res: ServerResponse,
  route: string,
  fn: () => Promise<T>,
): Promise<T> {
  if (!recording) return fn();
  const parent = propagation.extract(ROOT_CONTEXT, req.headers);
  const method = req.method ?? 'GET';
  const span = startSpan(
    `${method} ${route}`,
    SpanKind.SERVER,
    {
      [ATTR.httpMethod]: method,
      [ATTR.httpRoute]: route,
      [ATTR.urlPath]: (req.url ?? '').split('?')[0]!,
    },
    parent,
  )!;
  res.once('close', () => {
    span.setAttribute(ATTR.httpStatus, res.statusCode);
    if (res.statusCode >= 500) {
      span.setAttribute(ATTR.errorType, String(res.statusCode));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    if (!res.writableFinished) span.addEvent('response abandoned before it was finished', hrNow());
    span.end(hrNow());
  });
  return context.with(trace.setSpan(parent, span), fn);
}
