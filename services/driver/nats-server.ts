/**
 * The storage driver as a NATS server (service `kstyles-driver`): `kstyles.drv.read` answers a byte
 * range of a FileRef with the raw bytes, to its caller or, on a grant (Kstyles-Grant-To), to the
 * requester the file server named (with the stat the file server handed over, when the bytes answer a
 * stat). With chaos on, a poison read panics the process (exit 70):
 * only this server dies, and the supervisor restarts it.
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

export async function startDriverServer(
  nc: NatsConnection,
  driver: StorageDriver,
  options: { registry?: Registry } = {},
): Promise<HostedService> {
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
          nc.publish(grantTo, data, { headers: delivery });
          traceGrant(grantTo, data.byteLength);
          return {};
        },
      },
    ],
  });
}
