/**
 * The chaos build's run-time fault: SIGUSR2 toggles 'slow' (docs/architecture.md, 'Faults') exactly as in the
 * monolith and the microkernel's driver, so the load generator's signal driver treats every style alike.
 * main.ts calls this only when the build has chaos compiled in.
 */
import type { Registry } from 'prom-client';
import { createFaultsInjectedCounter } from '../../services/contract/metrics.ts';
import { type LatencyKnob, slowFaultToggle } from '../../services/driver/slow-fault.ts';
import type { PoolBlockReader } from './pool.ts';
import { STYLE } from './server.ts';

export function slowToggle(reader: PoolBlockReader, registry: Registry, slowMs: number): () => void {
  // The pool forwards the latency to every worker; the knob is its view of the driver's setting.
  const knob: LatencyKnob = {
    get enabled() {
      return reader.chaosEnabled;
    },
    get latencyMs() {
      return reader.latencyMsNow;
    },
    setLatency: (ms) => reader.setLatency(ms),
  };
  return slowFaultToggle(knob, {
    slowMs,
    counter: createFaultsInjectedCounter(registry),
    style: STYLE,
    target: STYLE,
  });
}
