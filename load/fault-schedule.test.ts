import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { readManifest } from '../services/corpus/corpus.ts';
import { planVerifier } from './body-verifier.ts';
import type { FaultDriver } from './fault-drivers.ts';
import { FaultSchedule } from './fault-schedule.ts';
import { computeP99Recovery, FaultTracker } from './resilience.ts';
import { SenderPool } from './sender-pool.ts';
import { makeCorpus, serveFile, startServer, type TestCorpus, type TestServer } from './test-fixtures.ts';

let corpus: TestCorpus;
let server: TestServer;
/** The server resets every connection until then (performance.now()): what the test driver's fault does. */
let downUntil = 0;
/**
 * And at least this many requests more, however late it handles them: the server shares the test's
 * event loop, and a loop held up for the whole outage on a crowded machine would handle no request
 * inside it (seen in CI: a window of 300 requests, none failed).
 */
let resetsLeft = 0;

before(async () => {
  corpus = await makeCorpus();
  server = await startServer((req, res, body) => {
    if (performance.now() < downUntil || resetsLeft > 0) {
      resetsLeft = Math.max(0, resetsLeft - 1);
      req.socket.destroy();
      return;
    }
    serveFile(res, body);
  }, corpus.bodies);
});
after(async () => {
  await server.close();
  await corpus.cleanup();
});

const OUTAGE_MIN_RESETS = 10;

/** A real fault on the test server: it resets connections for `forMs`, then the driver says it resumed. */
function outageDriver(): FaultDriver & { resumed: number } {
  const driver = {
    name: 'outage',
    resumed: 0,
    supports: (_target: string, kind: string) => kind === 'hang',
    inject: async (_target: string, _kind: string, options: { forMs?: number }) => {
      downUntil = performance.now() + (options.forMs ?? 0);
      resetsLeft = OUTAGE_MIN_RESETS;
      return {
        message: 'connections reset',
        resume: async () => {
          driver.resumed++;
          return 'serving again';
        },
      };
    },
  };
  return driver;
}

describe('FaultSchedule', () => {
  /**
   * One load of three threads with an outage fired at 1 s. A run whose generator fell behind during
   * the fault's window measured a stall of the machine, not the fault (seen in CI: the whole machine
   * held for about 95 s, the outage's resets spent on requests intended before it, the window 0 failed
   * of 300): when such a run saw no failure, the caller runs it again.
   */
  async function outageUnderThreeThreads() {
    downUntil = 0;
    resetsLeft = 0;
    const manifest = await readManifest(corpus.dir);
    const rate = 200;
    // Room after the window: on a crowded machine the fault may fire late, and a window cut short by
    // the end of the load could hold nothing but the outage (seen in CI with 3 s: no success after it).
    const durationMs = 4500;
    const pool = await SenderPool.start({
      targets: [{ name: 'mono', url: server.url }],
      rate,
      durationMs,
      warmupMs: 0,
      timeoutMs: 2000,
      connections: 6,
      seed: 1,
      mix: 'all',
      manifest,
      verifier: await planVerifier(corpus.dir, manifest.files),
      threads: 3,
      streamCompletions: true,
      reportIntervalMs: 20,
    });
    const completions: { intendedMs: number; completedMs: number; ok: boolean }[] = [];
    pool.onCompletion = (_target, outcome, intendedMs, completedMs) =>
      completions.push({ intendedMs, completedMs, ok: outcome === 'ok' });
    const driver = outageDriver();
    const schedule = new FaultSchedule({ drivers: [driver], faultWindowMs: 1500 });
    const t0 = pool.begin();
    schedule.watch({ t0, targets: new Map(pool.targets.map((t) => [t.name, t])), endMs: durationMs });
    while (performance.now() - t0 < 1000) await new Promise((r) => setTimeout(r, 10));
    const record = await schedule.fire({ target: 'mono', kind: 'hang', forMs: 300 });
    assert.equal(record.ok, true);
    assert.ok(schedule.isOpen(record));
    while (!pool.finished) await new Promise((r) => setTimeout(r, 20));
    await pool.close();
    await schedule.settle();
    assert.equal(driver.resumed, 1, 'undone after its 300 ms');
    const timeline = pool.targets[0]!.timeline;
    schedule.closeWindows(() => timeline);
    assert.ok(!schedule.isOpen(record));
    const [measured] = record.resilience;
    assert.ok(measured);

    // One thread's view: the same completions, in completion order, through a tracker of the same window.
    const reference = new FaultTracker('mono', measured.windowStartMs, measured.windowEndMs);
    for (const c of [...completions].sort((a, b) => a.completedMs - b.completedMs)) {
      if (c.intendedMs >= reference.startMs && c.intendedMs < reference.endMs)
        reference.observe(c.intendedMs, c.completedMs, c.ok);
    }
    assert.deepEqual(measured, reference.result(computeP99Recovery(timeline, measured.windowStartMs)));
    // Every request intended inside the window, exactly once: the schedule puts request i at i/rate.
    let inWindow = 0;
    for (let i = 0; (i * 1000) / rate < durationMs; i++) {
      const at = (i * 1000) / rate;
      if (at >= measured.windowStartMs && at < measured.windowEndMs) inWindow++;
    }
    assert.equal(measured.requests, inWindow);
    const stalled = pool.generator.some(
      (second) =>
        second.behind &&
        (second.t + 1) * 1000 > measured.windowStartMs &&
        second.t * 1000 < measured.windowEndMs,
    );
    return { measured, stalled };
  }

  test('a fault fired while three threads send: its window sees each completion once, in completion order, as one thread would', async () => {
    const runs = [];
    for (let run = 1; run <= 3; run++) {
      const outcome = await outageUnderThreeThreads();
      runs.push(outcome);
      if (outcome.measured.failed > 0 || !outcome.stalled) break;
    }
    const { measured } = runs.at(-1)!;
    const seen = `window ${measured.windowStartMs}–${measured.windowEndMs} ms: ${measured.requests} requests, ${measured.failed} failed; ${runs.length} runs, the generator fell behind in the window of ${runs.filter((r) => r.stalled).length}`;
    assert.ok(measured.failed > 0, `the outage failed requests; ${seen}`);
    assert.ok(measured.firstSuccessAfterFailureMs !== null, `and the target came back; ${seen}`);
  });

  test('without a load running a fault is only injected: no window, no resilience', async () => {
    const driver = outageDriver();
    const schedule = new FaultSchedule({ drivers: [driver], faultWindowMs: 1000 });
    const record = await schedule.fire({ target: 'mono', kind: 'hang', forMs: 5000 });
    assert.equal(record.ok, true);
    assert.equal(schedule.isOpen(record), false);
    assert.equal(schedule.resumed, false, 'its undo waits for its 5 s');
    schedule.resumeAll();
    await schedule.settle();
    assert.equal(schedule.resumed, true);
    assert.equal(driver.resumed, 1);
    assert.match(record.message, /connections reset; serving again/);
    downUntil = 0;
    resetsLeft = 0;
  });

  test('a fault no driver supports is recorded as not injected, saying why', async () => {
    const schedule = new FaultSchedule({ drivers: [outageDriver()], faultWindowMs: 1000 });
    const record = await schedule.fire({ target: 'mono', kind: 'kill' });
    assert.equal(record.ok, false);
    assert.equal(record.driver, 'none');
    assert.match(record.message, /no fault driver supports kill on 'mono'/);
  });
});
