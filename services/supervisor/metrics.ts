import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Recovery spans a child's boot (milliseconds) up to a slow dependency (tens of seconds). */
const RECOVERY_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
] as const;

/** The supervisor's own metrics. Labels are child names and restart reasons only: both bounded. */
export function createSupervisorMetrics(registry: Registry) {
  return {
    restarts: new Counter({
      name: 'kstyles_supervisor_restarts_total',
      help: 'Child restarts by the supervisor, by child and reason (crashed, exited, hung, manual, sibling).',
      labelNames: ['service', 'reason'] as const,
      registers: [registry],
    }),
    up: new Gauge({
      name: 'kstyles_supervisor_service_up',
      help: '1 while the child is running and its health check answers, else 0.',
      labelNames: ['service'] as const,
      registers: [registry],
    }),
    recovery: new Histogram({
      name: 'kstyles_supervisor_recovery_seconds',
      help: 'From a detected fault (exit or hang) to the restarted child answering its health check.',
      buckets: [...RECOVERY_BUCKETS],
      registers: [registry],
    }),
  };
}

export type SupervisorMetrics = ReturnType<typeof createSupervisorMetrics>;
