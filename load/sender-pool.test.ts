import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { readManifest } from '../services/corpus/corpus.ts';
import { planVerifier } from './body-verifier.ts';
import { createHistogram, recordMicros } from './histogram.ts';
import { chooseSenderThreads, SenderPool } from './sender-pool.ts';
import { secondStatsOf } from './target-runner.ts';
import { makeCorpus, serveFile, startServer, type TestCorpus } from './test-fixtures.ts';
import { OUTCOMES, type Outcome, type SecondStats } from './types.ts';

let corpus: TestCorpus;
before(async () => {
  corpus = await makeCorpus();
});
after(async () => {
  await corpus.cleanup();
});

type Completion = {
  target: string;
  outcome: Outcome;
  intendedMs: number;
  completedMs: number;
  latencyUs: number;
};

/** Runs a pool to its end against real servers and collects every completion it hands on. */
async function runPool(options: {
  urls: string[];
  rate: number;
  durationMs: number;
  threads: number;
  warmupMs?: number;
}): Promise<{ pool: SenderPool; completions: Completion[] }> {
  const manifest = await readManifest(corpus.dir);
  const pool = await SenderPool.start({
    targets: options.urls.map((url, i) => ({ name: `t${i}`, url })),
    rate: options.rate,
    durationMs: options.durationMs,
    warmupMs: options.warmupMs ?? 0,
    timeoutMs: 5000,
    connections: 8,
    seed: 1,
    mix: 'all',
    manifest,
    verifier: await planVerifier(corpus.dir, manifest.files),
    threads: options.threads,
    streamCompletions: true,
    reportIntervalMs: 20,
  });
  const completions: Completion[] = [];
  pool.onCompletion = (target, outcome, intendedMs, completedMs, latencyUs) =>
    completions.push({ target: target.name, outcome, intendedMs, completedMs, latencyUs });
  pool.begin();
  while (!pool.finished) {
    if (pool.error) throw pool.error;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await pool.close();
  return { pool, completions };
}

describe('sender threads', () => {
  test('three threads send exactly rate × duration requests per target, intended evenly spaced; completions come once each, in completion order', async () => {
    const a = await startServer((_req, res, body) => serveFile(res, body), corpus.bodies);
    const b = await startServer((_req, res, body) => serveFile(res, body), corpus.bodies);
    try {
      const rate = 150;
      const { pool, completions } = await runPool({
        urls: [a.url, b.url],
        rate,
        durationMs: 2000,
        threads: 3,
      });
      for (const target of pool.targets) {
        assert.equal(target.sent, 300);
        assert.equal(target.outcomes.ok, 300);
        const intended = completions
          .filter((c) => c.target === target.name)
          .map((c) => c.intendedMs)
          .sort((x, y) => x - y);
        assert.equal(intended.length, 300, 'every completion handed on once');
        // The union of the three slices is the constant-rate schedule: request i at i/rate, none twice.
        for (const [i, ms] of intended.entries())
          assert.ok(Math.abs(ms - (i * 1000) / rate) < 1e-6, `request ${i} at ${ms} ms`);
      }
      assert.equal(a.requests, 300, 'no request beyond the schedule reached the server');
      for (let i = 1; i < completions.length; i++)
        assert.ok(
          completions[i]!.completedMs >= completions[i - 1]!.completedMs,
          `completion ${i} out of order`,
        );
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("each second's stats come from the merged histograms of every thread: the same as one histogram of all its requests", async () => {
    let served = 0;
    // Latencies spread over a few ms, different per request, so the percentiles of the union are not any one thread's.
    const server = await startServer((_req, res, body) => {
      served++;
      setTimeout(() => serveFile(res, body), served % 7);
    }, corpus.bodies);
    try {
      const { pool, completions } = await runPool({
        urls: [server.url],
        rate: 200,
        durationMs: 3000,
        threads: 3,
      });
      const target = pool.targets[0]!;
      target.advance(true);
      assert.equal(target.timeline.length, 3);
      for (const second of target.timeline) {
        const own = completions.filter((c) => Math.floor(c.intendedMs / 1000) === second.t);
        const h = createHistogram(2);
        const outcomes = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as SecondStats['outcomes'];
        for (const c of own) {
          recordMicros(h, c.latencyUs);
          outcomes[c.outcome]++;
        }
        assert.deepEqual(second, secondStatsOf(second.t, own.length, outcomes, h));
        assert.equal(second.sent, 200);
      }
    } finally {
      await server.close();
    }
  });

  test('warm-up requests reach the target but no count, histogram or completion', async () => {
    const server = await startServer((_req, res, body) => serveFile(res, body), corpus.bodies);
    try {
      const { pool, completions } = await runPool({
        urls: [server.url],
        rate: 100,
        durationMs: 1000,
        warmupMs: 500,
        threads: 2,
      });
      const target = pool.targets[0]!;
      assert.equal(target.warmup.sent, 50);
      assert.equal(target.warmup.outcomes.ok, 50);
      assert.equal(target.sent, 100);
      assert.equal(completions.length, 100);
      assert.ok(completions.every((c) => c.intendedMs >= 0));
      assert.equal(server.requests, 150);
      const result = pool.results(1000)[0]!;
      assert.equal(result.latency.count, 100);
      assert.equal(
        result.timeline.reduce((n, s) => n + s.sent, 0),
        100,
      );
    } finally {
      await server.close();
    }
  });
});

describe('chooseSenderThreads', () => {
  test('enough threads for the rate, one core left for the main thread, and says why', () => {
    assert.deepEqual(chooseSenderThreads(undefined, 300, 2), {
      threads: 1,
      reason: '1 sender thread: 300 req/s in all at up to 10,000 req/s per thread (2 cores here)',
    });
    const capped = chooseSenderThreads(undefined, 45_000, 4);
    assert.equal(capped.threads, 3);
    assert.match(capped.reason, /would take 5, but 4 cores leave 3 beside the main thread/);
    assert.equal(chooseSenderThreads(undefined, 25_000, 8).threads, 3);
    assert.equal(chooseSenderThreads(undefined, 100, 1).threads, 1);
    assert.deepEqual(chooseSenderThreads(4, 100, 2), {
      threads: 4,
      reason: '4 sender threads, as asked (--workers)',
    });
  });
});
