import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FileStat } from './file-service.ts';
import {
  filePathOf,
  ifNoneMatchHit,
  ifRangeHolds,
  lastModified,
  parseRange,
  pathOf,
} from './http-semantics.ts';

const SIZE = 1000;

describe('parseRange', () => {
  const cases: Array<[string | undefined, ReturnType<typeof parseRange>]> = [
    [undefined, { kind: 'full' }],
    ['bytes=0-99', { kind: 'partial', range: { start: 0, end: 99 } }],
    ['bytes=0-0', { kind: 'partial', range: { start: 0, end: 0 } }],
    ['bytes=999-999', { kind: 'partial', range: { start: 999, end: 999 } }],
    ['bytes=500-', { kind: 'partial', range: { start: 500, end: 999 } }],
    ['bytes=-100', { kind: 'partial', range: { start: 900, end: 999 } }],
    ['bytes=-5000', { kind: 'partial', range: { start: 0, end: 999 } }],
    ['bytes=900-5000', { kind: 'partial', range: { start: 900, end: 999 } }],
    ['bytes=0-99999999999999999999999', { kind: 'partial', range: { start: 0, end: 999 } }],
    ['BYTES = 1-2', { kind: 'partial', range: { start: 1, end: 2 } }],
    ['bytes=1000-', { kind: 'unsatisfiable' }],
    ['bytes=1000-2000', { kind: 'unsatisfiable' }],
    ['bytes=99999999999999999999-', { kind: 'unsatisfiable' }],
    ['bytes=-0', { kind: 'unsatisfiable' }],
    ['bytes=5-2', { kind: 'full' }],
    ['bytes=-', { kind: 'full' }],
    ['bytes=a-b', { kind: 'full' }],
    ['bytes=1-2-3', { kind: 'full' }],
    ['bytes=', { kind: 'full' }],
    ['bytes=1.5-2', { kind: 'full' }],
    ['items=0-5', { kind: 'full' }],
    ['garbage', { kind: 'full' }],
    ['bytes=0-1,zz', { kind: 'full' }],
    ['bytes=0-9, 20-29', { kind: 'partial', range: { start: 0, end: 9 } }],
    ['bytes=2000-3000, 10-19', { kind: 'partial', range: { start: 10, end: 19 } }],
    ['bytes=2000-3000, 4000-', { kind: 'unsatisfiable' }],
  ];
  for (const [header, expected] of cases) {
    it(`${JSON.stringify(header)} → ${expected.kind}`, () => {
      assert.deepEqual(parseRange(header, SIZE), expected);
    });
  }

  it('refuses every range of an empty file', () => {
    assert.deepEqual(parseRange('bytes=0-', 0), { kind: 'unsatisfiable' });
    assert.deepEqual(parseRange('bytes=-1', 0), { kind: 'unsatisfiable' });
    assert.deepEqual(parseRange(undefined, 0), { kind: 'full' });
  });
});

const stat: FileStat = {
  path: 'a',
  size: 1,
  mtimeMs: 1_700_000_000_123,
  etag: '"abc"',
  contentType: 'text/plain',
};

describe('conditional requests', () => {
  it('If-None-Match hits on equal tags with weak comparison, lists and *', () => {
    assert.equal(ifNoneMatchHit('"abc"', stat.etag), true);
    assert.equal(ifNoneMatchHit('W/"abc"', stat.etag), true);
    assert.equal(ifNoneMatchHit('"x", "abc"', stat.etag), true);
    assert.equal(ifNoneMatchHit('*', stat.etag), true);
    assert.equal(ifNoneMatchHit('"abcd"', stat.etag), false);
    assert.equal(ifNoneMatchHit(undefined, stat.etag), false);
  });

  it('If-Range holds only for the strong tag or the exact Last-Modified date', () => {
    assert.equal(ifRangeHolds(undefined, stat), true);
    assert.equal(ifRangeHolds('"abc"', stat), true);
    assert.equal(ifRangeHolds('W/"abc"', stat), false);
    assert.equal(ifRangeHolds('"old"', stat), false);
    assert.equal(ifRangeHolds(lastModified(stat), stat), true);
    assert.equal(ifRangeHolds('Mon, 01 Jan 2001 00:00:00 GMT', stat), false);
  });
});

describe('request targets', () => {
  it('keeps the raw path, without resolving dot segments or decoding', () => {
    assert.equal(filePathOf('/files/a/../b%2e?x=1'), 'a/../b%2e');
    assert.equal(filePathOf('http://host:1/files/x#y'), 'x');
    assert.equal(filePathOf('/filesx'), null);
    assert.equal(filePathOf('/healthz'), null);
    assert.equal(pathOf('/readyz?full=1'), '/readyz');
  });
});
