/**
 * bench/tracing-cost.ts against a real monolith, three times (tracing off, on, sampled at ratio 0), for a
 * few seconds: what it counts, not how fast anything is (timings belong to the benchmark itself).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from '../cli/args.ts';
import { testCorpus } from '../services/contract/testing/test-corpus.ts';
import { formatTracingCost, measureTracingCost } from './tracing-cost.ts';

describe('bench/tracing-cost.ts', () => {
  it('measures off, on and sampled interleaved, and counts the spans of every traced request', async () => {
    const corpus = await testCorpus();
    const lines: string[] = [];
    const report = await measureTracingCost({
      styles: ['monolith'],
      rate: 20,
      durationMs: 1000,
      repeats: 3,
      ratio: 0,
      mix: 'small',
      corpusDir: corpus.dir,
      onProgress: (line) => lines.push(line),
    });
    const [monolith] = report.styles;
    assert.deepEqual(
      monolith?.modes.map((m) => m.mode),
      ['off', 'on', 'sampled'],
    );
    for (const mode of monolith!.modes) {
      assert.equal(mode.runs.length, 3);
      for (const run of mode.runs) {
        assert.equal(run.errors, 0);
        assert.ok(run.requests >= 15, `${mode.mode}: ${run.requests} requests in a 1 s run at 20 req/s`);
        assert.ok(run.cpuUsPerRequest > 0, `${mode.mode}: the process tree used CPU`);
      }
    }
    const [off, on, sampled] = monolith!.modes;
    assert.equal(off!.traced, undefined, 'tracing off writes nothing');
    // Every request of the on instance is a trace: GET, fs stat, fs read and driver read (an empty file
    // has no read: two spans).
    const served = on!.runs.reduce((sum, r) => sum + r.requests, 0);
    assert.ok(on!.traced!.requests > served, 'the measured runs, the warm-up and the readiness probe');
    assert.ok(
      on!.traced!.spansPerRequest > 3 && on!.traced!.spansPerRequest <= 4,
      `${on!.traced!.spansPerRequest} spans per request`,
    );
    assert.ok(on!.traced!.bytesPerRequest > 500);
    assert.equal(sampled!.traced!.requests, 0, 'ratio 0: no request without a traceparent is traced');
    // Interleaved: the progress lines alternate off, on, sampled.
    const order = lines.filter((l) => / run \d\/3:/.test(l)).map((l) => l.split(/\s+/)[1]);
    assert.deepEqual(order, ['off', 'on', 'sampled', 'off', 'on', 'sampled', 'off', 'on', 'sampled']);
    const text = formatTracingCost(report);
    assert.match(text, /load average \(1 min\) \d+\.\d\d → \d+\.\d\d/);
    assert.match(text, /^monolith\s+on\s+/m);
  });

  it('refuses fewer than three runs per mode', async () => {
    await assert.rejects(
      measureTracingCost({
        styles: ['monolith'],
        rate: 1,
        durationMs: 1000,
        repeats: 2,
        ratio: 0,
        mix: 'small',
      }),
      UsageError,
    );
  });
});
