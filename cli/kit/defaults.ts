/**
 * The names and default ports every entry point, the lab, the benchmark and the load reports share
 * (docs/architecture.md, 'The styles'). Plain constants: the unikernel's bundle imports them too.
 */

/** The three styles, in the order every table and report shows them. */
export const STYLES = ['monolith', 'microkernel', 'unikernel'] as const;
export type Style = (typeof STYLES)[number];

/**
 * Default ports of a local run, the lab and the compose stack; 0 given for any of them means "any free
 * port".
 */
export const DEFAULT_PORTS = {
  monolith: 8081,
  microkernel: 8082,
  unikernel: 8083,
  nats: 4222,
  natsMonitor: 8222,
  labMetrics: 9479,
  console: 8084,
  supervisorMetrics: 9480,
  fsMetrics: 9481,
  driverMetrics: 9482,
} as const;

/** The NATS a server entry connects to when neither --nats nor NATS_URL names one. */
export const DEFAULT_NATS_URL = `nats://127.0.0.1:${DEFAULT_PORTS.nats}`;
