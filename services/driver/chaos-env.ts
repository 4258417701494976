/**
 * The one reader of the chaos environment (docs/architecture.md, 'Faults'): KSTYLES_CHAOS_LATENCY_MS,
 * KSTYLES_CHAOS_ERROR_RATE and KSTYLES_CHAOS_SLOW_MS, checked so that a typo names its variable instead
 * of surfacing later as a RangeError or a silent default. The monolith, the driver server and the
 * unikernel read them through here. And the name of the driver server's crash-at-start variable.
 */
import { UsageError } from '../../cli/args.ts';
import { DEFAULT_SLOW_MS } from './slow-fault.ts';

/**
 * The driver server's crash-at-start hook (the `crashloop` fault): with chaos on, a start that finds
 * this variable set exits at once (exit 70). Its supervisor sets it, for the next N starts only, when
 * asked through its control API (`crashloop`; the child spec's `crashAtStartEnv` names it); the value
 * says which start of how many (`2 of 5`).
 */
export const CRASH_AT_START_ENV = 'KSTYLES_DRIVER_CRASH_AT_START';

export type ChaosEnv = {
  /** Added to every driver read, milliseconds. */
  latencyMs: number;
  /** Share of driver reads (0..1) that fail. */
  errorRate: number;
  /** What SIGUSR2's `slow` fault adds to every read, milliseconds. */
  slowMs: number;
};

/** The chaos settings of `command`; with chaos off nothing is read and nothing is added. */
export function readChaosEnv(
  command: string,
  enabled: boolean,
  env: NodeJS.ProcessEnv = process.env,
): ChaosEnv {
  if (!enabled) return { latencyMs: 0, errorRate: 0, slowMs: 0 };
  const number = (name: string, fallback: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < 0 || value > max) {
      throw new UsageError(`kstyles ${command}: ${name} must be a number from 0 to ${max}, got '${raw}'.`);
    }
    return value;
  };
  return {
    latencyMs: number('KSTYLES_CHAOS_LATENCY_MS', 0, 60_000),
    errorRate: number('KSTYLES_CHAOS_ERROR_RATE', 0, 1),
    slowMs: number('KSTYLES_CHAOS_SLOW_MS', DEFAULT_SLOW_MS, 60_000),
  };
}
