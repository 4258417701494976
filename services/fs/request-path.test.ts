import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, ServiceError } from '../contract/errors.ts';
import { TRAVERSAL_ATTACKS } from '../contract/testing/attacks.ts';
import { encodeFilePath } from '../corpus/corpus.ts';
import { decodeRequestPath, splitNormalizedPath } from './request-path.ts';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ServiceError, `expected a ServiceError, got ${String(err)}`);
    return err.code;
  }
  return 'OK';
}

describe('decodeRequestPath', () => {
  it('decodes percent-encoded segments, spaces and non-ASCII names', () => {
    assert.deepEqual(decodeRequestPath('docs/hello%20world.txt'), ['docs', 'hello world.txt']);
    assert.deepEqual(decodeRequestPath(encodeFilePath('données/naïve café.txt')), [
      'données',
      'naïve café.txt',
    ]);
    assert.deepEqual(decodeRequestPath('%E6%97%A5%E6%9C%AC%E8%AA%9E/x'), ['日本語', 'x']);
    assert.deepEqual(decodeRequestPath('100%25%20done.txt'), ['100% done.txt']);
  });

  const cases: Array<[string, string]> = [
    ['', ErrorCode.INVALID_PATH],
    ['..', ErrorCode.FORBIDDEN_PATH],
    ['a/../../etc/passwd', ErrorCode.FORBIDDEN_PATH],
    ['%2e%2e/etc/passwd', ErrorCode.FORBIDDEN_PATH],
    ['%2E%2E/etc/passwd', ErrorCode.FORBIDDEN_PATH],
    ['.%2e/etc', ErrorCode.FORBIDDEN_PATH],
    ['..%2fetc%2fpasswd', ErrorCode.INVALID_PATH],
    ['..%5cetc', ErrorCode.INVALID_PATH],
    ['a\\..\\b', ErrorCode.INVALID_PATH],
    ['a/%00.txt', ErrorCode.INVALID_PATH],
    ['a/b%0a', ErrorCode.INVALID_PATH],
    ['%252e%252e/etc', ErrorCode.INVALID_PATH],
    ['%25%32%65', ErrorCode.INVALID_PATH],
    ['/etc/passwd', ErrorCode.FORBIDDEN_PATH],
    ['a//b', ErrorCode.INVALID_PATH],
    ['a/', ErrorCode.INVALID_PATH],
    ['./a', ErrorCode.INVALID_PATH],
    ['%c0%ae%c0%ae/etc', ErrorCode.INVALID_PATH],
    ['%zz', ErrorCode.INVALID_PATH],
    ['a'.repeat(256), ErrorCode.TOO_LARGE],
    [`${'abcd/'.repeat(205)}x`, ErrorCode.TOO_LARGE],
    ['x'.repeat(5000), ErrorCode.TOO_LARGE],
  ];
  for (const [raw, code] of cases) {
    it(`refuses ${JSON.stringify(raw.slice(0, 40))} with ${code}`, () => {
      assert.equal(
        codeOf(() => decodeRequestPath(raw)),
        code,
      );
    });
  }

  it('keeps unicode look-alikes of dots and slashes as plain names (no NFKC folding into "..")', () => {
    assert.deepEqual(decodeRequestPath('%EF%BC%8E%EF%BC%8E/x'), ['．．', 'x']);
    assert.deepEqual(decodeRequestPath('%E2%80%A5'), ['‥']);
    assert.deepEqual(decodeRequestPath('a%E2%88%95b'), ['a∕b']);
  });

  it('accepts 255-byte segments and paths of exactly 1024 bytes', () => {
    assert.equal(decodeRequestPath('a'.repeat(255))[0]!.length, 255);
    const path = ['a'.repeat(255), 'b'.repeat(255), 'c'.repeat(255), 'd'.repeat(254), 'e'].join('/');
    assert.equal(Buffer.byteLength(path), 1024);
    assert.equal(decodeRequestPath(path).length, 5);
    assert.equal(
      codeOf(() => decodeRequestPath(`${path}e`)),
      ErrorCode.TOO_LARGE,
    );
  });

  it('never returns a segment that is empty, ".", "..", or holds a separator or NUL, for any attack', () => {
    for (const attack of TRAVERSAL_ATTACKS) {
      let segments: string[] = [];
      try {
        segments = decodeRequestPath(attack);
      } catch (err) {
        assert.ok(err instanceof ServiceError);
        continue;
      }
      for (const segment of segments) {
        assert.ok(segment !== '' && segment !== '.' && segment !== '..', `${attack} → ${segment}`);
        assert.ok(!/[/\\\0]/.test(segment), `${attack} → ${segment}`);
      }
    }
  });
});

describe('splitNormalizedPath', () => {
  it('validates decoded paths the same way', () => {
    assert.deepEqual(splitNormalizedPath('docs/hello world.txt'), ['docs', 'hello world.txt']);
    assert.equal(
      codeOf(() => splitNormalizedPath('../x')),
      ErrorCode.FORBIDDEN_PATH,
    );
    assert.equal(
      codeOf(() => splitNormalizedPath('/x')),
      ErrorCode.FORBIDDEN_PATH,
    );
    assert.equal(
      codeOf(() => splitNormalizedPath('a\0b')),
      ErrorCode.INVALID_PATH,
    );
  });
});
