import { writeSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { InternalError } from '../contract/errors.ts';

/** Fault hooks of the storage driver (docs/architecture.md, 'Faults'). Inert unless `enabled`. */
export type ChaosOptions = {
  enabled: boolean;
  /** Reading this relative path is the "driver bug": the driver panics. */
  poisonPath: string;
  /** Added to every read. */
  latencyMs: number;
  /** Share of reads that fail with an injected INTERNAL error, 0..1. */
  errorRate: number;
};

export const CHAOS_DEFAULTS: ChaosOptions = {
  enabled: false,
  poisonPath: 'chaos/poison.bin',
  latencyMs: 0,
  errorRate: 0,
};

/** Exit code of a process brought down by a driver panic (EX_SOFTWARE). */
export const PANIC_EXIT_CODE = 70;

/**
 * A driver bug takes down the address space it runs in. On the main thread that is the process; in a
 * worker thread `process.exit` would end only the thread, so the panic signals the whole process, as a
 * fault in shared memory would.
 */
export function panic(reason: string): never {
  // Synchronous: in a worker thread process.stderr is relayed through the main thread, and the SIGKILL
  // below would win the race and lose the line.
  writeSync(2, `${JSON.stringify({ level: 'fatal', msg: 'driver panic', reason, pid: process.pid })}\n`);
  if (!isMainThread) process.kill(process.pid, 'SIGKILL');
  process.exit(PANIC_EXIT_CODE);
}

export class DriverChaos {
  readonly options: ChaosOptions;

  constructor(
    options: Partial<ChaosOptions> = {},
    private readonly random: () => number = Math.random,
    private readonly onPanic: (reason: string) => never = panic,
  ) {
    this.options = { ...CHAOS_DEFAULTS, ...options };
    if (!(this.options.errorRate >= 0 && this.options.errorRate <= 1)) {
      throw new RangeError(`chaos errorRate must be between 0 and 1, got ${this.options.errorRate}`);
    }
    if (!(this.options.latencyMs >= 0)) {
      throw new RangeError(`chaos latencyMs must be 0 or more, got ${this.options.latencyMs}`);
    }
  }

  get enabled(): boolean {
    return this.options.enabled;
  }

  get latencyMs(): number {
    return this.options.latencyMs;
  }

  /** The "slow" fault: changes the added latency at run time (only while chaos is enabled). */
  setLatency(ms: number): void {
    if (!this.options.enabled) throw new Error('chaos is not enabled: start the service with --chaos');
    this.options.latencyMs = ms;
  }

  /** Runs before each read; callers skip it entirely when chaos is off. */
  async beforeRead(relPath: string): Promise<void> {
    if (!this.options.enabled) return;
    if (relPath === this.options.poisonPath) this.onPanic(`poison path ${relPath} read`);
    if (this.options.latencyMs > 0)
      await new Promise((resolve) => setTimeout(resolve, this.options.latencyMs));
    if (this.options.errorRate > 0 && this.random() < this.options.errorRate) {
      throw new InternalError(`injected driver error (chaos error rate ${this.options.errorRate})`);
    }
  }
}
