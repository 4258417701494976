/**
 * The one interface of the file service. Three implementations compose the same `fs` and `driver` cores:
 * in-process function calls (monolith), NATS messages (microkernel gateway → file server → driver) and a
 * worker pool (unikernel). The HTTP layer (`http-semantics.ts`) only ever talks to this interface.
 */

/** What `stat` returns: everything the HTTP layer needs for headers and conditional requests. */
export type FileStat = {
  /** The decoded, normalised relative path ('docs/hello world.txt'). */
  path: string;
  size: number;
  mtimeMs: number;
  /** Strong entity tag, quoted: "\"1a2b-…\"". */
  etag: string;
  contentType: string;
};

/** Inclusive byte range [start, end] within the file; never empty. */
export type ByteRange = { start: number; end: number };

export type CallOptions = {
  /**
   * Absolute deadline (Date.now() based): past it, the call fails with TIMEOUT. While `read` streams,
   * the HTTP layer moves it forward before asking for each chunk; implementations read it per chunk.
   */
  deadline: number;
  /** Aborted when the client went away; implementations stop work early. */
  signal?: AbortSignal;
  /**
   * For `open`: the caller expects to read no bytes after it (a HEAD, or a GET with If-None-Match, most
   * often answered 304), so an implementation that fetches a file's first bytes along with its stat
   * should not. A wrong guess costs only speed.
   */
  statOnly?: boolean;
};

export type ReadinessReport = { ready: boolean; detail: string };

/**
 * A file `open` resolved, confined and stat-ed: the handle every read of one request goes through, so a
 * read never resolves the path again (a file descriptor, in the seed's terms).
 */
export interface OpenFile {
  readonly stat: FileStat;
  /**
   * Streams the bytes of `range`, in chunks small enough for any transport. Fails with NOT_FOUND or
   * INTERNAL if the file changed identity since `open`.
   */
  read(range: ByteRange, options: CallOptions): AsyncIterable<Uint8Array>;
  /** Releases what the handle holds; reading after it is a caller's bug. */
  close(): Promise<void>;
}

export interface FileService {
  /** Resolves a raw request path (still percent-encoded, as it came after `/files/`), stats and opens it. */
  open(rawPath: string, options: CallOptions): Promise<OpenFile>;
  /** Whether every component behind this service answers. */
  ready(options: CallOptions): Promise<ReadinessReport>;
  close(): Promise<void>;
}

/** Largest chunk any implementation yields: well under NATS's 1 MiB max_payload. */
export const MAX_CHUNK_BYTES = 256 * 1024;

/** Default request deadline of docs/architecture.md, 'The HTTP contract'. */
export const DEFAULT_DEADLINE_MS = 5000;
