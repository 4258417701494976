import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MALLOC_ENV } from '../services/contract/malloc-env.ts';
import { TARGETS } from './targets.ts';

describe('the benchmark targets', () => {
  it('start every Node target with the allocator settings, so no style is measured re-faulting its buffers', () => {
    const launched = Object.values(TARGETS).flatMap((def) => {
      const launch = def.launch(8080, '/data');
      return launch ? [[def.name, launch] as const] : [];
    });
    assert.ok(
      launched.length >= 5,
      'floor, monolith, three microkernels and the unikernel start as processes',
    );
    for (const [name, launch] of launched) {
      for (const [key, value] of Object.entries(MALLOC_ENV)) {
        assert.equal(launch.env[key], value, `${name}: ${key}`);
      }
    }
  });
});
