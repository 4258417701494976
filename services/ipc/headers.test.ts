/**
 * The compact headers of the microkernel's messages (one header per FileStat, FileRef and chunk span):
 * what is put comes back exactly, whatever the file name, and a malformed value is an INTERNAL error
 * naming the header. A Msg here is its subject and headers, all these functions read of it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { headers as createHeaders, type Msg, type MsgHdrs } from '@nats-io/nats-core';
import { ErrorCode, ServiceError } from '../contract/errors.ts';
import type { FileStat } from '../contract/file-service.ts';
import type { FileRef } from '../driver/block-reader.ts';
import { getFileRef, getSpan, getStat, HEADERS, putFileRef, putSpan, putStat } from './headers.ts';

const message = (h: MsgHdrs) => ({ subject: 'kstyles.fs.read', headers: h }) as unknown as Msg;

const isInternal = (name: string) => (err: unknown) => {
  assert.ok(err instanceof ServiceError);
  assert.equal(err.code, ErrorCode.INTERNAL);
  assert.match(err.message, new RegExp(name));
  return true;
};

describe('IPC headers', () => {
  it('round-trips a FileStat, a FileRef and a span, whatever the names', () => {
    for (const path of [
      'docs/hello world.txt',
      'données/naïve café.txt',
      '日本語/ファイル 1.txt',
      'a%20b/c d',
    ]) {
      const stat: FileStat = {
        path,
        size: 4194311,
        mtimeMs: 1733412345678.125,
        etag: '"400007-62a4b1c2d3e4f-1a2b3"',
        contentType: 'text/plain; charset=utf-8',
      };
      assert.deepEqual(getStat(message(putStat(stat))), stat);
      const ref: FileRef = {
        realPath: `/srv/data/${path}`,
        relPath: path,
        ino: 123456789,
        size: 7,
        mtimeMs: 1.5,
      };
      assert.deepEqual(getFileRef(message(putFileRef(ref))), ref);
      assert.equal(putFileRef(ref).get(HEADERS.fileRef), putFileRef(ref).get(HEADERS.fileRef));
    }
    assert.deepEqual(getSpan(message(putSpan(262144, 4096, createHeaders())), 262144), {
      offset: 262144,
      length: 4096,
    });
  });

  it('refuses a missing or malformed header with INTERNAL, naming it', () => {
    const with_ = (name: string, value: string) => {
      const h = createHeaders();
      h.set(name, value);
      return message(h);
    };
    assert.throws(() => getStat(message(createHeaders())), isInternal(HEADERS.stat));
    assert.throws(() => getStat(with_(HEADERS.stat, '12 34 "e"')), isInternal(HEADERS.stat));
    assert.throws(() => getStat(with_(HEADERS.stat, 'x 34 "e" p text/plain')), isInternal(HEADERS.stat));
    assert.throws(
      () => getStat(with_(HEADERS.stat, '1 2 "e" %E0%A4%A text/plain')),
      isInternal(HEADERS.stat),
    );
    assert.throws(() => getFileRef(with_(HEADERS.fileRef, '1 2 3 /a')), isInternal(HEADERS.fileRef));
    assert.throws(() => getSpan(with_(HEADERS.span, '10'), 100), isInternal(HEADERS.span));
    assert.throws(() => getSpan(with_(HEADERS.span, '-1 10'), 100), isInternal('offset -1'));
    assert.throws(() => getSpan(with_(HEADERS.span, '0 101'), 100), isInternal('chunk limit'));
  });
});
