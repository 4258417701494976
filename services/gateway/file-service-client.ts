/**
 * The gateway's FileService over NATS. `open` is one `kstyles.fs.stat` request that also asks for the
 * file's first PREFETCH_BYTES (the file server reads them through its driver hop in the same request;
 * not when the caller expects to read nothing, CallOptions.statOnly) and gets the file server's
 * open-file handle for the rest. The handle's `read` serves what lies inside those bytes from memory
 * and pulls the rest as `kstyles.fs.read` chunk requests naming the handle, a window of them in flight
 * (bounded in bytes); `close` publishes `kstyles.fs.close`. A small file thus costs one request; nothing
 * larger than a chunk is ever published or received. Both requests are idempotent: they are retried
 * across file server restarts within the deadline, with the poison rule (services/ipc/resilient-requester.ts).
 * A reply whose bytes the driver left in a shared-memory segment (Kstyles-Shm, services/ipc/shm.ts) is
 * read from there, by a gateway given the run's segment directory.
 */
import { headers as createHeaders, type Msg, type MsgHdrs, type NatsConnection } from '@nats-io/nats-core';
import { InternalError, TimeoutError, UnavailableError } from '../contract/errors.ts';
import {
  type ByteRange,
  type CallOptions,
  type FileService,
  type FileStat,
  MAX_CHUNK_BYTES,
  type OpenFile,
  type ReadinessReport,
} from '../contract/file-service.ts';
import { getStat, HEADERS, putSpan, remainingMs, withDeadline } from '../ipc/headers.ts';
import { type IpcMetrics, IpcOutcome } from '../ipc/ipc.ts';
import { ResilientRequester } from '../ipc/resilient-requester.ts';
import { chunkLimit, SHM_PIPELINE, type ShmSegments } from '../ipc/shm.ts';
import { pingSubject, SERVICE_NAMES, SUBJECTS } from '../ipc/subjects.ts';
import { injectActiveTrace } from '../telemetry/spans.ts';

/** Seconds a client should wait before retrying while a server behind the gateway restarts. */
const RETRY_AFTER_SECONDS = 1;

/**
 * Bytes the stat reply carries: all of a small file (the load's "small" class is < 64 KiB), and only a
 * quarter chunk of a large one, so a HEAD-like use of a large file's stat stays cheap.
 */
export const PREFETCH_BYTES = 64 * 1024;

export type PipelineOptions = { chunkBytes: number; windowBytes: number };

/** Measured: services/microkernel/README.md, 'Pipelined large files'. */
export const PIPELINE_DEFAULTS: PipelineOptions = { chunkBytes: MAX_CHUNK_BYTES, windowBytes: 1024 * 1024 };

const encoder = new TextEncoder();

export class NatsFileService implements FileService {
  readonly #nc: NatsConnection;
  /** Stat and read are idempotent: retried across file server restarts, with the poison rule. */
  readonly #fs: ResilientRequester;
  readonly #shm: ShmSegments | undefined;
  /** The first bytes a stat asks for: PREFETCH_BYTES, or a whole segment's chunk with `shm`. */
  readonly #prefetchBytes: number;

  /** Bytes per chunk request, and how many bytes of one file's chunks may be in flight at once. */
  readonly pipeline: PipelineOptions;

  constructor(
    nc: NatsConnection,
    options: {
      metrics?: IpcMetrics;
      from?: string;
      pipeline?: Partial<PipelineOptions>;
      /** Backoff of the PINGs that wait for a restarting file server (default RETRY_DEFAULTS.backoff). */
      backoff?: { initialMs: number; maxMs: number };
      /** The run's shared-memory segments, where a driver may leave a reply's bytes. */
      shm?: ShmSegments;
    } = {},
  ) {
    this.#nc = nc;
    this.#shm = options.shm;
    // Chunks in segments do not cross the bus: they may be larger than NATS's max_payload allows.
    const maxChunkBytes = chunkLimit(options.shm !== undefined);
    this.#prefetchBytes = options.shm ? maxChunkBytes : PREFETCH_BYTES;
    this.#fs = new ResilientRequester(nc, {
      service: SERVICE_NAMES.fs,
      server: 'file server',
      hop: { from: options.from ?? 'gateway', to: 'fs' },
      ...(options.metrics ? { metrics: options.metrics } : {}),
      ...(options.backoff ? { backoff: options.backoff } : {}),
      // One attempt may take the whole deadline: the file server retries the driver itself, and its
      // own death is seen by the instance probes, not by a timeout.
      attemptTimeoutMs: Number.POSITIVE_INFINITY,
      outOfTime: (message, lastFailure) =>
        lastFailure === IpcOutcome.noResponders || lastFailure === IpcOutcome.disconnected
          ? new UnavailableError(
              `no file server answered within the deadline (it is down or restarting): ${message}`,
              RETRY_AFTER_SECONDS,
            )
          : new TimeoutError(message),
    });
    this.pipeline = { ...(options.shm ? SHM_PIPELINE : PIPELINE_DEFAULTS), ...options.pipeline };
    const { chunkBytes, windowBytes } = this.pipeline;
    if (!(Number.isSafeInteger(chunkBytes) && chunkBytes >= 1 && chunkBytes <= maxChunkBytes)) {
      throw new RangeError(`chunkBytes must be an integer between 1 and ${maxChunkBytes}`);
    }
    if (!(Number.isSafeInteger(windowBytes) && windowBytes >= chunkBytes)) {
      throw new RangeError('windowBytes must be an integer of at least one chunk (chunkBytes)');
    }
  }

  async open(rawPath: string, options: CallOptions): Promise<OpenFile> {
    const msg = await this.#call('stat', SUBJECTS.fsStat, encoder.encode(rawPath), options, () => {
      const h = withDeadline(options.deadline);
      if (!options.statOnly) h.set(HEADERS.prefetch, String(this.#prefetchBytes));
      return h;
    });
    const stat = getStat(msg);
    const asked = Math.min(stat.size, this.#prefetchBytes);
    const data = await this.#payloadOf(msg, asked);
    const carried = data.byteLength;
    if (carried > asked) {
      throw new InternalError(
        `the file server sent ${carried} bytes with the stat of ${stat.path} (${stat.size} bytes), more than asked for`,
      );
    }
    return new RemoteFile(
      this,
      stat,
      msg.headers?.get(HEADERS.stat) ?? '',
      msg.headers?.get(HEADERS.handle) ?? '',
      data,
    );
  }

  /** One chunk of an open file: a `kstyles.fs.read` of exactly `length` bytes. */
  async readChunk(file: RemoteFile, position: number, length: number, options: CallOptions) {
    const msg = await this.#call('read', SUBJECTS.fsRead, undefined, options, () =>
      file.headers(putSpan(position, length, withDeadline(options.deadline))),
    );
    const data = await this.#payloadOf(msg, length);
    if (data.byteLength !== length) {
      throw new InternalError(
        `the file server sent ${data.byteLength} bytes of ${file.stat.path} at ${position} instead of ${length}`,
      );
    }
    return data;
  }

  /** A reply's bytes: its payload, or the shared-memory segment it names (which holds `length` bytes). */
  #payloadOf(msg: Msg, length: number): Uint8Array | Promise<Uint8Array> {
    const segment = msg.headers?.get(HEADERS.shm);
    if (!segment) return msg.data;
    if (!this.#shm) {
      throw new InternalError(
        'the driver sent bytes in a shared-memory segment, but this gateway has no --shm-dir: give it the directory the driver was given',
      );
    }
    return this.#shm.take(segment, length);
  }

  /**
   * The supervisor says a file server exited or is ready: requests in flight probe their file server
   * now (one held by the dead one is reissued at once), and waiting ones try again now.
   */
  nudge(): void {
    this.#fs.nudge();
  }

  /** Tells the file server the handle is free; a lost close only leaves the entry to its LRU bound. */
  closeHandle(handle: string): void {
    if (handle === '') return;
    const h = createHeaders();
    h.set(HEADERS.handle, handle);
    injectActiveTrace(h);
    try {
      this.#nc.publish(SUBJECTS.fsClose, undefined, { headers: h });
    } catch {
      // The connection is closing: the file server's table bound takes care of the handle.
    }
  }

  /** Ready when both the file server and the storage driver answer their service-API PING. */
  async ready(options: CallOptions): Promise<ReadinessReport> {
    const timeout = Math.max(1, Math.min(500, remainingMs(options.deadline)));
    const answers = await Promise.all(
      [SERVICE_NAMES.fs, SERVICE_NAMES.driver].map(async (service) => {
        try {
          await this.#nc.request(pingSubject(service), '', { timeout });
          return { service, ok: true };
        } catch {
          return { service, ok: false };
        }
      }),
    );
    const missing = answers.filter((a) => !a.ok).map((a) => a.service);
    return missing.length === 0
      ? { ready: true, detail: `${SERVICE_NAMES.fs} and ${SERVICE_NAMES.driver} answer on NATS` }
      : { ready: false, detail: `no answer to $SRV.PING from ${missing.join(' and ')}` };
  }

  async close(): Promise<void> {
    // The NATS connection belongs to whoever opened it.
  }

  async #call(
    op: 'stat' | 'read',
    subject: string,
    payload: Uint8Array | undefined,
    options: CallOptions,
    headers: () => MsgHdrs,
  ): Promise<Msg> {
    if (remainingMs(options.deadline) <= 0)
      throw new TimeoutError(`deadline passed before the gateway could ask the file server (${op})`);
    const what = op === 'stat' ? 'a stat' : 'a chunk read';
    return this.#fs.request(op, subject, payload, headers, options.deadline, what);
  }
}

/** A segment's bytes may exceed the contract's chunk: they are handed on in views of at most that. */
function* viewsOf(bytes: Uint8Array): Generator<Uint8Array> {
  for (let at = 0; at < bytes.byteLength; at += MAX_CHUNK_BYTES)
    yield bytes.subarray(at, Math.min(at + MAX_CHUNK_BYTES, bytes.byteLength));
}

/**
 * A file the file server opened: its stat, the first bytes the open reply carried, and the handle the
 * reads name (empty when the reply carried the whole file).
 */
class RemoteFile implements OpenFile {
  #closed = false;

  constructor(
    readonly service: NatsFileService,
    readonly stat: FileStat,
    /** The stat as the file server encoded it (Kstyles-Stat), echoed by every chunk read. */
    readonly encodedStat: string,
    readonly handle: string,
    readonly prefetched: Uint8Array,
  ) {}

  /**
   * The request headers that name this file: the handle, and the stat for a file server that lost it
   * (as the stat reply carried it: nothing is encoded again per chunk).
   */
  headers(h: MsgHdrs): MsgHdrs {
    if (this.handle !== '') h.set(HEADERS.handle, this.handle);
    h.set(HEADERS.stat, this.encodedStat);
    return h;
  }

  async *read(range: ByteRange, options: CallOptions): AsyncIterable<Uint8Array> {
    const prefetchedEnd = Math.min(range.end, this.prefetched.byteLength - 1);
    let position = Math.max(range.start, prefetchedEnd + 1);
    // A window of chunk requests in flight, bounded in bytes: the next ones travel while the client
    // takes this one, and a client that stops reading stops the requests (the generator waits at yield).
    const { chunkBytes, windowBytes } = this.service.pipeline;
    const inFlight: Array<{ length: number; bytes: Promise<Uint8Array> }> = [];
    let inFlightBytes = 0;
    const fill = () => {
      while (position <= range.end && (inFlight.length === 0 || inFlightBytes + chunkBytes <= windowBytes)) {
        const length = Math.min(chunkBytes, range.end - position + 1);
        const bytes = this.service.readChunk(this, position, length, options);
        // A chunk may fail while it waits its turn, or after the client left: awaited or not, it is handled.
        bytes.catch(() => {});
        inFlight.push({ length, bytes });
        inFlightBytes += length;
        position += length;
      }
    };
    fill();
    if (range.start <= prefetchedEnd)
      yield* viewsOf(this.prefetched.subarray(range.start, prefetchedEnd + 1));
    while (inFlight.length > 0) {
      if (options.signal?.aborted) return;
      const head = inFlight.shift()!;
      inFlightBytes -= head.length;
      const bytes = await head.bytes;
      fill();
      yield* viewsOf(bytes);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.service.closeHandle(this.handle);
  }
}
