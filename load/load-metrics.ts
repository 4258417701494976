import { Counter, Registry } from 'prom-client';
import { createLatencyHistogram } from '../services/contract/metrics.ts';
import { serveMetricsEndpoint } from '../services/contract/metrics-server.ts';
import { OUTCOMES, type Outcome } from './types.ts';

export type LoadMetrics = {
  port: number;
  registry: Registry;
  /** Returns the per-request observer of one target (label children resolved once). */
  observer(target: string): (outcome: Outcome, seconds: number) => void;
  fault(style: string, target: string, kind: string): void;
  close(): Promise<void>;
};

/** The client-side view on /metrics while a run lasts (its own registry: nothing global). */
export async function startLoadMetrics(port: number): Promise<LoadMetrics> {
  const registry = new Registry();
  const duration = createLatencyHistogram(
    registry,
    'kstyles_load_request_duration_seconds',
    'Request latency seen by the load generator, from the intended send time (coordinated-omission corrected)',
    ['target', 'outcome'],
  );
  const requests = new Counter({
    name: 'kstyles_load_requests_total',
    help: 'Requests completed by the load generator, by outcome class',
    labelNames: ['target', 'outcome'] as const,
    registers: [registry],
  });
  const faults = new Counter({
    name: 'kstyles_load_faults_injected_total',
    help: 'Faults injected by the load generator',
    labelNames: ['style', 'target', 'kind'] as const,
    registers: [registry],
  });
  // Every IPv4 address: a Prometheus in another container scrapes the load generator's view.
  const endpoint = await serveMetricsEndpoint(registry, port, { host: '0.0.0.0' });
  return {
    port: endpoint.port,
    registry,
    observer(target) {
      const children = Object.fromEntries(
        OUTCOMES.map((o) => [o, { h: duration.labels(target, o), c: requests.labels(target, o) }]),
      ) as Record<Outcome, { h: ReturnType<typeof duration.labels>; c: ReturnType<typeof requests.labels> }>;
      return (outcome, seconds) => {
        const child = children[outcome];
        child.h.observe(seconds);
        child.c.inc();
      };
    },
    fault(style, target, kind) {
      faults.labels(style, target, kind).inc();
    },
    close: () => endpoint.close(),
  };
}
