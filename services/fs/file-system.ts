import { realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import {
  ForbiddenPathError,
  InternalError,
  NotFoundError,
  TimeoutError,
  TooLargeError,
} from '../contract/errors.ts';
import {
  type ByteRange,
  type CallOptions,
  type FileService,
  type FileStat,
  MAX_CHUNK_BYTES,
  type OpenFile,
  type ReadinessReport,
} from '../contract/file-service.ts';
import type { BlockReader, FileRef } from '../driver/block-reader.ts';
import { ATTR, inSpan, SPAN, SpanKind, tracingOn } from '../telemetry/spans.ts';
import { contentTypeOf } from './content-type.ts';
import { decodeRequestPath, splitNormalizedPath } from './request-path.ts';

/** A resolved file: confined to the root on its real path, and stat-ed. */
export type ResolvedFile = { stat: FileStat; ref: FileRef };

/**
 * The file server's logic (a VFS): confines request paths to the data root, stats files and computes
 * their headers. It never touches bytes: reads go to the BlockReader (the storage driver, in whatever
 * address space it lives).
 */
export class FileSystem implements FileService {
  private constructor(
    readonly root: string,
    private readonly driver: BlockReader,
    private readonly chunkBytes: number,
  ) {}

  /** Mounts a data root; fails with a clear message when it is missing or not a directory. */
  static async mount(
    root: string,
    driver: BlockReader,
    options: { chunkBytes?: number } = {},
  ): Promise<FileSystem> {
    let real: string;
    try {
      real = await realpath(root);
    } catch {
      throw new Error(`data directory ${root} does not exist: create it with 'kstyles corpus --dir ${root}'`);
    }
    const info = await stat(real);
    if (!info.isDirectory()) throw new Error(`data directory ${root} is not a directory`);
    const chunkBytes = options.chunkBytes ?? MAX_CHUNK_BYTES;
    if (!(chunkBytes >= 1 && chunkBytes <= MAX_CHUNK_BYTES)) {
      throw new RangeError(`chunkBytes must be between 1 and ${MAX_CHUNK_BYTES}`);
    }
    return new FileSystem(real, driver, chunkBytes);
  }

  /** Resolves a raw, percent-encoded request path. */
  async resolve(rawPath: string): Promise<ResolvedFile> {
    return this.resolveSegments(decodeRequestPath(rawPath));
  }

  /** Resolves a decoded relative path (FileStat.path), with the same confinement. */
  async resolveNormalized(path: string): Promise<ResolvedFile> {
    return this.resolveSegments(splitNormalizedPath(path));
  }

  async open(rawPath: string, options: CallOptions): Promise<OpenFile & { ref: FileRef }> {
    checkDeadline(options);
    return this.handleOf(await this.tracedResolve(() => this.resolve(rawPath)));
  }

  /**
   * Opens again a file another process opened (a file server that restarted, or a replica): resolves its
   * normalised path and checks it is still the file that was stat-ed.
   */
  async reopen(stat: FileStat, options: CallOptions): Promise<OpenFile & { ref: FileRef }> {
    checkDeadline(options);
    const resolved = await this.tracedResolve(() => this.resolveNormalized(stat.path));
    if (resolved.stat.etag !== stat.etag) {
      throw new InternalError(`${stat.path} changed since it was stat-ed; retry the request`);
    }
    return this.handleOf(resolved);
  }

  /** A resolution as the `fs stat` span of the request's trace (services/telemetry). */
  private tracedResolve(resolve: () => Promise<ResolvedFile>): Promise<ResolvedFile> {
    if (!tracingOn()) return resolve();
    return inSpan(SPAN.fsStat, SpanKind.INTERNAL, async (span) => {
      const resolved = await resolve();
      span?.setAttributes({ [ATTR.filePath]: resolved.stat.path, [ATTR.fileSize]: resolved.stat.size });
      return resolved;
    });
  }

  /**
   * The handle of a resolved file. Reading through it later is safe: the driver opens the real path with
   * O_NOFOLLOW and checks that the inode is still the one stat-ed.
   */
  handleOf({ stat, ref }: ResolvedFile): OpenFile & { ref: FileRef } {
    return {
      stat,
      ref,
      read: (range, options) => this.readRange(ref, range, options),
      close: async () => {},
    };
  }

  /** Reads `range` of a file this FileSystem resolved, without resolving it again. */
  async *readRange(ref: FileRef, range: ByteRange, options: CallOptions): AsyncIterable<Uint8Array> {
    for (let position = range.start; position <= range.end; position += this.chunkBytes) {
      checkDeadline(options);
      if (options.signal?.aborted) return;
      const length = Math.min(this.chunkBytes, range.end - position + 1);
      yield await this.readChunk(ref, position, length, options);
    }
  }

  /** One chunk from the driver, as the `fs read` span whose child is the driver's read. */
  private readChunk(ref: FileRef, position: number, length: number, options: CallOptions) {
    if (!tracingOn()) return this.driver.read(ref, position, length, options);
    return inSpan(SPAN.fsRead, SpanKind.INTERNAL, (span) => {
      span?.setAttributes({ [ATTR.filePath]: ref.relPath, [ATTR.offset]: position, [ATTR.length]: length });
      return this.driver.read(ref, position, length, options);
    });
  }

  async ready(): Promise<ReadinessReport> {
    const ok = await this.driver.ready();
    return { ready: ok, detail: ok ? 'file system and driver ready' : 'storage driver not ready' };
  }

  async close(): Promise<void> {
    await this.driver.close();
  }

  private async resolveSegments(segments: string[]): Promise<ResolvedFile> {
    const relPath = segments.join('/');
    let realPath: string;
    try {
      realPath = await realpath(join(this.root, ...segments));
    } catch (err) {
      throw mapFsError(err, relPath);
    }
    // Confinement is decided on the real path, after every symlink is followed, never on the string.
    if (!realPath.startsWith(this.root + sep)) {
      throw new ForbiddenPathError(`${relPath} resolves outside the data root`);
    }
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(realPath);
    } catch (err) {
      throw mapFsError(err, relPath);
    }
    if (!info.isFile()) throw new NotFoundError(`${relPath} is not a regular file`);
    const etag = `"${info.size.toString(16)}-${Math.floor(info.mtimeMs * 1000).toString(16)}-${info.ino.toString(16)}"`;
    return {
      stat: {
        path: relPath,
        size: info.size,
        mtimeMs: info.mtimeMs,
        etag,
        contentType: contentTypeOf(relPath),
      },
      ref: { realPath, relPath, ino: info.ino, size: info.size, mtimeMs: info.mtimeMs },
    };
  }
}

function checkDeadline(options: CallOptions): void {
  if (Date.now() > options.deadline)
    throw new TimeoutError('deadline passed before the file system answered');
}

function mapFsError(err: unknown, relPath: string): Error {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return new NotFoundError(`no file at ${relPath}`);
    case 'ELOOP':
      return new ForbiddenPathError(`${relPath} is a symlink loop`);
    case 'ENAMETOOLONG':
      return new TooLargeError(`${relPath} is too long for the file system`);
    case 'EACCES':
    case 'EPERM':
      return new ForbiddenPathError(`${relPath} is not readable`);
    default:
      return new InternalError(`file system error on ${relPath}: ${(err as Error).message}`, { cause: err });
  }
}
