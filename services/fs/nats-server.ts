/**
 * The file server as a NATS server (service `kstyles-fs`): `kstyles.fs.stat` opens a raw request path
 * (resolve, confine, stat) and, when asked (Kstyles-Prefetch), sends the file's first bytes along in the
 * same reply (on a grant the driver sends them, with the stat), so a small file costs the gateway one
 * request; a file the reply does not carry whole gets a handle in the open-file table. `kstyles.fs.read`
 * answers one chunk of a handle (at most MAX_CHUNK_BYTES; with `shm`, SHM_PIPELINE's chunk) with the raw
 * bytes, without resolving the path again; `kstyles.fs.close` drops the handle. Its FileSystem reads
 * through a NatsBlockReader, i.e. from the driver server.
 */
import { headers as createHeaders, type MsgHdrs, type NatsConnection } from '@nats-io/nats-core';
import type { ServiceMsg } from '@nats-io/services';
import type { Registry } from 'prom-client';
import { type CallOptions, MAX_CHUNK_BYTES, type OpenFile } from '../contract/file-service.ts';
import type { FileRef } from '../driver/block-reader.ts';
import {
  assertTimeLeft,
  deadlineOf,
  getPrefetch,
  getSpan,
  getStat,
  HEADERS,
  putStat,
  type TransferMode,
} from '../ipc/headers.ts';
import { createHandlerMetrics, type HostedService, hostService } from '../ipc/service-host.ts';
import { chunkLimit } from '../ipc/shm.ts';
import { SERVICE_NAMES, SUBJECTS } from '../ipc/subjects.ts';
import { traceGrant } from '../telemetry/spans.ts';
import type { FileSystem } from './file-system.ts';
import { OpenFileTable } from './open-files.ts';

/** Open files the table keeps: one per large download in progress, with room to spare. */
export const OPEN_FILES_CAPACITY = 4096;

/** The bytes of `range` as one payload (a range of at most one chunk arrives as one chunk). */
async function readWhole(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** What a grant transfer needs of the driver client (NatsBlockReader.grant). */
export type Granter = {
  grant(
    file: FileRef,
    position: number,
    length: number,
    replyTo: string,
    options: CallOptions,
    carry?: MsgHdrs,
  ): Promise<void>;
};

/**
 * What the file server does with a read: answer the bytes itself (copy) or have the driver send them
 * (grant), in chunks of at most `maxChunkBytes`.
 */
export type FileServerTransfer =
  | { mode: 'copy' }
  | { mode: 'grant'; granter: Granter; maxChunkBytes: number };

/**
 * The file server's part of a transfer mode: `shm` is a grant to it (the driver decides where the
 * bytes travel, by the segment directory it was given) of chunks as large as segments take.
 */
export function fileServerTransfer(mode: TransferMode, granter: Granter): FileServerTransfer {
  if (mode === 'copy') return { mode };
  return { mode: 'grant', granter, maxChunkBytes: chunkLimit(mode === 'shm') };
}

export async function startFileServer(
  nc: NatsConnection,
  fileSystem: FileSystem,
  options: { registry?: Registry; transfer?: FileServerTransfer } = {},
): Promise<HostedService> {
  const transfer = options.transfer ?? { mode: 'copy' };
  const maxChunkBytes = transfer.mode === 'grant' ? transfer.maxChunkBytes : MAX_CHUNK_BYTES;
  const open = new OpenFileTable<OpenFile & { ref: FileRef }>(OPEN_FILES_CAPACITY);
  /** The file a read names: from the table, or reopened by path and ETag (another instance opened it). */
  const fileOf = async (msg: ServiceMsg, deadline: number) => {
    const handle = msg.headers?.get(HEADERS.handle) ?? '';
    const known = handle === '' ? undefined : open.get(handle);
    if (known) return known;
    const file = await fileSystem.reopen(getStat(msg), { deadline });
    if (handle !== '') open.set(handle, file);
    return file;
  };
  /**
   * Authorized here, delivered by the driver: it sends `length` bytes at `offset` straight to the
   * requester, with this file server's instance and whatever else `carry` holds (a stat's stat and
   * handle); errors and the retries stay here. The caller gets no reply from this process.
   */
  const grant = async (
    granter: Granter,
    msg: ServiceMsg,
    instance: string,
    ref: FileRef,
    span: { offset: number; length: number },
    deadline: number,
    carry: MsgHdrs = createHeaders(),
  ) => {
    const replyTo = msg.reply!;
    traceGrant(replyTo);
    carry.set(HEADERS.instance, instance);
    await granter.grant(ref, span.offset, span.length, replyTo, { deadline }, carry);
    return { answered: true };
  };
  return hostService(nc, {
    name: SERVICE_NAMES.fs,
    description: 'kernel-styles file server: path confinement, stat, chunked reads through the driver',
    ...(options.registry ? { metrics: createHandlerMetrics(options.registry, SERVICE_NAMES.fs) } : {}),
    endpoints: [
      {
        name: 'stat',
        subject: SUBJECTS.fsStat,
        handle: async (msg, instance) => {
          const deadline = deadlineOf(msg);
          assertTimeLeft(deadline, 'the file server could stat the file', 0);
          const file = await fileSystem.open(msg.string(), { deadline });
          const headers = putStat(file.stat);
          // Read from the same resolution as the stat: these bytes belong to exactly this ETag.
          const prefetch = Math.min(getPrefetch(msg, maxChunkBytes), file.stat.size);
          // A file the reply carries whole needs no handle: nothing will be read of it again.
          if (prefetch < file.stat.size) headers.set(HEADERS.handle, open.add(file));
          if (prefetch === 0) return { headers };
          // The stat is decided here; on a grant its first bytes go straight from the driver with it (one
          // hop fewer for a small file, and its bytes cross the bus once).
          if (transfer.mode === 'grant' && msg.reply) {
            const first = { offset: 0, length: prefetch };
            return grant(transfer.granter, msg, instance, file.ref, first, deadline, headers);
          }
          return { headers, data: await readWhole(file.read({ start: 0, end: prefetch - 1 }, { deadline })) };
        },
      },
      {
        name: 'read',
        subject: SUBJECTS.fsRead,
        handle: async (msg, instance) => {
          const deadline = deadlineOf(msg);
          assertTimeLeft(deadline, 'the file server could read the file', 0);
          const file = await fileOf(msg, deadline);
          const { offset, length } = getSpan(msg, maxChunkBytes);
          // Authorized: the handle is this file server's, or the path was confined again.
          if (transfer.mode === 'grant' && msg.reply) {
            return grant(transfer.granter, msg, instance, file.ref, { offset, length }, deadline);
          }
          return {
            data: await readWhole(file.read({ start: offset, end: offset + length - 1 }, { deadline })),
          };
        },
      },
      {
        name: 'close',
        subject: SUBJECTS.fsClose,
        handle: async (msg) => {
          await open.close(msg.headers?.get(HEADERS.handle) ?? '');
          return {};
        },
      },
    ],
  });
}
