import type { CallOptions } from '../contract/file-service.ts';

/** What the driver needs to know of a file: where it really is and which inode the caller stat-ed. */
export type FileRef = { realPath: string; relPath: string; ino: number; size: number; mtimeMs: number };

/**
 * The block-reading side of the file system: implemented in-process by StorageDriver, in a worker pool,
 * or over NATS. `options` carries the request's deadline to readers that cross a boundary.
 */
export interface BlockReader {
  read(file: FileRef, position: number, length: number, options?: CallOptions): Promise<Uint8Array>;
  ready(): Promise<boolean>;
  close(): Promise<void>;
}
