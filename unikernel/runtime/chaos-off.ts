/**
 * The production build's stand-in for `services/driver/chaos.ts`. The esbuild bundle of the default
 * (non-chaos) build resolves the driver's `./chaos.ts` import to this module, so the poison path, the
 * injected latency and error rate, and `panic` are not in the executable at all:
 * docs/architecture.md, 'Faults', "a production build of the unikernel has none". Same exports and shapes, no
 * behaviour.
 */
import type { ChaosOptions } from '../../services/driver/chaos.ts';

export type { ChaosOptions };

export const CHAOS_DEFAULTS: ChaosOptions = {
  enabled: false,
  poisonPath: '',
  latencyMs: 0,
  errorRate: 0,
};

export const PANIC_EXIT_CODE = 70;

export function panic(reason: string): never {
  throw new Error(`this build has no fault injection (asked to panic: ${reason})`);
}

export class DriverChaos {
  readonly options: ChaosOptions = { ...CHAOS_DEFAULTS };

  constructor(options: Partial<ChaosOptions> = {}) {
    if (options.enabled) {
      throw new Error(
        'this build has no fault injection: build it with `npm run build:unikernel -- --chaos`',
      );
    }
  }

  get enabled(): boolean {
    return false;
  }

  get latencyMs(): number {
    return 0;
  }

  setLatency(): void {
    throw new Error('this build has no fault injection: build it with `npm run build:unikernel -- --chaos`');
  }

  async beforeRead(): Promise<void> {}
}
