import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { spreadOf } from '../cli/kit/spread.ts';
import { PLANS } from './plan.ts';
import type { Figure } from './repeats.ts';
import { benchTables, natsLine, renderMarkdown, renderTerminal, spreadCell } from './report.ts';
import type {
  BenchResults,
  Calibration,
  FigureProblem,
  TargetBench,
  TargetName,
  ThroughputRound,
} from './types.ts';

const cell = (v: number) => ({ median: v, min: v, max: v, n: 3 });

function figure<D>(values: number[], detail: (v: number, round: number) => D): Figure<D> {
  const samples = values.map((value, round) => ({ round, attempt: 1, value, detail: detail(value, round) }));
  return { samples, spread: spreadOf(values), discarded: [] };
}

const throughput = (rates: number[], othersCores: number | null = 0, firstFailure = true) =>
  figure(
    rates,
    (maxRate): ThroughputRound => ({
      maxRate,
      generatorBound: false,
      firstFailure: firstFailure ? { rate: Math.max(10, maxRate * 1.1), ok: false, reason: 'p99' } : null,
      steps: [{ rate: maxRate, ok: true, reason: 'ok', othersCores }],
      othersCores,
    }),
  );

function target(name: TargetName, rates: number[], othersCores: number | null = 0): TargetBench {
  return {
    name,
    kind: name === 'floor' || name === 'nginx' ? 'reference' : 'style',
    description: name,
    notes: [],
    warmUps: {},
    throughput: { '4k': throughput(rates, othersCores) },
    latency: {},
  };
}

const calibration: Calibration = {
  against: 'nginx',
  size: '4k',
  generatorThreads: 1,
  sendLagBoundUs: 1000,
  maxRate: figure([6000, 6500, 5800], (maxRate) => ({
    maxRate,
    generatorBound: true,
    firstFailure: null,
    steps: [],
    othersCores: 0,
  })),
  noiseRate: 1000,
  noiseFloor: figure([1500, 1800, 1400], (p99) => ({
    rate: 1000,
    durationMs: 1500,
    sent: 1500,
    ok: 1500,
    errors: 0,
    p50: 600,
    p90: 900,
    p99,
    p999: p99,
    max: p99,
    generatorBehind: false,
    othersCores: 0,
  })),
};

const results = (targets: TargetBench[], problems: FigureProblem[] = []): BenchResults => ({
  version: 2,
  tool: 'kstyles-bench',
  startedAt: '2026-01-01T00:00:00.000Z',
  durationMs: 1000,
  estimatedMs: 1200,
  security: { skipped: 'not run' },
  tracing: { skipped: 'not run' },
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
  method: {
    quick: true,
    plan: PLANS.quick,
    tradeoffs: ['no max throughput at 64 KiB'],
    ladderResolution: 0.09,
    commonRates: { '4k': 100 },
    text: [],
  },
  calibration,
  nats: { skipped: 'test' },
  targets,
  checks: [],
  problems,
  reruns: 2,
  reports: {},
});

const rowOf = (r: BenchResults, title: string, name: string) =>
  benchTables(r)
    .find((t) => t.title === title)!
    .rows.find((row) => row[0] === name)!;

describe('spreadCell', () => {
  it('shows the median with its range, and the rounds missing', () => {
    assert.equal(spreadCell(spreadOf([3, 1, 2]), String), '2 [1–3]');
    assert.equal(spreadCell(spreadOf([2, 2, 2]), String), '2 [all 2]');
    assert.equal(spreadCell(spreadOf([1, 3]), String, 3), '2 [1–3] (2 of 3)');
    assert.equal(spreadCell(null, String), '—');
  });
});

describe('natsLine', () => {
  it('gives both round trips with their spread and says which one the latency target adds', () => {
    const round = (p50Us: number) => ({
      count: 150,
      p50Us,
      p90Us: p50Us,
      p99Us: 2 * p50Us,
      p999Us: 3 * p50Us,
    });
    const line = natsLine({
      ...results([]),
      nats: {
        payloadBytes: 1024,
        how: '',
        backToBack: figure([200, 250, 210], round),
        paced: { ratePerSecond: 100, figure: figure([450, 500, 400], round) },
      },
    });
    assert.match(line, /back to back, p50 210µs \[200µs–250µs\]/);
    assert.match(
      line,
      /paced at 100\/s, next to the microkernel's 4 KiB latency windows \(its latency target adds two of these\), p50 450µs \[400µs–500µs\]/,
    );
    assert.equal(
      natsLine({ ...results([]), nats: { skipped: 'no nats-server' } }),
      'NATS round trip: not measured (no nats-server)',
    );
  });
});

describe('benchTables', () => {
  it('puts the instrument first: its rate per core and its noise floor, each with its spread', () => {
    const tables = benchTables(results([target('floor', [4000, 4200, 3900])]));
    assert.equal(tables[0]!.title, 'Instrument (calibration)');
    assert.deepEqual(tables[0]!.rows[0], [
      'nginx (4 KiB)',
      '1',
      '6,000 [5,800–6,500]',
      '1.50ms [1.40ms–1.80ms]',
      '600µs [all 600µs]',
    ]);
  });

  it('shows the instrument at the end beside the start, marked when it changed', () => {
    const closing = (maxRate: number, held: boolean): Calibration['closing'] => ({
      round: { maxRate, generatorBound: true, firstFailure: null, steps: [], othersCores: 0 },
      ratio: maxRate / 6000,
      held,
    });
    const instrument = (c: Calibration) =>
      benchTables({ ...results([target('floor', [4000, 4200, 3900])]), calibration: c })[0]!;
    const held = instrument({ ...calibration, closing: closing(6300, true) });
    assert.deepEqual(held.rows[1], ['… at the end', '1', '6,300 (1.05× the start)', '—', '—']);
    assert.match(held.notes.at(-1)!, /not comparable with another run's/);
    const changed = instrument({ ...calibration, closing: closing(400, false) });
    assert.equal(changed.rows[1]![2], '400 (0.07× the start ⚠)');
    const skipped = instrument({ ...calibration, closing: { skipped: 'nginx did not start' } });
    assert.equal(skipped.rows[1]![2], 'not checked: nginx did not start');
    // Results from before the check have one row.
    assert.equal(instrument(calibration).rows.length, 1);
  });

  it('gives every throughput its spread and every ratio round by round', () => {
    const r = results([target('floor', [4000, 4000, 5000]), target('monolith', [2000, 3000, 2500])]);
    const mono = rowOf(r, 'Max throughput', 'monolith');
    assert.equal(mono[2], '2,500 [2,000–3,000]');
    // Paired: 0.50, 0.75, 0.50 — not the ratio of the medians (0.625).
    assert.equal(mono[3], '0.50× [0.50×–0.75×]');
    assert.equal(mono[4], '1.00×');
  });

  it('marks an unstable ratio, a busy machine, a figure above what the generator holds, and a ceiling', () => {
    const unstable: FigureProblem = {
      figure: 'max throughput 4 KiB',
      kind: 'unstable',
      targets: ['monolith', 'floor'],
      message: 'monolith/floor unstable',
    };
    const floor = target('floor', [7000, 7000, 7000]);
    floor.throughput['4k'] = throughput([32_000, 32_000, 32_000], 0, false);
    const r = results([floor, target('monolith', [2000, 3000, 1000], 1.2)], [unstable]);
    const mono = rowOf(r, 'Max throughput', 'monolith');
    assert.match(mono[2]!, /†$/);
    assert.match(mono[3]!, /⚠$/);
    assert.equal(rowOf(r, 'Max throughput', 'floor')[2], '32,000 [all 32,000] (ceiling) ‡');
  });

  it('says a figure whose rounds were all left out, and a search where nothing passed', () => {
    const nginx = target('nginx', []);
    nginx.throughput['4k']!.discarded = [
      {
        round: 0,
        attempt: 2,
        value: 100,
        detail: throughput([100]).samples[0]!.detail,
        target: 'nginx',
        reason: 'nginx below the node:http floor',
      },
    ];
    const none = target('monolith', [0, 0, 0]);
    const r = results([target('floor', [4000, 4000, 4000]), nginx, none]);
    assert.equal(rowOf(r, 'Max throughput', 'nginx')[2], 'left out (see problems)');
    assert.equal(rowOf(r, 'Max throughput', 'monolith')[2], '< 10 (nothing passed)');
    assert.match(
      renderMarkdown(r),
      /left out: nginx max throughput 4 KiB, round 1 \(measurement 2\): 100 — nginx below the node:http floor/,
    );
  });

  it('shows grant against copy and shared memory when the microkernels ran', () => {
    const title = 'Microkernel transfers: grant vs copy vs shared memory';
    const r = results([
      target('microkernel', [1000, 1100, 900]),
      target('microkernel-copy', [500, 500, 450]),
      target('microkernel-shm', [1500, 1100, 1800]),
    ]);
    const transfer = benchTables(r).find((t) => t.title === title)!;
    assert.deepEqual(transfer.rows[0]!.slice(0, 6), [
      '4 KiB',
      '1,000 [900–1,100]',
      '500 [450–500]',
      '1,500 [1,100–1,800]',
      '2.00× [2.00×–2.20×]',
      '1.50× [1.00×–2.00×]',
    ]);
    // Without the copy microkernel, its cells are empty.
    const noCopy = results([target('microkernel', [1000]), target('microkernel-shm', [1500])]);
    assert.deepEqual(
      benchTables(noCopy)
        .find((t) => t.title === title)!
        .rows[0]!.slice(2, 6),
      ['—', '1,500 [all 1,500] (1 of 3)', '—', '1.50× [all 1.50×]'],
    );
    assert.equal(
      benchTables(results([target('microkernel', [1000])])).some((t) => t.title === title),
      false,
    );
  });

  it('shows the Security row measured of each style, and the tracing cost against tracing off', () => {
    const r: BenchResults = {
      ...results([target('monolith', [1000])]),
      security: {
        monolith: { hostile: { tried: 51, refused: 51, leaked: 0, unexpected: [] } },
      },
      tracing: {
        startedAt: '2026-01-01T00:00:00.000Z',
        rate: 200,
        durationMs: 5000,
        repeats: 3,
        ratio: 0.01,
        mix: 'small',
        loadAverage: { before: 0.1, after: 0.2 },
        offPathNsPerSpan: { median: 1.2, min: 1, max: 1.5, n: 7 },
        styles: [
          {
            style: 'monolith',
            describe: 'node bin/kstyles.js monolith',
            modes: [
              { mode: 'off', runs: [], p50Us: cell(500), p99Us: cell(900), cpuUsPerRequest: cell(400) },
              {
                mode: 'on',
                runs: [],
                p50Us: cell(550),
                p99Us: cell(1000),
                cpuUsPerRequest: cell(500),
                traced: { requests: 3000, spansPerRequest: 4, bytesPerRequest: 2000 },
              },
            ],
          },
        ],
      },
    };
    const tables = benchTables(r);
    const security = tables.find((t) => t.title.startsWith('Security'))!;
    assert.deepEqual(security.rows, [['monolith', 'hostile requests: 51 tried, 51 refused, 0 leaked']]);
    const tracing = tables.find((t) => t.title === 'Tracing cost')!;
    assert.deepEqual(
      tracing.rows.map((row) => [row[1], row[4], row[5], row[6]]),
      [
        ['off', '400 µs [all 400 µs]', '—', '—'],
        ['on', '500 µs [all 500 µs]', '+25%', '4.0'],
      ],
    );
    assert.equal(
      benchTables(results([target('monolith', [1000])])).some((t) => t.title === 'Tracing cost'),
      false,
      'no table for a phase that did not run',
    );
  });

  it('says recovery rounds that failed and never recovered in the window', () => {
    const mono = target('monolith', [3000, 3000, 3000]);
    const rounds: [number, number | null][] = [
      [75, 387],
      [0, null],
      [80, null],
    ];
    mono.recovery = figure(
      rounds.map(([failed]) => failed),
      (failed, round) => ({
        rate: 200,
        durationMs: 2500,
        faultAtMs: 750,
        injected: true,
        message: 'SIGKILL',
        requests: 350,
        failed,
        firstSuccessAfterFailureMs: rounds[round]![1],
        p99RecoveryMs: null,
      }),
    );
    const row = rowOf(results([mono]), 'Cold start, recovery and footprint', 'monolith');
    assert.equal(row[4], '75 [0–80] of 350');
    assert.equal(row[5], '387 ms [all 387 ms]; 1 of 2 never recovered in the window');
  });

  it('renders Markdown and the terminal with every table, what quick gives up, and the reruns', () => {
    const r = results([target('floor', [4000, 4000, 4000])]);
    const md = renderMarkdown(r);
    assert.match(md, /## Instrument \(calibration\)/);
    assert.match(md, /## Max throughput/);
    assert.match(md, /## Cold start, recovery and footprint/);
    assert.match(md, /\| floor \| 4 KiB \| 4,000 \[all 4,000\] \|/);
    assert.match(md, /## What quick gives up\n\n- no max throughput at 64 KiB/);
    assert.match(md, /2 measurement\(s\) taken again/);
    const text = renderTerminal(r);
    assert.match(text, /quick run, 3 rounds per figure, took 1 s \(planned 1 s\)/);
    assert.match(text, /Reruns and problems:/);
  });
});
