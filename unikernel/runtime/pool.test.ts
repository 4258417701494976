import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { ErrorCode } from '../../services/contract/errors.ts';
import { fileServiceContract } from '../../services/contract/testing/contract-suite.ts';
import { testCorpus } from '../../services/contract/testing/test-corpus.ts';
import { FileSystem } from '../../services/fs/file-system.ts';
import { RUNTIME_DIR } from './layout.ts';
import { PoolBlockReader } from './pool.ts';

// Under tsx: piscina loads the TypeScript task module through read-task.dev.mjs. The built executable's
// pool (one bundled worker file) is exercised by unikernel.test.ts and chaos.test.ts.
const taskFile = join(RUNTIME_DIR, 'read-task.dev.mjs');

fileServiceContract(
  'fs core + driver reads in the piscina pool (every read, TypeScript task)',
  async (corpus) => {
    const reader = new PoolBlockReader({ taskFile, inlineMaxBytes: 0, threads: 2 });
    const service = await FileSystem.mount(corpus.dir, reader);
    return { service, corpus, stop: () => service.close() };
  },
);

describe('PoolBlockReader', () => {
  it('routes small reads inline and large ones through the pool, and records each hop', async () => {
    const corpus = await testCorpus();
    const registry = new Registry();
    const reader = new PoolBlockReader({ taskFile, inlineMaxBytes: 64 * 1024, threads: 1, registry });
    const fs = await FileSystem.mount(corpus.dir, reader);
    try {
      const small = (await fs.resolveNormalized('bench/4k.bin')).ref;
      const large = (await fs.resolveNormalized('large/4mib-plus.bin')).ref;
      assert.equal((await reader.read(small, 0, 4096)).byteLength, 4096);
      const chunk = await reader.read(large, 0, 256 * 1024);
      assert.ok(chunk instanceof Uint8Array);
      assert.equal(chunk.byteLength, 256 * 1024);
      assert.equal(chunk.byteOffset, 0, 'a whole transferred buffer, not a view into a copy');
      const text = await registry.metrics();
      assert.match(
        text,
        /kstyles_ipc_request_duration_seconds_count\{from="fs",to="pool",op="read",outcome="ok"\} 1\n/,
      );
    } finally {
      await fs.close();
    }
  });

  it('brings a driver failure in a worker back with its stable code', async () => {
    const corpus = await testCorpus();
    const reader = new PoolBlockReader({ taskFile, inlineMaxBytes: 0, threads: 1 });
    const fs = await FileSystem.mount(corpus.dir, reader);
    try {
      const ref = (await fs.resolveNormalized('bench/64k.bin')).ref;
      // A file reference whose inode does not match: the worker's driver refuses it with INTERNAL.
      await assert.rejects(reader.read({ ...ref, ino: ref.ino + 1 }, 0, 1024), (err: { code?: string }) => {
        assert.equal(err.code, ErrorCode.INTERNAL);
        return true;
      });
      await assert.rejects(
        reader.read({ ...ref, realPath: join(corpus.dir, 'no-such-file'), relPath: 'no-such-file' }, 0, 1024),
        (err: { code?: string }) => {
          assert.equal(err.code, ErrorCode.NOT_FOUND);
          return true;
        },
      );
      assert.equal(await reader.ready(), true, 'the pool still answers');
    } finally {
      await fs.close();
    }
  });
});
