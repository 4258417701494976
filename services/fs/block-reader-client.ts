/**
 * The file server's view of the storage driver over NATS: a BlockReader whose reads are `kstyles.drv.read`
 * requests, retried across driver restarts with the poison rule of services/ipc/resilient-requester.ts
 * (docs/architecture.md, 'The microkernel').
 */
import type { MsgHdrs, NatsConnection } from '@nats-io/nats-core';
import { type CallOptions, DEFAULT_DEADLINE_MS } from '../contract/file-service.ts';
import type { BlockReader, FileRef } from '../driver/block-reader.ts';
import { carryGrantHeaders, HEADERS, putFileRef, putSpan, withDeadline } from '../ipc/headers.ts';
import type { IpcMetrics } from '../ipc/ipc.ts';
import { ResilientRequester } from '../ipc/resilient-requester.ts';
import { SERVICE_NAMES, SUBJECTS } from '../ipc/subjects.ts';

export type NatsBlockReaderOptions = {
  /** How long one attempt may wait for the driver. Default 1000 ms (a chunk normally takes ~2 ms). */
  attemptTimeoutMs?: number;
  /** Backoff of the PINGs that wait for a restarting driver: initialMs doubling up to maxMs. */
  backoff?: { initialMs: number; maxMs: number };
  metrics?: IpcMetrics;
  /** Who calls, for the `from` label. Default 'fs'. */
  from?: string;
};

export class NatsBlockReader implements BlockReader {
  readonly #driver: ResilientRequester;

  constructor(nc: NatsConnection, options: NatsBlockReaderOptions = {}) {
    this.#driver = new ResilientRequester(nc, {
      service: SERVICE_NAMES.driver,
      server: 'storage driver',
      hop: { from: options.from ?? 'fs', to: 'driver' },
      ...(options.metrics ? { metrics: options.metrics } : {}),
      ...(options.attemptTimeoutMs !== undefined ? { attemptTimeoutMs: options.attemptTimeoutMs } : {}),
      ...(options.backoff ? { backoff: options.backoff } : {}),
    });
  }

  async read(file: FileRef, position: number, length: number, options?: CallOptions): Promise<Uint8Array> {
    return (await this.#request(file, position, length, options)).data;
  }

  /**
   * A grant transfer: the driver sends the bytes straight to `replyTo` (the gateway's reply subject) and
   * answers this file server with an empty acknowledgement, so the retries and the poison rule of `read`
   * hold while the bytes never pass through this process. A retried attempt may deliver twice; the
   * requester keeps the first reply. `carry`: what the delivery carries besides the bytes (the file
   * server's instance id; on a stat the stat and handle: services/ipc/headers.ts, carryGrantHeaders).
   */
  async grant(
    file: FileRef,
    position: number,
    length: number,
    replyTo: string,
    options?: CallOptions,
    carry?: MsgHdrs,
  ): Promise<void> {
    await this.#request(file, position, length, options, { to: replyTo, carry });
  }

  #request(
    file: FileRef,
    position: number,
    length: number,
    options?: CallOptions,
    grant?: { to: string; carry: MsgHdrs | undefined },
  ) {
    const deadline = options?.deadline ?? Date.now() + DEFAULT_DEADLINE_MS;
    const headers = () => {
      const h = putSpan(position, length, putFileRef(file, withDeadline(deadline)));
      if (grant !== undefined) carryGrantHeaders(grant.carry, h).set(HEADERS.grantTo, grant.to);
      return h;
    };
    return this.#driver.request(
      'read',
      SUBJECTS.drvRead,
      undefined,
      headers,
      deadline,
      `reading ${file.relPath}`,
    );
  }

  /** The supervisor says a driver exited or is ready: reads in flight and waiting ones try again now. */
  nudge(): void {
    this.#driver.nudge();
  }

  /** Whether some driver answers its service-API PING. */
  ready(): Promise<boolean> {
    return this.#driver.ready();
  }

  async close(): Promise<void> {
    // The NATS connection belongs to whoever opened it.
  }
}
