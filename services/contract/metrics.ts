import {
  Counter,
  collectDefaultMetrics,
  exponentialBuckets,
  Histogram,
  type LabelValues,
  Registry,
} from 'prom-client';
import { registerSecurityMetrics, type SecurityMetricsOptions } from './security-metrics.ts';

/**
 * Latency buckets from 50 µs doubling to ~13 s: prom-client's defaults start at 5 ms and would hide every
 * in-process request. The load generator and the supervisor use the same scheme.
 */
export const LATENCY_BUCKETS_SECONDS = exponentialBuckets(0.00005, 2, 19);

/** A latency histogram on the shared buckets (seconds), registered in `registry`. */
export function createLatencyHistogram<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
): Histogram<L> {
  return new Histogram({ name, help, labelNames, buckets: LATENCY_BUCKETS_SECONDS, registers: [registry] });
}

/**
 * Observes into a histogram through one labelled child per label combination, found by a string key
 * the caller builds from the values: prom-client validates and hashes the labels object on every
 * observe otherwise, and these run once per message on the microkernel's hops.
 */
export function keyedObserver<L extends string>(
  histogram: Histogram<L>,
): (key: string, labels: () => LabelValues<L>, seconds: number) => void {
  const children = new Map<string, Histogram.Internal<L>>();
  return (key, labels, seconds) => {
    let child = children.get(key);
    if (!child) {
      child = histogram.labels(labels());
      children.set(key, child);
    }
    child.observe(seconds);
  };
}

/** Route labels: a fixed set, never a file path (unbounded cardinality). */
export const Route = {
  files: 'files',
  healthz: 'healthz',
  readyz: 'readyz',
  metrics: 'metrics',
  unknown: 'unknown',
} as const;
export type Route = (typeof Route)[keyof typeof Route];

/**
 * `kstyles_faults_injected_total` (docs/architecture.md, 'Faults'), for faults a process injects into itself.
 */
export function createFaultsInjectedCounter(registry: Registry): Counter<'style' | 'target' | 'kind'> {
  return new Counter({
    name: 'kstyles_faults_injected_total',
    help: 'Faults injected into this process, by style, target and kind',
    labelNames: ['style', 'target', 'kind'] as const,
    registers: [registry],
  });
}

/**
 * `kstyles_ipc_request_duration_seconds{from,to,op,outcome}` (docs/architecture.md, 'Metrics'): one hop to
 * another server (the microkernel's NATS request/reply) or thread (the unikernel's worker pool), so a
 * dashboard shows both prices side by side.
 */
export function createIpcDurationHistogram(registry: Registry): Histogram<'from' | 'to' | 'op' | 'outcome'> {
  return createLatencyHistogram(
    registry,
    'kstyles_ipc_request_duration_seconds',
    'Duration of one hop to another server (NATS) or thread (worker pool), measured by the caller, by outcome',
    ['from', 'to', 'op', 'outcome'],
  );
}

export type HttpMetrics = {
  registry: Registry;
  observe(route: Route, code: number, seconds: number): void;
};

/**
 * The metrics of a process that parses requests (every style's /metrics): HTTP durations and counts, by
 * default prom-client's process metrics and the Security row's `kstyles_security_*` gauges
 * (security-metrics.ts; `security: false` leaves them out, options such as the data root go in; without
 * `security`, they come with the process metrics).
 */
export function createHttpMetrics(
  style: string,
  options: { registry?: Registry; defaultMetrics?: boolean; security?: SecurityMetricsOptions | false } = {},
): HttpMetrics {
  const registry = options.registry ?? new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  // With the process metrics by default; tests that leave those out leave these out too, unless asked.
  const security = options.security ?? (options.defaultMetrics === false ? false : {});
  if (security !== false) registerSecurityMetrics(registry, security);
  const duration = createLatencyHistogram(
    registry,
    'kstyles_http_request_duration_seconds',
    'HTTP request duration, from request to response end, by route and status code',
    ['style', 'route', 'code'],
  );
  const requests = new Counter({
    name: 'kstyles_http_requests_total',
    help: 'HTTP requests answered, by route and status code',
    labelNames: ['style', 'route', 'code'] as const,
    registers: [registry],
  });
  return {
    registry,
    observe(route, code, seconds) {
      const labels = { style, route, code: String(code) };
      duration.observe(labels, seconds);
      requests.inc(labels);
    },
  };
}
