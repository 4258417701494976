/**
 * Shared-memory transfers (`--transfer shm`): a grant whose large payloads cross no socket. The driver
 * writes the bytes of a granted read to a segment, a file in a tmpfs directory the microkernel made for
 * its run (under /dev/shm, Linux's POSIX shared memory), and the delivery it publishes to the gateway
 * carries only the segment's name (Kstyles-Shm). The gateway reads the segment and unlinks it. Names are
 * random UUIDs: knowing one is the capability to read those bytes, as a grant id is in MINIX 3, and the
 * bus's permissions still decide who may ask for a read at all.
 *
 * Node cannot map memory, so this is not L4's map: the kernel copies the bytes into the segment and out
 * of it (two copies), where the bus costs the driver's client buffer, the socket to nats-server, its
 * buffers, the socket to the gateway and the gateway's parser (services/microkernel/README.md,
 * 'Shared-memory transfers'). Payloads under SHM_MIN_BYTES stay on the bus.
 *
 * A segment the gateway never takes (its request gave up before the delivery came, or a read reissued
 * after a driver restart was delivered twice) is swept by the driver once it is SEGMENT_MAX_AGE_MS old;
 * a gateway takes a segment as its delivery arrives, milliseconds after it was written.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { InternalError } from '../contract/errors.ts';
import { MAX_CHUNK_BYTES } from '../contract/file-service.ts';
import { isProcessAlive } from '../supervisor/runtime-state.ts';

/**
 * The smallest granted payload that travels in a segment. Smaller ones cost less on the bus: in a full
 * benchmark a 64 KiB file in a segment reached 0.77× the grant's maximum throughput at 1.4× its p50,
 * where 1 MiB reached 2.8× (services/microkernel/README.md, 'Shared-memory transfers').
 */
export const SHM_MIN_BYTES = 256 * 1024;

/**
 * The largest read a gateway asks for in one request, and how many bytes of one file it keeps in flight,
 * when the bytes travel in segments: NATS's max_payload no longer bounds a chunk, and each chunk costs
 * a request through the file server and the driver (services/microkernel/README.md, 'Shared-memory
 * transfers').
 */
export const SHM_PIPELINE = { chunkBytes: 1024 * 1024, windowBytes: 4 * 1024 * 1024 } as const;

/** The largest chunk one request may ask for: a segment's, or what NATS's max_payload leaves room for. */
export const chunkLimit = (inSegments: boolean): number =>
  inSegments ? SHM_PIPELINE.chunkBytes : MAX_CHUNK_BYTES;

/** A segment this old was abandoned: the driver removes it. */
export const SEGMENT_MAX_AGE_MS = 30_000;

const SEGMENT_NAME = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The prefix of a run's segment directory, followed by the pid of the process that made it. */
const DIR_PREFIX = 'kstyles-shm-';
/** A run's segment directory, with its owner's pid. */
const RUN_DIR = new RegExp(`^${DIR_PREFIX}(\\d+)-`);

const errnoOf = (err: unknown) => (err as NodeJS.ErrnoException).code ?? String(err);

/** One run's segment directory, as the driver (put, sweep) and the gateway (take) use it. */
export class ShmSegments {
  constructor(readonly dir: string) {}

  /** Writes `data` to a new segment and returns its name. */
  async put(data: Uint8Array): Promise<string> {
    const name = randomUUID();
    await writeFile(path.join(this.dir, name), data, { flag: 'wx', mode: 0o600 });
    return name;
  }

  /** The bytes of segment `name`, which must hold `length` of them; the segment is gone afterwards. */
  async take(name: string, length: number): Promise<Uint8Array> {
    if (!SEGMENT_NAME.test(name)) {
      throw new InternalError(
        `the driver named a shared-memory segment that is not one of its names: ${JSON.stringify(name.slice(0, 80))}`,
      );
    }
    const file = path.join(this.dir, name);
    let data: Uint8Array;
    try {
      data = await readFile(file);
    } catch (err) {
      throw new InternalError(
        `shared-memory segment ${name} could not be read in ${this.dir} (${errnoOf(err)}): the gateway and the driver must be given the same --shm-dir`,
        { cause: err },
      );
    }
    unlink(file).catch(() => {});
    if (data.byteLength !== length) {
      throw new InternalError(`shared-memory segment ${name} holds ${data.byteLength} bytes, not ${length}`);
    }
    return data;
  }

  /** Removes segments older than `maxAgeMs`; returns how many it removed. */
  async sweep(maxAgeMs = SEGMENT_MAX_AGE_MS, now = Date.now()): Promise<number> {
    let removed = 0;
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      if (!SEGMENT_NAME.test(name)) continue;
      const file = path.join(this.dir, name);
      const info = await stat(file).catch(() => undefined);
      if (!info || now - info.mtimeMs < maxAgeMs) continue;
      await unlink(file).then(
        () => removed++,
        () => {},
      );
    }
    return removed;
  }
}

/** Where segment directories go: /dev/shm where the machine has it, else the temporary directory. */
export function shmRoot(): string {
  try {
    if (statSync('/dev/shm').isDirectory()) return '/dev/shm';
  } catch {
    // No POSIX shared memory mounted here (not Linux, or a container without it).
  }
  return tmpdir();
}

/** A new segment directory for a run owned by this process. */
export async function makeShmDir(root = shmRoot()): Promise<string> {
  return mkdtemp(path.join(root, `${DIR_PREFIX}${process.pid}-`));
}

/** Removes a run's segment directory with whatever segments are left in it. */
export async function removeShmDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/**
 * Removes the segment directories of runs whose owner is dead (killed before it could remove its own),
 * so abandoned segments do not hold memory past their run. Returns the directories removed.
 */
export function removeOrphanShmDirs(root = shmRoot()): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return removed;
  }
  for (const name of names) {
    const match = RUN_DIR.exec(name);
    if (!match || isProcessAlive(Number(match[1]))) continue;
    const dir = path.join(root, name);
    rmSync(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}
