import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from '../../cli/args.ts';
import { readChaosEnv } from './chaos-env.ts';
import { DEFAULT_SLOW_MS } from './slow-fault.ts';

describe('the chaos environment', () => {
  it('reads latency, error rate and the slow fault, with the slow default when unset', () => {
    assert.deepEqual(
      readChaosEnv('driver', true, { KSTYLES_CHAOS_LATENCY_MS: '5', KSTYLES_CHAOS_ERROR_RATE: '0.25' }),
      { latencyMs: 5, errorRate: 0.25, slowMs: DEFAULT_SLOW_MS },
    );
    assert.equal(readChaosEnv('driver', true, { KSTYLES_CHAOS_SLOW_MS: '200' }).slowMs, 200);
  });

  it('reads nothing with chaos off, so a stray variable cannot stop a production start', () => {
    assert.deepEqual(readChaosEnv('unikernel', false, { KSTYLES_CHAOS_SLOW_MS: 'fast' }), {
      latencyMs: 0,
      errorRate: 0,
      slowMs: 0,
    });
  });

  it('names the variable, the command and the range of a bad value', () => {
    for (const [name, raw, max] of [
      ['KSTYLES_CHAOS_SLOW_MS', 'fast', 60_000],
      ['KSTYLES_CHAOS_LATENCY_MS', '-1', 60_000],
      ['KSTYLES_CHAOS_ERROR_RATE', '2', 1],
    ] as const) {
      assert.throws(
        () => readChaosEnv('monolith', true, { [name]: raw }),
        (err: unknown) =>
          err instanceof UsageError &&
          err.message === `kstyles monolith: ${name} must be a number from 0 to ${max}, got '${raw}'.`,
      );
    }
  });
});
