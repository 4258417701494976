import { ForbiddenPathError, InvalidPathError, TooLargeError } from '../contract/errors.ts';

/** Limits on request paths, in UTF-8 bytes after decoding. */
export const PATH_LIMITS = { maxPathBytes: 1024, maxSegmentBytes: 255 } as const;

// Encoded separators and NUL change what a path means after decoding: refuse them outright.
const ENCODED_SEPARATOR_OR_NUL = /%(?:2f|5c|00)/i;
// A '%XX' that survives one decoding was encoded twice: an attempt to slip '%2e%2e' past a filter.
const STILL_ENCODED = /%[0-9a-f]{2}/i;
// Both checks look at UTF-16 code units; these are the C0 controls and DEL.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

/**
 * Decodes the raw path that followed `/files/` in the request target into validated segments.
 * Pure string work; the file system's confinement check on the real path comes after (FileSystem's
 * resolveSegments in file-system.ts).
 */
export function decodeRequestPath(rawPath: string): string[] {
  // Cheap guard before any decoding: three raw bytes at most per decoded byte.
  if (rawPath.length > PATH_LIMITS.maxPathBytes * 3) {
    throw new TooLargeError(
      `path is ${rawPath.length} characters long; the limit is ${PATH_LIMITS.maxPathBytes} bytes`,
    );
  }
  if (rawPath.length === 0) throw new InvalidPathError('no file named: use /files/<path>');
  if (rawPath.includes('\\')) throw new InvalidPathError('backslashes are not path separators here');
  if (ENCODED_SEPARATOR_OR_NUL.test(rawPath)) {
    throw new InvalidPathError('percent-encoded separators (%2F, %5C) and NUL (%00) are not allowed');
  }
  if (rawPath.startsWith('/')) throw new ForbiddenPathError('absolute paths are not served');
  const segments = rawPath.split('/').map(decodeSegment);
  return validateSegments(segments);
}

/** Validates an already decoded relative path such as FileStat.path ('docs/a b.txt'). */
export function splitNormalizedPath(path: string): string[] {
  if (path.length === 0) throw new InvalidPathError('no file named');
  if (path.startsWith('/')) throw new ForbiddenPathError('absolute paths are not served');
  if (path.includes('\\')) throw new InvalidPathError('backslashes are not path separators here');
  return validateSegments(path.split('/'));
}

function decodeSegment(segment: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    throw new InvalidPathError(`segment '${segment.slice(0, 64)}' is not valid percent-encoded UTF-8`);
  }
  if (STILL_ENCODED.test(decoded)) {
    throw new InvalidPathError('double percent-encoding is not allowed');
  }
  return decoded;
}

function validateSegments(segments: string[]): string[] {
  let totalBytes = segments.length - 1;
  for (const segment of segments) {
    if (segment === '') throw new InvalidPathError('empty path segment (a doubled or trailing slash)');
    if (segment === '..') throw new ForbiddenPathError("'..' segments would leave the data root");
    if (segment === '.') throw new InvalidPathError("'.' segments are not allowed");
    if (segment.includes('\\')) throw new InvalidPathError('backslashes are not path separators here');
    if (CONTROL_CHARACTER.test(segment))
      throw new InvalidPathError('control characters (including NUL) are not allowed');
    const bytes = Buffer.byteLength(segment, 'utf8');
    if (bytes > PATH_LIMITS.maxSegmentBytes) {
      throw new TooLargeError(
        `a path segment is ${bytes} bytes long; the limit is ${PATH_LIMITS.maxSegmentBytes}`,
      );
    }
    totalBytes += bytes;
  }
  if (totalBytes > PATH_LIMITS.maxPathBytes) {
    throw new TooLargeError(`path is ${totalBytes} bytes long; the limit is ${PATH_LIMITS.maxPathBytes}`);
  }
  return segments;
}
