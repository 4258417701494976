import { constants, type FileHandle, open } from 'node:fs/promises';
import { InternalError, NotFoundError } from '../contract/errors.ts';
import { ATTR, endSpan, SPAN, startSpan, tracingOn } from '../telemetry/spans.ts';
import type { BlockReader, FileRef } from './block-reader.ts';
import { DriverChaos } from './chaos.ts';

type CachedHandle = { handle: FileHandle; ino: number; mtimeMs: number; refs: number; retired: boolean };

export type StorageDriverOptions = { maxOpenFiles?: number; chaos?: DriverChaos };

/**
 * The storage driver: positional reads of byte ranges through a bounded cache of open file descriptors.
 * Opens with O_NOFOLLOW so a symlink swapped in after the file system's confinement check is refused.
 */
export class StorageDriver implements BlockReader {
  readonly chaos: DriverChaos;
  private readonly maxOpenFiles: number;
  /** Insertion order is recency order: the first entry is the least recently used. Bounded by maxOpenFiles. */
  private readonly handles = new Map<string, CachedHandle>();
  private readonly opening = new Map<string, Promise<CachedHandle>>();

  constructor(options: StorageDriverOptions = {}) {
    this.maxOpenFiles = options.maxOpenFiles ?? 64;
    this.chaos = options.chaos ?? new DriverChaos();
    if (!(this.maxOpenFiles >= 1)) throw new RangeError('maxOpenFiles must be at least 1');
  }

  get openFiles(): number {
    return this.handles.size;
  }

  read(file: FileRef, position: number, length: number): Promise<Uint8Array> {
    return this.readInto(file, position, length, undefined);
  }

  /** A read into `into`, a buffer of at least `length` bytes (the result is a view of it); else into a new one. */
  readInto(file: FileRef, position: number, length: number, into: Buffer | undefined): Promise<Uint8Array> {
    // Tracing off: the read itself, not even an extra promise around it.
    return tracingOn()
      ? this.tracedRead(file, position, length, into)
      : this.readBytes(file, position, length, into);
  }

  /** The read as the `driver read` span of the request's trace (services/telemetry). */
  private async tracedRead(
    file: FileRef,
    position: number,
    length: number,
    into: Buffer | undefined,
  ): Promise<Uint8Array> {
    const span = startSpan(SPAN.driverRead);
    span?.setAttributes({ [ATTR.filePath]: file.relPath, [ATTR.offset]: position, [ATTR.length]: length });
    try {
      const bytes = await this.readBytes(file, position, length, into);
      endSpan(span);
      return bytes;
    } catch (err) {
      endSpan(span, err);
      throw err;
    }
  }

  private async readBytes(
    file: FileRef,
    position: number,
    length: number,
    into: Buffer | undefined,
  ): Promise<Uint8Array> {
    if (into && into.byteLength < length)
      throw new RangeError(`a ${into.byteLength}-byte buffer cannot take ${length}`);
    if (this.chaos.enabled) await this.chaos.beforeRead(file.relPath);
    const entry = await this.acquire(file);
    try {
      const buffer = into ? into.subarray(0, length) : Buffer.allocUnsafe(length);
      let filled = 0;
      while (filled < length) {
        const { bytesRead } = await entry.handle.read(buffer, filled, length - filled, position + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      if (filled < length) {
        throw new InternalError(`${file.relPath} shrank while being read (got ${filled} of ${length} bytes)`);
      }
      return buffer;
    } finally {
      this.release(file.realPath, entry);
    }
  }

  async ready(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    const entries = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(entries.map((entry) => entry.handle.close().catch(() => {})));
  }

  private async acquire(file: FileRef): Promise<CachedHandle> {
    // A handle opened for us can be evicted by another read's open before we resume; then open again.
    for (;;) {
      let entry = this.handles.get(file.realPath);
      if (entry && (entry.ino !== file.ino || entry.mtimeMs !== file.mtimeMs)) {
        this.retire(file.realPath, entry);
        entry = undefined;
      }
      if (!entry) {
        let pending = this.opening.get(file.realPath);
        if (!pending) {
          pending = this.openHandle(file).finally(() => this.opening.delete(file.realPath));
          this.opening.set(file.realPath, pending);
        }
        entry = await pending;
        if (entry.retired) continue;
      } else {
        this.handles.delete(file.realPath);
        this.handles.set(file.realPath, entry);
      }
      entry.refs++;
      return entry;
    }
  }

  private async openHandle(file: FileRef): Promise<CachedHandle> {
    let handle: FileHandle;
    try {
      handle = await open(file.realPath, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new NotFoundError(`${file.relPath} disappeared before it could be read`);
      throw new InternalError(`driver could not open ${file.relPath}: ${code ?? String(err)}`, {
        cause: err,
      });
    }
    const stat = await handle.stat();
    // The same inode number can come back for a new file: size and mtime must match the stat too.
    if (stat.ino !== file.ino || stat.mtimeMs !== file.mtimeMs || stat.size !== file.size) {
      await handle.close();
      throw new InternalError(`${file.relPath} changed since it was stat-ed; retry the request`);
    }
    const entry: CachedHandle = { handle, ino: stat.ino, mtimeMs: stat.mtimeMs, refs: 0, retired: false };
    const previous = this.handles.get(file.realPath);
    if (previous) this.retire(file.realPath, previous);
    this.handles.set(file.realPath, entry);
    this.evictIdle(entry);
    return entry;
  }

  private release(realPath: string, entry: CachedHandle): void {
    entry.refs--;
    if (entry.retired && entry.refs === 0) void entry.handle.close().catch(() => {});
    else if (this.handles.get(realPath) === entry) this.evictIdle();
  }

  private retire(realPath: string, entry: CachedHandle): void {
    if (this.handles.get(realPath) === entry) this.handles.delete(realPath);
    entry.retired = true;
    if (entry.refs === 0) void entry.handle.close().catch(() => {});
  }

  /**
   * Closes least recently used handles that no read holds until the cache is within its bound. While
   * every handle is busy the cache may exceed the bound; it shrinks back as reads release them.
   */
  private evictIdle(keep?: CachedHandle): void {
    if (this.handles.size <= this.maxOpenFiles) return;
    for (const [path, entry] of this.handles) {
      if (this.handles.size <= this.maxOpenFiles) break;
      if (entry.refs === 0 && entry !== keep) this.retire(path, entry);
    }
  }
}
