/**
 * HTTP semantics shared by every style, as plain functions: single-range parsing (RFC 9110 section 14),
 * conditional requests (If-None-Match, If-Range) and the response headers of
 * docs/architecture.md, 'The HTTP contract'.
 */
import type { ByteRange, FileStat } from './file-service.ts';

export type RangeDecision =
  | { kind: 'full' }
  | { kind: 'partial'; range: ByteRange }
  | { kind: 'unsatisfiable' };

const RANGE_SPEC = /^(\d*)-(\d*)$/;

/**
 * Decides what a `Range` header asks of a file of `size` bytes. A header that is absent, of another unit,
 * or syntactically invalid (garbage, an inverted range) is ignored, as RFC 9110 allows: the whole file is
 * served. Of several ranges the first satisfiable one is served (no multipart responses).
 */
export function parseRange(header: string | undefined, size: number): RangeDecision {
  if (header === undefined) return { kind: 'full' };
  const match = /^\s*bytes\s*=(.*)$/i.exec(header);
  if (!match) return { kind: 'full' };
  const specs = match[1]!.split(',').map((spec) => spec.trim());
  const ranges: Array<ByteRange | null> = [];
  for (const spec of specs) {
    const parts = RANGE_SPEC.exec(spec);
    if (!parts) return { kind: 'full' };
    const [, first = '', last = ''] = parts;
    if (first === '' && last === '') return { kind: 'full' };
    if (first === '') {
      const suffix = Number(last);
      ranges.push(suffix === 0 || size === 0 ? null : { start: Math.max(0, size - suffix), end: size - 1 });
      continue;
    }
    const start = Number(first);
    const end = last === '' ? Number.POSITIVE_INFINITY : Number(last);
    if (end < start) return { kind: 'full' };
    ranges.push(start >= size ? null : { start, end: Math.min(end, size - 1) });
  }
  const satisfiable = ranges.find((range) => range !== null);
  return satisfiable ? { kind: 'partial', range: satisfiable } : { kind: 'unsatisfiable' };
}

function opaqueTag(tag: string): string {
  return tag.startsWith('W/') ? tag.slice(2) : tag;
}

/** If-None-Match uses the weak comparison: a hit means 304 Not Modified. */
export function ifNoneMatchHit(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const trimmed = header.trim();
  if (trimmed === '*') return true;
  const target = opaqueTag(etag);
  return trimmed.split(',').some((tag) => opaqueTag(tag.trim()) === target);
}

/** If-Range uses the strong comparison (or an exact Last-Modified date): a miss means serve the whole file. */
export function ifRangeHolds(header: string | undefined, stat: FileStat): boolean {
  if (header === undefined) return true;
  const value = header.trim();
  if (value.startsWith('"')) return value === stat.etag;
  if (value.startsWith('W/')) return false;
  return value === lastModified(stat);
}

export function lastModified(stat: FileStat): string {
  return new Date(Math.floor(stat.mtimeMs / 1000) * 1000).toUTCString();
}

/** The headers every file response carries, whatever its status. */
export function fileHeaders(stat: FileStat, style: string): Record<string, string> {
  return {
    'content-type': stat.contentType,
    etag: stat.etag,
    'last-modified': lastModified(stat),
    'accept-ranges': 'bytes',
    'x-kernel-style': style,
  };
}

export function contentRange(range: ByteRange, size: number): string {
  return `bytes ${range.start}-${range.end}/${size}`;
}

/** The file-route part of a request target, still percent-encoded, or null when it is another route. */
export function filePathOf(requestTarget: string): string | null {
  const path = pathOf(requestTarget);
  return path.startsWith(FILES_PREFIX) ? path.slice(FILES_PREFIX.length) : null;
}

const FILES_PREFIX = '/files/';

/**
 * The path of a request target without its query. Deliberately not `new URL()`: URL parsing resolves
 * '..' and '%2e' segments, which would hide traversal attempts from the file system's checks.
 */
export function pathOf(requestTarget: string): string {
  const withoutOrigin = requestTarget.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '');
  const query = withoutOrigin.search(/[?#]/);
  return query === -1 ? withoutOrigin : withoutOrigin.slice(0, query);
}
