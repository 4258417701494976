import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  checkThresholdTargets,
  evaluateThresholds,
  parseThreshold,
  ThresholdError,
  thresholdExitCode,
} from './thresholds.ts';
import { emptyOutcomeCounts, type LoadResults, type TargetResult } from './types.ts';

function target(name: string, patch: Partial<TargetResult>): TargetResult {
  const summary = { count: 100, p50: 900, p90: 2000, p99: 40_000, p999: 60_000, max: 80_000, mean: 1500 };
  return {
    name,
    url: 'http://127.0.0.1:1',
    sent: 100,
    completed: 100,
    outcomes: { ...emptyOutcomeCounts(), ok: 100 },
    availability: 1,
    throughput: 10,
    bytes: 0,
    latency: summary,
    serviceTime: summary,
    sendLag: summary,
    histograms: { latency: '', serviceTime: '', sendLag: '' },
    timeline: [],
    errorSamples: [],
    ...patch,
  };
}

function results(targets: TargetResult[]): LoadResults {
  return {
    version: 1,
    tool: 'kstyles-load',
    startedAt: new Date(0).toISOString(),
    durationMs: 10_000,
    rate: 10,
    connections: 1,
    seed: 1,
    timeoutMs: 5000,
    mix: 'small',
    corpus: { dir: '.', files: 1, seed: 1 },
    targets,
    faults: [],
    generator: {
      timeline: [],
      eventLoop: { count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 },
      warnings: [],
    },
  };
}

describe('thresholds', () => {
  test('parse latency, ratio and count thresholds into ms, ratios and counts', () => {
    assert.deepEqual(parseThreshold('monolith:p99<50ms'), {
      expression: 'monolith:p99<50ms',
      scope: 'monolith',
      metric: 'p99',
      op: '<',
      value: 50,
    });
    assert.equal(parseThreshold('x:p99<=1.5s').value, 1500);
    assert.equal(parseThreshold('x:p50<800us').value, 0.8);
    assert.equal(parseThreshold('*:availability>=99.9%').value, 0.999);
    assert.equal(parseThreshold('*:availability>=0.95').value, 0.95);
    assert.equal(parseThreshold('unikernel:data_loss==0').op, '==');
  });

  const bad: [string, RegExp][] = [
    ['monolith:p99', /expected TARGET:METRIC OP VALUE/],
    ['p99<50ms', /must start with a target name/],
    ['monolith:latency<50ms', /unknown metric 'latency'/],
    ['*:availability>=99.9', /availability is a ratio: write 99.9% or 0.999/],
    ['x:errors==0ms', /errors is a plain number/],
    ['x:p99<5%', /p99 is a time/],
    ['x:errors=0', /use '==' for equality/],
  ];
  for (const [text, message] of bad) {
    test(`clear parse error for '${text}'`, () => {
      assert.throws(
        () => parseThreshold(text),
        (err: Error) => err instanceof ThresholdError && message.test(err.message),
      );
    });
  }

  test('an unknown target is rejected before the run', () => {
    assert.throws(
      () => checkThresholdTargets([parseThreshold('nope:p99<1s')], ['monolith']),
      /'nope' is not a load target/,
    );
  });

  test('decide the exit code: 0 when all hold, 1 when one fails; * checks every target', () => {
    const r = results([
      target('monolith', {}),
      target('microkernel', { outcomes: { ...emptyOutcomeCounts(), ok: 98, '5xx': 2 }, availability: 0.98 }),
    ]);
    const pass = evaluateThresholds(r, [
      parseThreshold('monolith:p99<50ms'),
      parseThreshold('monolith:errors==0'),
    ]);
    assert.equal(thresholdExitCode(pass), 0);
    const fail = evaluateThresholds(r, [
      parseThreshold('*:availability>=99%'),
      parseThreshold('microkernel:errors==0'),
    ]);
    assert.deepEqual(
      fail.map((o) => [o.expression, o.pass, o.actual]),
      [
        ['*:availability>=99% [monolith]', true, '100%'],
        ['*:availability>=99% [microkernel]', false, '98.000%'],
        ['microkernel:errors==0', false, '2'],
      ],
    );
    assert.equal(thresholdExitCode(fail), 1);
    assert.equal(thresholdExitCode(evaluateThresholds(r, [parseThreshold('monolith:p99<30ms')])), 1);
  });
});
