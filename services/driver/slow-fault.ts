/**
 * The `slow` fault (docs/architecture.md, 'Faults'), switched at run time the same way in every style: the
 * load generator sends SIGUSR2, and each signal turns `slowMs` of added driver latency on or off on top of
 * the configured base. Only a process started with chaos on obeys; the others log the refusal (SIGUSR2's
 * default action would kill them).
 */
import type { Counter } from 'prom-client';
import { logLine } from '../contract/http-server.ts';

/** What the `slow` fault adds to every driver read unless KSTYLES_CHAOS_SLOW_MS says otherwise. */
export const DEFAULT_SLOW_MS = 50;

/** Whatever holds a style's driver latency: DriverChaos itself, or a pool that forwards it to its workers. */
export type LatencyKnob = {
  readonly enabled: boolean;
  readonly latencyMs: number;
  setLatency(ms: number): void;
};

export type SlowFaultOptions = {
  slowMs: number;
  /** kstyles_faults_injected_total, counted each time the fault is switched on. */
  counter: Counter<'style' | 'target' | 'kind'>;
  style: string;
  target: string;
};

/** The SIGUSR2 handler: toggles the fault, counts it, and logs one line either way. */
export function slowFaultToggle(knob: LatencyKnob, options: SlowFaultOptions): () => void {
  const baseMs = knob.latencyMs;
  const { style, target } = options;
  let on = false;
  return () => {
    if (!knob.enabled) {
      logLine({ level: 'warn', msg: 'SIGUSR2 ignored: chaos is off (start with --chaos)', style, target });
      return;
    }
    on = !on;
    knob.setLatency(on ? baseMs + options.slowMs : baseMs);
    if (on) options.counter.inc({ style, target, kind: 'slow' });
    logLine({
      level: 'info',
      msg: on ? 'chaos slow fault on' : 'chaos slow fault off',
      style,
      target,
      driverLatencyMs: knob.latencyMs,
    });
  };
}
