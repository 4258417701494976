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
 */
import { headers as createHeaders, type NatsConnection } from '@nats-io/nats-core';
import type { Registry } from 'prom-client';
import { MAX_CHUNK_BYTES } from '../contract/file-service.ts';
import {
  assertTimeLeft,
  carryGrantHeaders,
  deadlineOf,
  getFileRef,
  getSpan,
  HEADERS,
} from '../ipc/headers.ts';
import { createHandlerMetrics, type HostedService, hostService } from '../ipc/service-host.ts';
import { SERVICE_NAMES, SUBJECTS } from '../ipc/subjects.ts';
import { traceGrant } from '../telemetry/spans.ts';
import type { StorageDriver } from './storage-driver.ts';

/** The smallest granted payload that goes on the bulk connection. */
export const BULK_MIN_BYTES = 64 * 1024;

/** `bulk`: the connection large granted payloads go on (absent: `nc`, as in tests of one connection). */
export async function startDriverServer(
  nc: NatsConnection,
  driver: StorageDriver,
  options: { registry?: Registry; bulk?: NatsConnection } = {},
): Promise<HostedService> {
  const bulk = options.bulk ?? nc;
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
          const { offset, length } = getSpan(msg, MAX_CHUNK_BYTES);
          const data = await driver.read(ref, offset, length);
          const grantTo = msg.headers?.get(HEADERS.grantTo);
          if (!grantTo) return { data };
          // A grant: the bytes go straight to the requester the file server named, then the file
          // server gets an empty acknowledgement (its retries and the poison rule wait for it). They go
          // with what the file server handed over (carryGrantHeaders: its instance, on a stat the stat).
          const delivery = carryGrantHeaders(msg.headers, createHeaders());
          delivery.set(HEADERS.grantedBy, instance);
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
