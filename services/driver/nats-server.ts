/**
 * The storage driver as a NATS server (service `kstyles-driver`): `kstyles.drv.read` answers a byte
 * range of a FileRef with the raw bytes, to its caller or, on a grant (Kstyles-Grant-To), to the
 * requester the file server named (with the stat the file server handed over, when the bytes answer a
 * stat). With chaos on, a poison read panics the process (exit 70):
 * only this server dies, and the supervisor restarts it.
 *
 * Large granted payloads travel on a connection of their own (`bulk`), apart from the one that takes
 * requests and answers them: what waits to be delivered to a slow gateway (megabytes, after a restart
 * that reissued every read in flight) never delays an acknowledgement or this server's answer to the
 * supervisor's PING, so a loaded driver is not mistaken for a hung one. The file server's
 * acknowledgement still follows the bytes: it is sent once nats-server has them (a flush of `bulk`),
 * so a driver killed before that leaves the read unacknowledged, and the file server reissues it.
 * Payloads under BULK_MIN_BYTES stay on the answering connection, ahead of their acknowledgement: they
 * cannot build a backlog worth the flush's round trip (measured: +0.1–0.2 ms of CPU per 4 KiB GET).
 *
 * With shared-memory segments (`shm`, services/ipc/shm.ts), a granted payload of SHM_MIN_BYTES or more is
 * written to a segment first, and its delivery carries only the segment's name: nothing large is
 * published, so it goes on the answering connection, ahead of the acknowledgement.
 */
import { headers as createHeaders, type NatsConnection } from '@nats-io/nats-core';
import type { Registry } from 'prom-client';
import {
  assertTimeLeft,
  carryGrantHeaders,
  deadlineOf,
  getFileRef,
  getSpan,
  HEADERS,
} from '../ipc/headers.ts';
import { createHandlerMetrics, type HostedService, hostService } from '../ipc/service-host.ts';
import { chunkLimit, SHM_MIN_BYTES, SHM_PIPELINE, type ShmSegments } from '../ipc/shm.ts';
import { SERVICE_NAMES, SUBJECTS } from '../ipc/subjects.ts';
import { traceGrant } from '../telemetry/spans.ts';
import type { StorageDriver } from './storage-driver.ts';

/**
 * Buffers a segment's bytes are read into on their way to the segment, reused: the bytes leave them
 * before the read ends, and touching fresh memory costs more than the copy itself on these machines
 * (a fresh MiB faults its pages in for about 3 ms; a reused one is read into in about 0.2 ms:
 * services/microkernel/README.md, 'Shared-memory transfers'). At most `keep` wait for the next read.
 */
class ReusedBuffers {
  readonly #free: Buffer[] = [];
  constructor(
    readonly bytes: number,
    readonly keep = 8,
  ) {}
  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafe(this.bytes);
  }
  give(buffer: Buffer): void {
    if (this.#free.length < this.keep) this.#free.push(buffer);
  }
}

/** The smallest granted payload that goes on the bulk connection. */
export const BULK_MIN_BYTES = 64 * 1024;

/**
 * `bulk`: the connection large granted payloads go on (absent: `nc`, as in tests of one connection);
 * `shm`: the segments large granted payloads go in instead (absent: they go on the bus).
 */
export async function startDriverServer(
  nc: NatsConnection,
  driver: StorageDriver,
  options: { registry?: Registry; bulk?: NatsConnection; shm?: ShmSegments } = {},
): Promise<HostedService> {
  const bulk = options.bulk ?? nc;
  const { shm } = options;
  const maxChunkBytes = chunkLimit(shm !== undefined);
  const segmentBuffers = new ReusedBuffers(SHM_PIPELINE.chunkBytes);
  return hostService(nc, {
    name: SERVICE_NAMES.driver,
    description: 'kernel-styles storage driver: positional reads of byte ranges',
    metadata: { chaos: String(driver.chaos.enabled) },
    ...(options.registry ? { metrics: createHandlerMetrics(options.registry, SERVICE_NAMES.driver) } : {}),
    endpoints: [
      {
        name: 'read',
        subject: SUBJECTS.drvRead,
        handle: async (msg, instance) => {
          assertTimeLeft(deadlineOf(msg), 'the driver read', 0);
          const ref = getFileRef(msg);
          const { offset, length } = getSpan(msg, maxChunkBytes);
          const grantTo = msg.headers?.get(HEADERS.grantTo);
          if (!grantTo) return { data: await driver.read(ref, offset, length) };
          // A grant: the bytes go straight to the requester the file server named, then the file
          // server gets an empty acknowledgement (its retries and the poison rule wait for it). They go
          // with what the file server handed over (carryGrantHeaders: its instance, on a stat the stat).
          const delivery = carryGrantHeaders(msg.headers, createHeaders());
          delivery.set(HEADERS.grantedBy, instance);
          if (shm && length >= SHM_MIN_BYTES) {
            const buffer = segmentBuffers.take();
            try {
              delivery.set(HEADERS.shm, await shm.put(await driver.readInto(ref, offset, length, buffer)));
            } finally {
              segmentBuffers.give(buffer);
            }
            nc.publish(grantTo, undefined, { headers: delivery });
            traceGrant(grantTo, length);
            return {};
          }
          const data = await driver.read(ref, offset, length);
          const lane = data.byteLength >= BULK_MIN_BYTES ? bulk : nc;
          lane.publish(grantTo, data, { headers: delivery });
          traceGrant(grantTo, data.byteLength);
          if (lane !== nc) await lane.flush();
          return {};
        },
      },
    ],
  });
}
