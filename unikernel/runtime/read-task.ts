/**
 * The task side of the unikernel's worker pool: each worker thread holds its own storage driver (its own
 * fd cache and fault hooks) and performs positional reads for the main thread. Loaded by piscina's worker
 * loop, from this TypeScript file under tsx, or from the pool-worker bundle the build writes.
 */
import { threadId, workerData } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { ServiceError } from '../../services/contract/errors.ts';
import type { FileRef } from '../../services/driver/block-reader.ts';
import { type ChaosOptions, DriverChaos } from '../../services/driver/chaos.ts';
import { StorageDriver } from '../../services/driver/storage-driver.ts';
import { startTracing, TRACING_OFF } from '../../services/telemetry/setup.ts';
import { inCarriedContext, sampledCarrier, type TraceCarrier } from '../../services/telemetry/spans.ts';

/** What the main thread hands every worker at start (piscina's `workerData`). */
export type PoolWorkerData = {
  chaos: Partial<ChaosOptions>;
  maxOpenFiles: number;
  /** Int32Array over shared memory: [0] = the driver latency in ms the main thread wants now ('slow'). */
  latencyMs?: SharedArrayBuffer;
};

/** One read for a worker; `trace` (only while tracing is on) makes its `driver read` span a child of the hop's. */
export type ReadTask = { file: FileRef; position: number; length: number; trace?: TraceCarrier };

/** A failure the driver reported with a stable code: returned, because a thrown error loses its code. */
export type ReadFailure = { code: ServiceError['code']; detail: string };

const data = (workerData ?? {}) as Partial<PoolWorkerData>;
const driver = new StorageDriver({
  chaos: new DriverChaos(data.chaos ?? {}),
  maxOpenFiles: data.maxOpenFiles ?? 64,
});
const wantedLatencyMs = data.latencyMs ? new Int32Array(data.latencyMs) : undefined;
/**
 * A worker thread has an API and SDK registry of its own: it registers tracing itself, from the same
 * environment as the main thread (which has already refused a bad one), and its spans go to the same file.
 */
const tracing = startTracing(
  { style: 'unikernel' },
  { resource: { 'thread.id': threadId, 'thread.name': 'pool worker' } },
).catch(() => TRACING_OFF);

/**
 * Reads one byte range and moves its memory to the main thread (no copy). Node allocates reads under
 * 4 KiB inside a shared, untransferable pool slab; those few bytes are copied into a buffer of their own.
 */
export async function read(task: ReadTask): Promise<unknown> {
  if (!task.trace) return readBlock(task);
  const traced = await tracing;
  try {
    return await inCarriedContext(task.trace, () => readBlock(task));
  } finally {
    // piscina parks a worker in Atomics.wait between tasks, which stops its event loop: the batch
    // processor's timer would never fire. A sampled task writes its spans out before it returns.
    if (sampledCarrier(task.trace)) await traced.flush();
  }
}

async function readBlock(task: ReadTask): Promise<unknown> {
  // The 'slow' fault is switched on the main thread; every worker follows it before its next read.
  if (process.env.KSTYLES_BUILD_CHAOS !== 'false' && wantedLatencyMs && driver.chaos.enabled) {
    const ms = Atomics.load(wantedLatencyMs, 0);
    if (ms !== driver.chaos.options.latencyMs) driver.chaos.setLatency(ms);
  }
  let bytes: Uint8Array;
  try {
    bytes = await driver.read(task.file, task.position, task.length);
  } catch (err) {
    if (err instanceof ServiceError) return { code: err.code, detail: err.message } satisfies ReadFailure;
    throw err;
  }
  const ownsItsMemory = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
  return Piscina.move(ownsItsMemory ? bytes : new Uint8Array(bytes));
}

/** The readiness probe: a worker answers. */
export function ping(): string {
  return 'pong';
}
