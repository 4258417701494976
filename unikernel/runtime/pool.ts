/**
 * The unikernel's storage path: a BlockReader that performs driver reads in a piscina worker-thread pool
 * inside the same process (one address space, several threads). Reads up to `inlineMaxBytes` run on the
 * main thread's own driver instead, because a hop through the pool costs more than such a read (see
 * README.md, "The pool"). Stat and confinement stay on the main thread in the `fs` core.
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type { Histogram, Registry } from 'prom-client';
import { errorFromCode, InternalError, isErrorCode } from '../../services/contract/errors.ts';
import { createIpcDurationHistogram } from '../../services/contract/metrics.ts';
import type { BlockReader, FileRef } from '../../services/driver/block-reader.ts';
import { type ChaosOptions, DriverChaos } from '../../services/driver/chaos.ts';
import { StorageDriver } from '../../services/driver/storage-driver.ts';
import { ATTR, endSpan, SPAN, SpanKind, startSpan, traceCarrierOf } from '../../services/telemetry/spans.ts';
import type { PoolWorkerData, ReadFailure, ReadTask } from './read-task.ts';

export type PoolOptions = {
  /** The file piscina loads the `read` and `ping` tasks from (read-task.dev.mjs under tsx, or the built worker bundle). */
  taskFile: string;
  threads?: number;
  /** Reads of at most this many bytes stay on the main thread; 0 sends every read to the pool. */
  inlineMaxBytes?: number;
  chaos?: Partial<ChaosOptions>;
  /** Reads one worker keeps in flight (they are I/O: libuv does the waiting). */
  tasksPerWorker?: number;
  /** Where to record each hop through the pool (kstyles_ipc_request_duration_seconds). */
  registry?: Registry;
};

/** Measured in README.md: below this a read is cheaper on the main thread than a hop through the pool. */
export const DEFAULT_INLINE_MAX_BYTES = 64 * 1024;

const MAX_OPEN_FILES = 64;
export const DEFAULT_TASKS_PER_WORKER = 16;

export class PoolBlockReader implements BlockReader {
  readonly pool: Piscina;
  readonly threads: number;
  readonly inlineMaxBytes: number;
  private readonly inline: StorageDriver;
  /** Shared with every worker: the driver latency the 'slow' fault asks for. */
  private readonly latencyMs = new Int32Array(new SharedArrayBuffer(4));
  private readonly hops: Histogram<'from' | 'to' | 'op' | 'outcome'> | undefined;

  constructor(options: PoolOptions) {
    this.threads = options.threads ?? availableParallelism();
    this.inlineMaxBytes = options.inlineMaxBytes ?? DEFAULT_INLINE_MAX_BYTES;
    const chaos = options.chaos ?? {};
    this.inline = new StorageDriver({ chaos: new DriverChaos(chaos), maxOpenFiles: MAX_OPEN_FILES });
    // The pool is the unikernel's IPC: its hops go in the same histogram as the microkernel's NATS hops
    // (docs/architecture.md, 'Metrics'), so a dashboard shows both prices side by side.
    this.hops = options.registry ? createIpcDurationHistogram(options.registry) : undefined;
    Atomics.store(this.latencyMs, 0, chaos.latencyMs ?? 0);
    const workerData: PoolWorkerData = {
      chaos,
      maxOpenFiles: MAX_OPEN_FILES,
      latencyMs: this.latencyMs.buffer as SharedArrayBuffer,
    };
    this.pool = new Piscina({
      filename: options.taskFile,
      minThreads: this.threads,
      maxThreads: this.threads,
      concurrentTasksPerWorker: options.tasksPerWorker ?? DEFAULT_TASKS_PER_WORKER,
      // Idle workers stay: the pool is the image's fixed set of "cores".
      idleTimeout: Number.POSITIVE_INFINITY,
      workerData,
    });
    // A worker that dies of an uncaught error is replaced by piscina and its tasks fail; say so, live on.
    this.pool.on('error', (err: Error) => {
      process.stderr.write(
        `${JSON.stringify({ level: 'error', msg: 'worker thread failed; piscina replaces it', error: err.message })}\n`,
      );
    });
  }

  async read(file: FileRef, position: number, length: number): Promise<Uint8Array> {
    if (length <= this.inlineMaxBytes) return this.inline.read(file, position, length);
    const started = process.hrtime.bigint();
    let outcome = 'ok';
    // The hop as a CLIENT span; its trace context rides in the task to the worker's `driver read` span.
    const span = startSpan(SPAN.poolRead, SpanKind.CLIENT);
    span?.setAttributes({ [ATTR.filePath]: file.relPath, [ATTR.offset]: position, [ATTR.length]: length });
    const task: ReadTask = span
      ? { file, position, length, trace: traceCarrierOf(span) }
      : { file, position, length };
    try {
      let result: Uint8Array | ReadFailure;
      try {
        result = await this.pool.run(task, { name: 'read' });
      } catch (err) {
        // A task that threw (a bug, not a reported failure) fails this request only; the worker lives on.
        throw new InternalError(`read task failed in the worker pool: ${(err as Error).message}`, {
          cause: err,
        });
      }
      if (result instanceof Uint8Array) return result;
      throw isErrorCode(result.code)
        ? errorFromCode(result.code, result.detail)
        : new InternalError(`worker pool answered an unknown error: ${result.detail}`);
    } catch (err) {
      outcome = 'error';
      endSpan(span, err);
      throw err;
    } finally {
      if (outcome === 'ok') endSpan(span);
      this.hops?.observe(
        { from: 'fs', to: 'pool', op: 'read', outcome },
        Number(process.hrtime.bigint() - started) / 1e9,
      );
    }
  }

  /** Whether the driver fault hooks are on (chaos build started with --chaos). */
  get chaosEnabled(): boolean {
    return this.inline.chaos.enabled;
  }

  get latencyMsNow(): number {
    return Atomics.load(this.latencyMs, 0);
  }

  /** The 'slow' fault: every driver read, on the main thread and in every worker, waits `ms` first. */
  setLatency(ms: number): void {
    this.inline.chaos.setLatency(ms);
    Atomics.store(this.latencyMs, 0, ms);
  }

  async ready(): Promise<boolean> {
    return (await this.pool.run(null, { name: 'ping' })) === 'pong';
  }

  async close(): Promise<void> {
    await Promise.all([this.pool.destroy(), this.inline.close()]);
  }
}
