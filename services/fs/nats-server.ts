/**
 * The file server as a NATS server (service `kstyles-fs`): `kstyles.fs.stat` resolves and stats a raw
 * request path; `kstyles.fs.read` answers one chunk (at most MAX_CHUNK_BYTES) of a stat-ed file with the
 * raw bytes. Its FileSystem reads through a NatsBlockReader, i.e. from the driver server.
 */
import type { NatsConnection } from '@nats-io/nats-core';
import type { Registry } from 'prom-client';
import { MAX_CHUNK_BYTES } from '../contract/file-service.ts';
import { assertTimeLeft, deadlineOf, getSpan, getStat, putStat } from '../nats/headers.ts';
import { createHandlerMetrics, type HostedService, hostService } from '../nats/service-host.ts';
import { SERVICE_NAMES, SUBJECTS } from '../nats/subjects.ts';
import type { FileSystem } from './file-system.ts';

export async function startFileServer(
  nc: NatsConnection,
  fileSystem: FileSystem,
  options: { registry?: Registry } = {},
): Promise<HostedService> {
  return hostService(nc, {
    name: SERVICE_NAMES.fs,
    description: 'kernel-styles file server: path confinement, stat, chunked reads through the driver',
    ...(options.registry ? { metrics: createHandlerMetrics(options.registry, SERVICE_NAMES.fs) } : {}),
    endpoints: [
      {
        name: 'stat',
        subject: SUBJECTS.fsStat,
        handle: async (msg) => {
          const deadline = deadlineOf(msg);
          assertTimeLeft(deadline, 'the file server could stat the file', 0);
          return { headers: putStat(await fileSystem.stat(msg.string(), { deadline })) };
        },
      },
      {
        name: 'read',
        subject: SUBJECTS.fsRead,
        handle: async (msg) => {
          const deadline = deadlineOf(msg);
          assertTimeLeft(deadline, 'the file server could read the file', 0);
          const stat = getStat(msg);
          const { offset, length } = getSpan(msg, MAX_CHUNK_BYTES);
          const range = { start: offset, end: offset + length - 1 };
          const chunks: Uint8Array[] = [];
          for await (const chunk of fileSystem.read(stat, range, { deadline })) chunks.push(chunk);
          return { data: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks) };
        },
      },
    ],
  });
}
