/**
 * Metadata travels in headers, bytes in payloads (no base64). This module is the one codec of both:
 * the remaining deadline, the FileStat, the FileRef, chunk offsets and errors (the service-API error
 * headers plus Kstyles-Error-Code, rebuilt on the other side with errorFromCode).
 */
import { headers as createHeaders, type Msg, type MsgHdrs } from '@nats-io/nats-core';
import { ServiceErrorCodeHeader, ServiceErrorHeader, type ServiceMsg } from '@nats-io/services';
import {
  errorFromCode,
  InternalError,
  isErrorCode,
  RangeNotSatisfiableError,
  type ServiceError,
  TimeoutError,
  toServiceError,
} from '../contract/errors.ts';
import { DEFAULT_DEADLINE_MS, type FileStat } from '../contract/file-service.ts';
import type { FileRef } from '../driver/block-reader.ts';

export const HEADERS = {
  /** Milliseconds left of the caller's deadline when the message left (relative: clocks may differ). */
  deadline: 'Kstyles-Deadline-Ms',
  errorCode: 'Kstyles-Error-Code',
  /** RANGE_NOT_SATISFIABLE only: the file size for Content-Range. */
  errorSize: 'Kstyles-Error-Size',
  /**
   * A FileStat in one header, `<size> <mtimeMs> <etag> <path> <content type>` (path percent-encoded, so
   * any file name fits a header line): the stat reply carries it, and each chunk read echoes it verbatim
   * for a file server that lost the handle, so no chunk encodes a stat again.
   */
  stat: 'Kstyles-Stat',
  /** A FileRef in one header, `<ino> <size> <mtimeMs> <real path> <path>` (paths percent-encoded). */
  fileRef: 'Kstyles-File-Ref',
  /** A chunk: `<offset> <length>`. */
  span: 'Kstyles-Span',
  /** On a stat request: how many of the file's first bytes the reply should carry as its payload. */
  prefetch: 'Kstyles-Prefetch',
  /**
   * On a driver read: a grant transfer. The driver publishes the bytes to this subject (the gateway's
   * reply subject) and answers its caller with an empty acknowledgement.
   */
  grantTo: 'Kstyles-Grant-To',
  /** The file server's open-file handle (stat reply, then every read and the close of that file). */
  handle: 'Kstyles-Handle',
  /**
   * Service instance id of the server that answered (callers use it to tell crashes apart); on a grant's
   * delivery, the file server that authorized it, so the gateway knows which instance held its request.
   */
  instance: 'Kstyles-Instance',
  /** On a grant's delivery: the driver instance that sent the bytes (the reply came from the driver). */
  grantedBy: 'Kstyles-Granted-By',
  /** On a grant's delivery with no payload: the shared-memory segment that holds the bytes (services/ipc/shm.ts). */
  shm: 'Kstyles-Shm',
} as const;

/**
 * How a chunk's bytes reach the gateway: `copy`, through the file server (driver → fs → gateway), or
 * `grant`, straight from the driver to the gateway's reply subject once the file server authorized the
 * read (MINIX 3's safecopy grants), or `shm`, a grant whose payloads of SHM_MIN_BYTES and more travel
 * in a shared-memory segment and only its name crosses the bus (services/ipc/shm.ts). A stat's first
 * bytes travel the same way: on a grant the driver sends them with the stat the file server decided
 * (carryGrantHeaders).
 */
export const TRANSFER_MODES = ['grant', 'copy', 'shm'] as const;
export type TransferMode = (typeof TRANSFER_MODES)[number];
export const DEFAULT_TRANSFER: TransferMode = 'grant';

/**
 * Subtracted from the remaining deadline at each hop, so the callee gives up (and says TIMEOUT) just
 * before the caller's own timer fires, and the caller gets a reasoned answer instead of silence.
 */
export const HOP_ALLOWANCE_MS = 25;

export function remainingMs(deadline: number): number {
  return deadline - Date.now();
}

/** Fails with TIMEOUT when the deadline leaves less than `margin` ms (default: time for another hop). */
export function assertTimeLeft(deadline: number, what: string, margin: number = HOP_ALLOWANCE_MS): number {
  const left = remainingMs(deadline);
  if (left <= margin) throw new TimeoutError(`deadline passed before ${what}`);
  return left;
}

export function withDeadline(deadline: number, h: MsgHdrs = createHeaders()): MsgHdrs {
  h.set(HEADERS.deadline, String(Math.max(0, remainingMs(deadline) - HOP_ALLOWANCE_MS)));
  return h;
}

/** The absolute local deadline a request carries; a request without one gets the default. */
export function deadlineOf(msg: Msg): number {
  const raw = msg.headers?.get(HEADERS.deadline);
  const left = raw ? Number(raw) : Number.NaN;
  return Date.now() + (Number.isFinite(left) ? left : DEFAULT_DEADLINE_MS);
}

function required(msg: Msg, name: string): string {
  const value = msg.headers?.get(name) ?? '';
  if (value === '') throw new InternalError(`malformed message on ${msg.subject}: header ${name} is missing`);
  return value;
}

function malformed(msg: Msg, name: string, value: string): InternalError {
  return new InternalError(`malformed message on ${msg.subject}: header ${name} is '${value}'`);
}

/** The `count` space-separated fields of a header; the last one takes the rest of the line. */
function fields(msg: Msg, name: string, count: number): string[] {
  const value = required(msg, name);
  const parts: string[] = [];
  let from = 0;
  for (let i = 1; i < count; i++) {
    const space = value.indexOf(' ', from);
    if (space < 0) throw malformed(msg, name, value);
    parts.push(value.slice(from, space));
    from = space + 1;
  }
  parts.push(value.slice(from));
  return parts;
}

function numberField(msg: Msg, name: string, text: string): number {
  const value = text === '' ? Number.NaN : Number(text);
  if (!Number.isFinite(value)) throw malformed(msg, name, required(msg, name));
  return value;
}

const encodePath = (path: string) => encodeURIComponent(path);

function decodePathField(msg: Msg, name: string, text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw malformed(msg, name, required(msg, name));
  }
}

/** The Kstyles-Stat value of a FileStat. */
export function encodeStat(stat: FileStat): string {
  return `${stat.size} ${stat.mtimeMs} ${stat.etag} ${encodePath(stat.path)} ${stat.contentType}`;
}

/**
 * What a file server hands the driver to send along with a grant's bytes: its own instance id (the
 * gateway's request was held by it: its crash watch follows that instance), and on a stat the stat
 * and the handle, so the gateway's reply is whole without the file server touching the bytes.
 */
const CARRIED_BY_GRANT = [HEADERS.instance, HEADERS.stat, HEADERS.handle] as const;

/** Copies the headers a grant delivery carries from `from` onto `to` (those present). */
export function carryGrantHeaders(from: Pick<MsgHdrs, 'get'> | undefined, to: MsgHdrs): MsgHdrs {
  for (const name of CARRIED_BY_GRANT) {
    const value = from?.get(name) ?? '';
    if (value !== '') to.set(name, value);
  }
  return to;
}

export function putStat(stat: FileStat, h: MsgHdrs = createHeaders()): MsgHdrs {
  h.set(HEADERS.stat, encodeStat(stat));
  return h;
}

export function getStat(msg: Msg): FileStat {
  const [size, mtimeMs, etag, path, contentType] = fields(msg, HEADERS.stat, 5) as [
    string,
    string,
    string,
    string,
    string,
  ];
  if (etag === '' || contentType === '') throw malformed(msg, HEADERS.stat, required(msg, HEADERS.stat));
  return {
    path: decodePathField(msg, HEADERS.stat, path),
    size: numberField(msg, HEADERS.stat, size),
    mtimeMs: numberField(msg, HEADERS.stat, mtimeMs),
    etag,
    contentType,
  };
}

/** A file's Kstyles-File-Ref, encoded once: the file server sends it with every chunk of that file. */
const encodedRefs = new WeakMap<FileRef, string>();

export function putFileRef(ref: FileRef, h: MsgHdrs = createHeaders()): MsgHdrs {
  let value = encodedRefs.get(ref);
  if (value === undefined) {
    value = `${ref.ino} ${ref.size} ${ref.mtimeMs} ${encodePath(ref.realPath)} ${encodePath(ref.relPath)}`;
    encodedRefs.set(ref, value);
  }
  h.set(HEADERS.fileRef, value);
  return h;
}

export function getFileRef(msg: Msg): FileRef {
  const name = HEADERS.fileRef;
  const [ino, size, mtimeMs, realPath, relPath] = fields(msg, name, 5) as [
    string,
    string,
    string,
    string,
    string,
  ];
  return {
    realPath: decodePathField(msg, name, realPath),
    relPath: decodePathField(msg, name, relPath),
    ino: numberField(msg, name, ino),
    size: numberField(msg, name, size),
    mtimeMs: numberField(msg, name, mtimeMs),
  };
}

export function putSpan(offset: number, length: number, h: MsgHdrs): MsgHdrs {
  h.set(HEADERS.span, `${offset} ${length}`);
  return h;
}

export function getSpan(msg: Msg, maxLength: number): { offset: number; length: number } {
  const [offsetText, lengthText] = fields(msg, HEADERS.span, 2) as [string, string];
  const offset = numberField(msg, HEADERS.span, offsetText);
  const length = numberField(msg, HEADERS.span, lengthText);
  if (!(Number.isSafeInteger(offset) && offset >= 0 && Number.isSafeInteger(length) && length >= 1)) {
    throw new InternalError(`malformed read on ${msg.subject}: offset ${offset}, length ${length}`);
  }
  if (length > maxLength) {
    throw new InternalError(
      `read of ${length} bytes on ${msg.subject} exceeds the ${maxLength}-byte chunk limit`,
    );
  }
  return { offset, length };
}

/** How many bytes a stat request asks to be sent along (0 when it asks for none), at most `max`. */
export function getPrefetch(msg: Msg, max: number): number {
  const raw = msg.headers?.get(HEADERS.prefetch);
  const bytes = raw ? Number(raw) : 0;
  if (!(Number.isSafeInteger(bytes) && bytes >= 0)) {
    throw new InternalError(`malformed stat on ${msg.subject}: header ${HEADERS.prefetch} is ${raw}`);
  }
  return Math.min(bytes, max);
}

const oneLine = (text: string) => text.replace(/[\r\n]+/g, ' ');

/** Answers with the service-API error headers plus Kstyles-Error-Code. */
export function respondWithError(msg: ServiceMsg, error: unknown): void {
  const err = toServiceError(error);
  const h = createHeaders();
  h.set(HEADERS.errorCode, err.code);
  if (err instanceof RangeNotSatisfiableError) h.set(HEADERS.errorSize, String(err.size));
  msg.respondError(err.status, oneLine(err.message), undefined, { headers: h });
}

/** The ServiceError a reply carries, or null for a successful reply. */
export function errorOfReply(msg: Msg): ServiceError | null {
  const status = msg.headers?.get(ServiceErrorCodeHeader);
  if (!status) return null;
  const detail = msg.headers?.get(ServiceErrorHeader) || `error ${status} on ${msg.subject}`;
  const code = msg.headers?.get(HEADERS.errorCode);
  if (!isErrorCode(code)) return new InternalError(`unexpected service error ${status}: ${detail}`);
  const size = Number(msg.headers?.get(HEADERS.errorSize));
  return errorFromCode(code, detail, Number.isFinite(size) ? { size } : undefined);
}
