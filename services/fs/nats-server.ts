/**
 * The file server as a NATS server (service `kstyles-fs`): `kstyles.fs.stat` resolves and stats a raw
 * request path and, when asked (Kstyles-Prefetch), sends the file's first bytes along in the same
 * reply, so a small file costs the gateway one request; `kstyles.fs.read` answers one chunk (at most
 * MAX_CHUNK_BYTES) of a stat-ed file with the raw bytes. Its FileSystem reads through a
 * NatsBlockReader, i.e. from the driver server.
 */
import type { NatsConnection } from '@nats-io/nats-core';
import type { Registry } from 'prom-client';
import { type ByteRange, type CallOptions, MAX_CHUNK_BYTES } from '../contract/file-service.ts';
import type { FileRef } from '../driver/block-reader.ts';
import { assertTimeLeft, deadlineOf, getPrefetch, getSpan, getStat, putStat } from '../ipc/headers.ts';
import { createHandlerMetrics, type HostedService, hostService } from '../ipc/service-host.ts';
import { SERVICE_NAMES, SUBJECTS } from '../ipc/subjects.ts';
import type { FileSystem } from './file-system.ts';

/** The bytes of `range` as one payload (a range of at most one chunk arrives as one chunk). */
async function readWhole(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

export async function startFileServer(
  nc: NatsConnection,
  fileSystem: FileSystem,
  options: { registry?: Registry } = {},
): Promise<HostedService> {
  const readRange = (ref: FileRef, range: ByteRange, call: CallOptions) =>
    readWhole(fileSystem.readRange(ref, range, call));
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
          const { stat, ref } = await fileSystem.resolve(msg.string());
          const headers = putStat(stat);
          // Read from the same resolution as the stat: these bytes belong to exactly this ETag.
          const prefetch = Math.min(getPrefetch(msg, MAX_CHUNK_BYTES), stat.size);
          if (prefetch === 0) return { headers };
          return { headers, data: await readRange(ref, { start: 0, end: prefetch - 1 }, { deadline }) };
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
          return { data: await readWhole(fileSystem.read(stat, range, { deadline })) };
        },
      },
    ],
  });
}
