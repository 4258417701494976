/**
 * The chaos build's run-time fault: SIGUSR2 toggles 'slow' (DESIGN.md section 6), as in the monolith, so
 * the load generator's signal driver treats both whole-process styles alike. main.ts calls this only
 * when the build has chaos compiled in; the production bundle does not contain it.
 */
import { Counter, type Registry } from 'prom-client';
import { logLine } from '../services/contract/http-server.ts';
import type { PoolBlockReader } from './pool.ts';
import { STYLE } from './server.ts';

/** Added to every driver read while 'slow' is on, unless KSTYLES_CHAOS_SLOW_MS says otherwise. */
export const DEFAULT_SLOW_MS = 50;

export function slowToggle(reader: PoolBlockReader, registry: Registry, slowMs: number): () => void {
  const injected = new Counter({
    name: 'kstyles_faults_injected_total',
    help: 'Faults injected into this process, by style, target and kind',
    labelNames: ['style', 'target', 'kind'] as const,
    registers: [registry],
  });
  const baseMs = reader.latencyMsNow;
  let slow = false;
  return () => {
    if (!reader.chaosEnabled) {
      logLine({ level: 'warn', msg: 'SIGUSR2 ignored: chaos is off (start with --chaos)', style: STYLE });
      return;
    }
    slow = !slow;
    reader.setLatency(slow ? baseMs + slowMs : baseMs);
    if (slow) injected.inc({ style: STYLE, target: STYLE, kind: 'slow' });
    logLine({
      level: 'info',
      msg: slow ? 'chaos slow fault on' : 'chaos slow fault off',
      style: STYLE,
      driverLatencyMs: reader.latencyMsNow,
    });
  };
}
