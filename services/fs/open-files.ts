import { randomUUID } from 'node:crypto';
import type { OpenFile } from '../contract/file-service.ts';

/**
 * The file server's open-file table: handle id → the file `open` resolved, so a chunk read names its file
 * without resolving the path again. Bounded (least recently used goes first): a handle that is gone, by
 * eviction, a lost close or a file server restart, only costs a reopen by path and ETag.
 */
export class OpenFileTable<F extends OpenFile> {
  readonly #files = new Map<string, F>();
  readonly #prefix = randomUUID();
  #next = 0;

  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError('the open-file table needs room for at least one file');
  }

  get size(): number {
    return this.#files.size;
  }

  add(file: F): string {
    const handle = `${this.#prefix}.${(this.#next++).toString(36)}`;
    this.set(handle, file);
    return handle;
  }

  /** Files under a handle another instance issued (a reopen after failover) keep that handle. */
  set(handle: string, file: F): void {
    this.#files.delete(handle);
    this.#files.set(handle, file);
    if (this.#files.size > this.capacity) {
      const [oldest, evicted] = this.#files.entries().next().value as [string, F];
      this.#files.delete(oldest);
      void evicted.close();
    }
  }

  get(handle: string): F | undefined {
    const file = this.#files.get(handle);
    if (file) {
      this.#files.delete(handle);
      this.#files.set(handle, file);
    }
    return file;
  }

  async close(handle: string): Promise<void> {
    const file = this.#files.get(handle);
    this.#files.delete(handle);
    await file?.close();
  }
}
