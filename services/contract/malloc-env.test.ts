import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../../cli/kit/repo.ts';
import { MALLOC_ENV, mallocEnv } from './malloc-env.ts';

describe('the allocator settings of Node servers', () => {
  it('are MALLOC_ENV unless the operator sets one, whose value then wins', () => {
    assert.deepEqual(mallocEnv({}), MALLOC_ENV);
    assert.deepEqual(mallocEnv({ MALLOC_TRIM_THRESHOLD_: '131072' }), {
      ...MALLOC_ENV,
      MALLOC_TRIM_THRESHOLD_: '131072',
    });
  });

  it('keep every Node block below 32 MiB (a 1 MiB chunk, a NATS message) out of mmap', () => {
    assert.ok(Number(MALLOC_ENV.MALLOC_MMAP_THRESHOLD_) >= 32 * 1024 * 1024);
    assert.ok(Number(MALLOC_ENV.MALLOC_TRIM_THRESHOLD_) > Number(MALLOC_ENV.MALLOC_MMAP_THRESHOLD_));
  });

  for (const dockerfile of ['deploy/docker/app.Dockerfile', 'unikernel/build/Dockerfile']) {
    it(`are set in ${dockerfile}, the same values`, () => {
      const text = readFileSync(path.join(REPO_ROOT, dockerfile), 'utf8');
      const line = `ENV ${Object.entries(MALLOC_ENV)
        .map(([name, value]) => `${name}=${value}`)
        .join(' ')}`;
      assert.ok(text.split('\n').includes(line), `${dockerfile} lacks the line: ${line}`);
    });
  }
});
