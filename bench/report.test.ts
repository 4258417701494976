import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { benchTables, renderMarkdown } from './report.ts';
import type { BenchResults, TargetBench, TargetName } from './types.ts';

function target(name: TargetName, rate: number, othersCores: number | null): TargetBench {
  return {
    name,
    kind: name === 'floor' ? 'reference' : 'style',
    description: name,
    notes: [],
    throughput: {
      '4k': {
        maxRate: rate,
        generatorBound: false,
        firstFailure: { rate: rate * 2, ok: false, reason: 'p99' },
        steps: [{ rate, ok: true, reason: 'ok', othersCores }],
      },
    },
    latency: {},
  };
}

const results = (targets: TargetBench[]): BenchResults =>
  ({
    version: 1,
    tool: 'kstyles-bench',
    startedAt: '2026-01-01T00:00:00.000Z',
    durationMs: 1000,
    machine: {
      cores: 2,
      cpuModel: 'cpu',
      memoryBytes: 1,
      os: 'os',
      node: 'v20',
      natsServer: null,
      nginx: null,
      loadAverage: [0, 0, 0],
      cpuPressure: null,
    },
    method: { quick: true, p99BoundMs: 50, commonRates: { '4k': 100 }, text: [] },
    nats: { skipped: 'test' },
    targets,
    checks: [],
    reports: {},
  }) as unknown as BenchResults;

describe('benchTables', () => {
  it('gives ratios to the floor and the monolith, and marks numbers taken on a busy machine', () => {
    const [perf] = benchTables(results([target('floor', 4000, 0.1), target('monolith', 3000, 1.2)]));
    const floor = perf!.rows.find((r) => r[0] === 'floor' && r[1] === '4 KiB')!;
    const mono = perf!.rows.find((r) => r[0] === 'monolith' && r[1] === '4 KiB')!;
    assert.equal(floor[2], '4,000');
    assert.equal(mono[2], '3,000 †');
    assert.equal(mono[3], '0.75×');
    assert.equal(mono[4], '1.00×');
  });

  it('shows a search where no rate passed as below the lowest rate tried', () => {
    const t = target('monolith', 0, null);
    t.throughput['4k']!.firstFailure = { rate: 10, ok: false, reason: 'p99' };
    const [perf] = benchTables(results([t]));
    assert.equal(perf!.rows[0]![2], '< 10');
  });

  it('says when the search reached its ceiling without a failure', () => {
    const t = target('floor', 32_000, 0);
    t.throughput['4k']!.firstFailure = null;
    const [perf] = benchTables(results([t]));
    assert.equal(perf!.rows[0]![2], '≥32,000 (ceiling)');
  });

  it('renders Markdown with every table', () => {
    const md = renderMarkdown(results([target('floor', 4000, 0)]));
    assert.match(md, /## Throughput and latency/);
    assert.match(md, /## Cold start, recovery and footprint/);
    assert.match(md, /\| floor \| 4 KiB \| 4,000 \|/);
  });
});
