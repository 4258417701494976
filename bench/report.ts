/**
 * The benchmark's tables (terminal, Markdown, HTML) and its report files. Every figure is the median
 * of its rounds with [min–max]; every ratio is taken round by round and shown the same way. Tables are
 * data (TABLES: a list of builders), so a new phase adds a table without touching the renderers.
 * Charts come from the load generator's SVG helpers, and the latency and recovery runs get the load
 * generator's own reports.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeDirectory } from '../cli/kit/make-directory.ts';
import { type Spread, spreadOf } from '../cli/kit/spread.ts';
import { type LoadResults, securityLines, writeReports } from '../load/index.ts';
import { targetColor } from '../load/report-html.ts';
import { escapeXml as esc, lineChart } from '../load/svg-charts.ts';
import { formatBytes, formatCount, formatMicros } from '../load/units.ts';
import { formatRatio } from './evaluate.ts';
import { type Figure, pairedRatios } from './repeats.ts';
import type { BenchRun } from './run-bench.ts';
import {
  type BenchResults,
  type Calibration,
  type NatsRound,
  SIZE_KEYS,
  SIZES,
  type SizeKey,
  type TargetBench,
  type TargetName,
  type ThroughputRound,
} from './types.ts';

export type Table = { title: string; head: string[]; rows: string[][]; notes: string[] };

/** Builds one table from the results, or null when the run measured nothing for it. */
export type TableBuilder = (results: BenchResults) => Table | null;

const count = formatCount;
const pct = (r: number) => `${Math.round(r * 100)}%`;
const ms = (v: number) => `${v < 10 ? v.toFixed(1) : v.toFixed(0)} ms`;

function find(results: BenchResults, name: TargetName): TargetBench | undefined {
  return results.targets.find((t) => t.name === name && !t.skipped);
}

/** Other work above this many cores (median over a measurement) makes the number not comparable. */
export const CONTENDED_CORES = 0.5;

/** "8,000 [7,500–8,500]", "—" for nothing, and "(2 of 3)" when rounds are missing. */
export function spreadCell(spread: Spread | null, format: (v: number) => string, rounds?: number): string {
  if (!spread) return '—';
  const range =
    spread.min === spread.max
      ? `[all ${format(spread.min)}]`
      : `[${format(spread.min)}–${format(spread.max)}]`;
  const missing = rounds !== undefined && spread.n < rounds ? ` (${spread.n} of ${rounds})` : '';
  return `${format(spread.median)} ${range}${missing}`;
}

/** A figure's cell: its spread, or why it has none. */
function figureCell(
  figure: Figure<unknown> | undefined,
  format: (v: number) => string,
  rounds: number,
): string {
  if (!figure) return '—';
  if (figure.samples.length === 0)
    return figure.discarded.length ? 'left out (see problems)' : 'not measured';
  return spreadCell(figure.spread, format, rounds);
}

/** a over b round by round (paired), as a spread. */
function pairedCell(a: Figure<unknown> | undefined, b: Figure<unknown> | undefined): string {
  return a && b ? spreadCell(spreadOf(pairedRatios(a.samples, b.samples)), formatRatio) : '—';
}

/** A ratio cell: per-round ratios of subject over reference, with ⚠ when the run found them unstable. */
function ratioCell(
  results: BenchResults,
  figure: string,
  subject: TargetName,
  a: Figure<unknown> | undefined,
  reference: TargetName,
  b: Figure<unknown> | undefined,
): string {
  if (!a || !b) return '—';
  if (subject === reference) return '1.00×';
  const cell = pairedCell(a, b);
  const unstable = results.problems.some(
    (p) =>
      p.kind === 'unstable' && p.figure === figure && p.targets[0] === subject && p.targets[1] === reference,
  );
  return unstable ? `${cell} ⚠` : cell;
}

function calibrationOf(results: BenchResults): Calibration | null {
  return 'skipped' in results.calibration ? null : results.calibration;
}

/** The instrument's limit as a total rate (per core times its threads), the median of its rounds. */
function instrumentRate(results: BenchResults): number | null {
  return calibrationOf(results)?.maxRate.spread?.median ?? null;
}

function throughputCell(results: BenchResults, t: TargetBench, size: SizeKey): string {
  const figure = t.throughput[size];
  if (!figure) return '—';
  const rounds = figure.samples.map((s) => s.detail);
  const cell = figureCell(figure, count, results.method.plan.rounds);
  if (rounds.length === 0) return cell;
  if (rounds.every((r) => r.maxRate === 0))
    return `< ${count(Math.min(...rounds.map((r) => r.firstFailure?.rate ?? 0)))} (nothing passed)`;
  const generator = rounds.some((r) => r.generatorBound) ? '≥' : '';
  const ceiling = rounds.every((r) => r.firstFailure === null) ? ' (ceiling)' : '';
  const instrument = instrumentRate(results);
  const beyond = instrument !== null && (figure.spread?.median ?? 0) > instrument ? ' ‡' : '';
  return `${generator}${cell}${ceiling}${beyond}${contended(rounds)}`;
}

function contended(rounds: readonly { othersCores: number | null }[]): string {
  const others = spreadOf(rounds.map((r) => r.othersCores).filter((v): v is number => typeof v === 'number'));
  return others && others.median > CONTENDED_CORES ? ' †' : '';
}

const instrumentTable: TableBuilder = (results) => {
  const c = calibrationOf(results);
  const rounds = results.method.plan.rounds;
  if (!c)
    return {
      title: 'Instrument (calibration)',
      head: ['generator against', 'result'],
      rows: [['—', `not calibrated: ${'skipped' in results.calibration ? results.calibration.skipped : ''}`]],
      notes: ['Without a calibration, no number below can be read against what the instrument resolves.'],
    };
  const perCore = (v: number) => count(v / c.generatorThreads);
  return {
    title: 'Instrument (calibration)',
    head: [
      'generator against',
      'threads',
      `max req/s per core (send-lag p99 < ${formatMicros(c.sendLagBoundUs)})`,
      `noise floor: p99 at ${count(c.noiseRate)} req/s`,
      `p50 at ${count(c.noiseRate)} req/s`,
    ],
    rows: [
      [
        `${c.against} (${SIZES[c.size].label})`,
        String(c.generatorThreads),
        figureCell(c.maxRate, perCore, rounds),
        figureCell(c.noiseFloor, formatMicros, rounds),
        spreadCell(spreadOf(c.noiseFloor.samples.map((s) => s.detail.p50)), formatMicros, rounds),
      ],
      ...closingRows(c, perCore),
    ],
    notes: [
      `Read every number below against this row: a max rate above what the generator holds (‡) is partly the generator's; a latency difference smaller than the noise floor is not resolved; a search step whose p99 lies within the noise floor of the ${results.method.plan.p99BoundMs} ms bound is measured again, then decided on errors and schedule.`,
      ...(c.closing
        ? [
            `At the end: the same search once more, after the throughput and latency phases, from the opening rounds' median. ⚠: outside their [min–max] ±${pct(results.method.plan.tolerance)}: the instrument changed during the run, and this run's ratios are not comparable with another run's.`,
          ]
        : []),
    ],
  };
};

/** The instrument check's row (bench/run-bench.ts): the generator's limit at the end of the run. */
function closingRows(c: Calibration, perCore: (v: number) => string): string[][] {
  if (!c.closing) return [];
  if ('skipped' in c.closing) return [['… at the end', '', `not checked: ${c.closing.skipped}`, '', '']];
  const { round, ratio, held } = c.closing;
  return [
    [
      '… at the end',
      String(c.generatorThreads),
      `${perCore(round.maxRate)} (${formatRatio(ratio)} the start${held ? '' : ' ⚠'})`,
      '—',
      '—',
    ],
  ];
}

const throughputTable: TableBuilder = (results) => {
  const floor = find(results, 'floor');
  const mono = find(results, 'monolith');
  const plan = results.method.plan;
  const table: Table = {
    title: 'Max throughput',
    head: ['target', 'size', 'max req/s', '×floor', '×monolith'],
    rows: [],
    notes: [
      `Median [min–max] of ${plan.rounds} rounds; a ratio is taken round by round. Max req/s: the highest open-loop rate on the search ladder (resolution ${pct(results.method.ladderResolution)}) with no failed request, p99 < ${plan.p99BoundMs} ms and the generator on schedule.`,
      `≥: in some round the next rate failed because the generator fell behind its schedule (on cores shared with the target, usually the target starving it). ‡: above the rate the generator holds with send-lag p99 < ${formatMicros(plan.calibration.sendLagBoundUs)} (the calibration): partly the generator's number. ⚠: the rounds of this ratio disagree beyond the tolerance after the reruns (see problems).`,
      `†: measured while other work on the machine used more than ${CONTENDED_CORES} of its cores (median over the rounds): not comparable with the other rows.`,
    ],
  };
  for (const t of results.targets) {
    if (t.skipped) {
      table.rows.push([t.name, 'all', 'skipped (see below)', '', '']);
      table.notes.push(`${t.name} skipped: ${t.skipped.replace(/\s+/g, ' ').trim()}`);
      continue;
    }
    for (const size of SIZE_KEYS) {
      const figure = t.throughput[size];
      if (!figure) continue;
      const name = `max throughput ${SIZES[size].label}`;
      table.rows.push([
        t.name,
        SIZES[size].label,
        throughputCell(results, t, size),
        ratioCell(results, name, t.name, figure, 'floor', floor?.throughput[size]),
        ratioCell(results, name, t.name, figure, 'monolith', mono?.throughput[size]),
      ]);
    }
  }
  return table.rows.length ? table : null;
};

const latencyTable: TableBuilder = (results) => {
  const floor = find(results, 'floor');
  const mono = find(results, 'monolith');
  const plan = results.method.plan;
  const table: Table = {
    title: 'Latency at the common rate',
    head: ['target', 'size', 'at req/s', 'p50', 'p99', 'p99.9', 'p50 ×floor', 'p50 ×monolith'],
    rows: [],
    notes: [
      `Median [min–max] of ${plan.rounds} rounds, each ${plan.latency.windowMs / 1000} s (at least ${plan.latency.minRequests} requests) at the same fixed rate for every target, from the intended send time; ratios of p50 round by round.`,
    ],
  };
  for (const t of results.targets) {
    if (t.skipped) continue;
    for (const size of SIZE_KEYS) {
      const figure = t.latency[size];
      if (!figure) continue;
      const rounds = figure.samples.map((s) => s.detail);
      const of = (pick: (r: (typeof rounds)[number]) => number) =>
        spreadCell(spreadOf(rounds.map(pick)), formatMicros, plan.rounds);
      const errors = rounds.reduce((n, r) => n + r.errors, 0);
      const name = `latency ${SIZES[size].label}`;
      table.rows.push([
        t.name,
        SIZES[size].label,
        count(plan.latency.rates[size]),
        figureCell(figure, formatMicros, plan.rounds),
        of((r) => r.p99),
        `${of((r) => r.p999)}${errors ? ` (${errors} err)` : ''}${contended(rounds)}`,
        ratioCell(results, name, t.name, figure, 'floor', floor?.latency[size]),
        ratioCell(results, name, t.name, figure, 'monolith', mono?.latency[size]),
      ]);
    }
  }
  return table.rows.length ? table : null;
};

/**
 * Grant against copy-through (how much of the microkernel's IPC cost is copies: Liedtke's lesson) and
 * against shared-memory segments (how much of the rest is the bus carrying the bytes).
 */
const transferTable: TableBuilder = (results) => {
  const grant = find(results, 'microkernel');
  const copy = find(results, 'microkernel-copy');
  const shm = find(results, 'microkernel-shm');
  if (!grant || (!copy && !shm)) return null;
  const rounds = results.method.plan.rounds;
  const rows = SIZE_KEYS.flatMap((size) => {
    const gt = grant.throughput[size];
    const ct = copy?.throughput[size];
    const st = shm?.throughput[size];
    const gl = grant.latency[size];
    const cl = copy?.latency[size];
    const sl = shm?.latency[size];
    if (!gt && !ct && !st && !gl && !cl && !sl) return [];
    return [
      [
        SIZES[size].label,
        figureCell(gt, count, rounds),
        figureCell(ct, count, rounds),
        figureCell(st, count, rounds),
        pairedCell(gt, ct),
        pairedCell(st, gt),
        figureCell(gl, formatMicros, rounds),
        figureCell(cl, formatMicros, rounds),
        figureCell(sl, formatMicros, rounds),
        pairedCell(cl, gl),
      ],
    ];
  });
  return {
    title: 'Microkernel transfers: grant vs copy vs shared memory',
    head: [
      'size',
      'grant max req/s',
      'copy max req/s',
      'shm max req/s',
      'grant ÷ copy',
      'shm ÷ grant',
      'grant p50',
      'copy p50',
      'shm p50',
      'copy ÷ grant p50',
    ],
    rows,
    notes: [
      "grant (the default): the file server authorizes each read, the stat's first 64 KiB included, and the driver sends the bytes straight to the gateway's reply subject; copy: every byte passes driver → file server → gateway (a small file's too, with its stat). The difference is what the extra copies cost (Liedtke: IPC cost is mostly what the kernel does around the message).",
      "shm: a grant whose payloads of 256 KiB and more the driver writes to a shared-memory segment (/dev/shm) that the gateway reads and removes; only the segment's name crosses the bus, and a chunk may be 1 MiB instead of 256 KiB. Smaller payloads travel as on a grant.",
    ],
  };
};

/** Fault → first success over the rounds with a failure; rounds that never recovered in the window say so. */
function firstSuccessCell(
  rounds: readonly { failed: number; firstSuccessAfterFailureMs: number | null }[],
  recovered: Spread | null,
): string {
  const failing = rounds.filter((r) => r.failed > 0);
  if (rounds.length === 0) return '—';
  if (failing.length === 0) return 'no failure';
  const never = failing.filter((r) => r.firstSuccessAfterFailureMs === null).length;
  const neverText = never ? `${never} of ${failing.length} never recovered in the window` : '';
  return recovered ? `${spreadCell(recovered, ms)}${never ? `; ${neverText}` : ''}` : neverText;
}

const lifeTable: TableBuilder = (results) => {
  const floor = find(results, 'floor');
  const mono = find(results, 'monolith');
  const rounds = results.method.plan.rounds;
  const table: Table = {
    title: 'Cold start, recovery and footprint',
    head: [
      'target',
      'cold start',
      '×floor',
      '×monolith',
      'killed → failed',
      'first success',
      'RSS peak',
      '×floor',
      '×monolith',
      'processes',
      'image',
    ],
    rows: [],
    notes: [
      `Median [min–max] over the rounds (cold start: ${results.method.plan.coldStartRounds} rounds). Cold start: spawn → first 200 of a 4 KiB file. Recovery: SIGKILL of the part a driver bug kills, under a steady 4 KiB rate; failed requests of those sent in the window, and fault → first success after the first failure (rounds with a failure).`,
      "RSS: peak of the process tree's summed VmRSS during each round's latency windows.",
    ],
  };
  for (const t of results.targets) {
    if (t.skipped) continue;
    const rec = t.recovery;
    const fp = t.footprint;
    const recRounds = rec?.samples.map((s) => s.detail) ?? [];
    const firstSuccess = spreadOf(
      recRounds.map((r) => r.firstSuccessAfterFailureMs).filter((v): v is number => v !== null),
    );
    const requests = spreadOf(recRounds.map((r) => r.requests));
    table.rows.push([
      t.name,
      figureCell(t.coldStart, ms, results.method.plan.coldStartRounds),
      ratioCell(results, 'cold start', t.name, t.coldStart, 'floor', floor?.coldStart),
      ratioCell(results, 'cold start', t.name, t.coldStart, 'monolith', mono?.coldStart),
      rec
        ? `${figureCell(rec, count, rounds)}${requests ? ` of ${count(requests.median)}` : ''}${recRounds.some((r) => !r.injected) ? ' (not injected)' : ''}`
        : '—',
      rec ? firstSuccessCell(recRounds, firstSuccess) : '—',
      figureCell(fp, formatBytes, rounds),
      ratioCell(results, 'RSS', t.name, fp, 'floor', floor?.footprint),
      ratioCell(results, 'RSS', t.name, fp, 'monolith', mono?.footprint),
      fp?.samples.length ? String(Math.max(...fp.samples.map((s) => s.detail.processes))) : '—',
      t.image?.imageBytes !== undefined
        ? `${formatBytes(t.image.imageBytes)}, ${t.image.fileCount ?? '?'} files${t.image.hasShell === false ? ', no shell' : ''}`
        : '—',
    ]);
  }
  return table.rows.length ? table : null;
};

/** The seed's Security row, measured once against the running styles (load/security-facts.ts). */
const securityTable: TableBuilder = (results) => {
  const title = 'Security (measured once against the running styles)';
  if ('skipped' in results.security) {
    return results.security.skipped === 'not run'
      ? null
      : {
          title,
          head: ['target', 'result'],
          rows: [['—', `not measured: ${results.security.skipped}`]],
          notes: [],
        };
  }
  const rows = Object.entries(results.security).map(([name, facts]) => [
    name,
    securityLines(facts).join('; ') || '—',
  ]);
  return {
    title,
    head: ['target', 'the request parser and what it can reach'],
    rows,
    notes: [
      "As in every `kstyles load` report: the hostile battery, the parser's own kstyles_security_* gauges, /proc of the process listening on the port, and for a microkernel its NATS isolation tried live by its supervisor with each role's credentials (load/README.md, 'The Security row').",
    ],
  };
};

/** What tracing costs each style: off, on (every request traced) and sampled, interleaved runs. */
const tracingTable: TableBuilder = (results) => {
  const tracing = results.tracing;
  if ('skipped' in tracing) return null;
  const us = (v: number) => `${Math.round(v)} µs`;
  const range = (s: Spread, format: (v: number) => string) => spreadCell(s, format, tracing.repeats);
  const rows = tracing.styles.flatMap((style) => {
    const off = style.modes.find((m) => m.mode === 'off')?.cpuUsPerRequest.median ?? 0;
    return style.modes.map((mode) => [
      style.style,
      mode.mode === 'sampled' ? `sampled ${tracing.ratio}` : mode.mode,
      range(mode.p50Us, formatMicros),
      range(mode.p99Us, formatMicros),
      range(mode.cpuUsPerRequest, us),
      mode.mode === 'off' || off === 0
        ? '—'
        : `${mode.cpuUsPerRequest.median - off >= 0 ? '+' : ''}${Math.round(((mode.cpuUsPerRequest.median - off) / off) * 100)}%`,
      mode.traced ? mode.traced.spansPerRequest.toFixed(1) : '—',
    ]);
  });
  return {
    title: 'Tracing cost',
    head: ['style', 'tracing', 'p50', 'p99', 'CPU per request', 'CPU vs off', 'spans per trace'],
    rows,
    notes: [
      `Each style started three times (tracing off: no exporter, the SDK not loaded; on: the file exporter, every request; sampled: parent-based ratio ${tracing.ratio}), ${tracing.rate} req/s of small files for ${tracing.durationMs / 1000} s per run, the three interleaved, ${tracing.repeats} runs each: median [min–max]. CPU: the style's whole process tree (/proc) over the run ÷ requests.`,
      `With tracing off every span site is a check that returns at once: ${spreadCell(tracing.offPathNsPerSpan, (v) => `${v.toFixed(1)} ns`)} per site, timed here (bench/tracing-cost.ts).`,
    ],
  };
};

/** The tables in the order every output shows them; a new phase's table is one more builder. */
export const TABLES: TableBuilder[] = [
  instrumentTable,
  throughputTable,
  latencyTable,
  transferTable,
  lifeTable,
  securityTable,
  tracingTable,
];

export function benchTables(results: BenchResults): Table[] {
  return TABLES.map((build) => build(results)).filter((t): t is Table => t !== null);
}

const STATUS_MARK = {
  met: '✔ met',
  missed: '✘ MISSED',
  'not decided': '~ not decided',
  'not measured': '? not measured',
};

export function checkLines(results: BenchResults): string[] {
  return results.checks.map(
    (c) => `${STATUS_MARK[c.status].padEnd(14)}  (#${c.issues.join(', #')}) ${c.statement}: ${c.evidence}`,
  );
}

/** Reruns, what stayed wrong, and every measurement left out of the tables, with the reason. */
export function problemLines(results: BenchResults): string[] {
  const lines = [`${results.reruns} measurement(s) taken again (sanity rules, disagreeing ratios).`];
  for (const p of results.problems) lines.push(`⚠ ${p.figure}: ${p.message}`);
  for (const t of results.targets) {
    const figures: [string, Figure<unknown> | undefined][] = [
      ...SIZE_KEYS.map((s): [string, Figure<unknown> | undefined] => [
        `max throughput ${SIZES[s].label}`,
        t.throughput[s],
      ]),
      ...SIZE_KEYS.map((s): [string, Figure<unknown> | undefined] => [
        `latency ${SIZES[s].label}`,
        t.latency[s],
      ]),
      ['cold start', t.coldStart],
    ];
    for (const [figure, f] of figures)
      for (const d of f?.discarded ?? [])
        lines.push(
          `left out: ${t.name} ${figure}, round ${d.round + 1} (measurement ${d.attempt}): ${count(d.value)} — ${d.reason}`,
        );
  }
  return lines;
}

export function natsLine(results: BenchResults): string {
  const n = results.nats;
  if ('skipped' in n) return `NATS round trip: not measured (${n.skipped})`;
  const describe = (label: string, figure: Figure<NatsRound>) => {
    const rounds = figure.samples.map((s) => s.detail);
    const of = (pick: (r: NatsRound) => number) =>
      spreadCell(spreadOf(rounds.map(pick)), formatMicros, results.method.plan.rounds);
    return `${label}, p50 ${of((r) => r.p50Us)}, p99 ${of((r) => r.p99Us)}, p99.9 ${of((r) => r.p999Us)} (${rounds.length} rounds of ${rounds[0]?.count ?? 0})`;
  };
  return `NATS 1 KiB request/reply round trip: ${describe('back to back', n.backToBack)}; ${describe(`paced at ${n.paced.ratePerSecond}/s, next to the microkernel's 4 KiB latency windows (its latency target adds two of these)`, n.paced.figure)}`;
}

/** Median cores used by the rest of the machine during the measurements (steps and latency runs). */
export function othersCpuMedian(results: BenchResults): number | null {
  const values = results.targets.flatMap((t) => [
    ...Object.values(t.throughput).flatMap(
      (f) => f?.samples.flatMap((s) => s.detail.steps.map((x) => x.othersCores)) ?? [],
    ),
    ...Object.values(t.latency).flatMap((f) => f?.samples.map((s) => s.detail.othersCores) ?? []),
  ]);
  return spreadOf(values.filter((v): v is number => typeof v === 'number'))?.median ?? null;
}

export function machineLine(results: BenchResults): string {
  const m = results.machine;
  const others = othersCpuMedian(results);
  return `${m.cores} × ${m.cpuModel}, ${formatBytes(m.memoryBytes)} RAM, ${m.os}, node ${m.node}, ${m.natsServer ?? 'no nats-server'}, ${m.nginx ?? 'no nginx'}; load average ${m.loadAverage.join(' ')} at the start${m.loadAverageEnd ? `, ${m.loadAverageEnd.join(' ')} at the end` : ''}${m.cpuPressure !== null ? `; CPU pressure (tasks waiting for a CPU, last 60 s) ${pct(m.cpuPressure)} at the start${m.cpuPressureEnd !== undefined && m.cpuPressureEnd !== null ? `, ${pct(m.cpuPressureEnd)} at the end` : ''}` : ''}${others !== null ? `; other work on the machine used a median ${others.toFixed(1)} of its ${m.cores} cores during the measurements` : ''}`;
}

function runLine(results: BenchResults): string {
  const fewer =
    results.method.plan.rounds < 3 ? ' — fewer than 3 rounds: a development run, not a result' : '';
  return `${results.method.quick ? 'quick' : 'full'} run, ${results.method.plan.rounds} rounds per figure, took ${(results.durationMs / 1000).toFixed(0)} s (planned ${(results.estimatedMs / 1000).toFixed(0)} s)${fewer}`;
}

function pad(table: Table): string[] {
  const widths = table.head.map((h, i) => Math.max(h.length, ...table.rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) =>
    r
      .map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [fmt(table.head), widths.map((w) => '─'.repeat(w)).join('  '), ...table.rows.map(fmt)];
}

/** The whole result for the terminal. */
export function renderTerminal(results: BenchResults): string {
  const out: string[] = [
    '',
    `kstyles bench — ${runLine(results)}`,
    machineLine(results),
    natsLine(results),
    '',
  ];
  if (results.method.tradeoffs.length)
    out.push(`${results.method.plan.name} gives up:`, ...results.method.tradeoffs.map((l) => `  - ${l}`), '');
  for (const table of benchTables(results)) {
    out.push(table.title, ...pad(table), ...table.notes.map((n) => `  ${n}`), '');
  }
  out.push('Targets (issues #8 and #17):', ...checkLines(results).map((l) => `  ${l}`), '');
  out.push('Reruns and problems:', ...problemLines(results).map((l) => `  ${l}`));
  for (const t of results.targets) for (const note of t.notes) out.push(`  note: ${t.name}: ${note}`);
  return `${out.join('\n')}\n`;
}

const mdCell = (s: string) => s.replace(/\|/g, '\\|');

export function markdownTable(table: Table): string[] {
  return [
    `| ${table.head.map(mdCell).join(' | ')} |`,
    `|${table.head.map((_, i) => (i === 0 ? '---' : '--:')).join('|')}|`,
    ...table.rows.map((r) => `| ${r.map(mdCell).join(' | ')} |`),
  ];
}

function stepText(r: ThroughputRound): string {
  return r.steps
    .map(
      (s) =>
        `${s.rate} ${s.ok ? '✓' : `✗ (${s.reason})`}${s.othersCores != null ? ` [others ${s.othersCores.toFixed(1)} cores]` : ''}`,
    )
    .join(' → ');
}

export function renderMarkdown(results: BenchResults): string {
  const out: string[] = ['# kernel-styles benchmark', '', `${results.startedAt} · ${runLine(results)}`, ''];
  out.push('## Machine', '', machineLine(results), '', natsLine(results), '');
  if (results.method.tradeoffs.length)
    out.push(
      `## What ${results.method.plan.name} gives up`,
      '',
      ...results.method.tradeoffs.map((l) => `- ${l}`),
      '',
    );
  for (const table of benchTables(results)) {
    out.push(`## ${table.title}`, '', ...markdownTable(table), '', ...table.notes, '');
  }
  out.push('## Targets (issues #8 and #17)', '', ...checkLines(results).map((l) => `- ${l}`), '');
  out.push('## Reruns and problems', '', ...problemLines(results).map((l) => `- ${l}`), '');
  const notes = results.targets.flatMap((t) => t.notes.map((n) => `- ${t.name}: ${n}`));
  if (notes.length) out.push('## Notes', '', ...notes, '');
  out.push('## Method', '', ...results.method.text.map((t) => `- ${t}`), '');
  for (const t of results.targets)
    out.push(`- **${t.name}**: ${t.skipped ? `skipped — ${t.skipped}` : t.description}`);
  out.push('');
  const reports = Object.entries(results.reports);
  if (reports.length) out.push('## Load reports', '', ...reports.map(([k, v]) => `- ${k}: [${v}](${v})`), '');
  out.push('## Search steps', '');
  const c = calibrationOf(results);
  for (const s of c?.maxRate.samples ?? [])
    out.push(`- calibration, round ${s.round + 1}: ${stepText(s.detail)}`);
  for (const t of results.targets) {
    for (const size of SIZE_KEYS) {
      for (const s of t.throughput[size]?.samples ?? [])
        out.push(`- ${t.name} ${SIZES[size].label}, round ${s.round + 1}: ${stepText(s.detail)}`);
    }
  }
  out.push('');
  return `${out.join('\n')}\n`;
}

function barChart(
  title: string,
  yLabel: string,
  bars: { name: string; value: number }[],
  formatY: (y: number) => string,
): string {
  const shown = bars.filter((b) => b.value > 0);
  return lineChart({
    title,
    xLabel: 'target',
    yLabel,
    xMin: -0.5,
    xMax: Math.max(0.5, shown.length - 0.5),
    xTicks: shown.map((b, i) => ({ at: i, label: b.name })),
    formatY,
    height: 260,
    series: shown.map((b, i) => ({
      name: b.name,
      color: targetColor(b.name, i),
      bars: true,
      points: [[i, b.value]],
    })),
  });
}

function htmlTable(table: Table): string {
  return `<table><thead><tr>${table.head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${table.rows
    .map(
      (r) =>
        `<tr>${r.map((c, i) => (i === 0 ? `<th scope="row">${esc(c)}</th>` : `<td>${esc(c)}</td>`)).join('')}</tr>`,
    )
    .join('')}</tbody></table>${table.notes.map((n) => `<p class="note">${esc(n)}</p>`).join('')}`;
}

const CSS = `body{margin:0;background:#fafaf8;color:#1d2330;font:15px/1.5 system-ui,sans-serif}main{max-width:1200px;margin:0 auto;padding:28px 22px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:10px;padding:18px 20px;margin:16px 0;overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:13.5px}
th,td{text-align:right;padding:5px 7px;border-bottom:1px solid #e5e7eb;white-space:nowrap}th:first-child{text-align:left}
.note{color:#6b7280;font-size:13px}.met{color:#2b9348}.missed{color:#b00020;font-weight:600}.nm{color:#c05621}
svg.chart{display:block;margin:8px 0 16px}svg .chart-title{font-size:14px;font-weight:600}svg .tick,svg .legend{font-size:11px;fill:#4b5563}
svg .axis{font-size:12px;fill:#6b7280}svg .grid{stroke:#eef0f3}svg .frame{fill:none;stroke:#d1d5db}svg .muted{fill:#6b7280}`;

const median = (f: Figure<unknown> | undefined) => f?.spread?.median ?? 0;

export function renderHtml(results: BenchResults): string {
  const shown = results.targets.filter((t) => !t.skipped);
  const charts: string[] = [];
  for (const size of SIZE_KEYS) {
    if (!shown.some((t) => t.throughput[size])) continue;
    charts.push(
      barChart(
        `Max sustainable throughput, ${SIZES[size].label} (median of the rounds)`,
        'req/s',
        shown.map((t) => ({ name: t.name, value: median(t.throughput[size]) })),
        (y) => count(y),
      ),
    );
  }
  for (const size of SIZE_KEYS) {
    if (!shown.some((t) => t.latency[size])) continue;
    charts.push(
      barChart(
        `p50 latency at ${results.method.commonRates[size] ?? '—'} req/s, ${SIZES[size].label} (median of the rounds)`,
        'p50',
        shown.map((t) => ({ name: t.name, value: median(t.latency[size]) })),
        formatMicros,
      ),
    );
  }
  charts.push(
    barChart(
      'Cold start (median, spawn → first 200)',
      'ms',
      shown.map((t) => ({ name: t.name, value: median(t.coldStart) })),
      (y) => `${y.toFixed(0)} ms`,
    ),
    barChart(
      'RSS peak under load (process tree, median of the rounds)',
      'RSS',
      shown.map((t) => ({ name: t.name, value: median(t.footprint) })),
      formatBytes,
    ),
  );
  const checks = results.checks
    .map(
      (c) =>
        `<li class="${c.status === 'met' ? 'met' : c.status === 'missed' ? 'missed' : 'nm'}">${esc(c.status)} — (#${c.issues.join(', #')}) ${esc(c.statement)}: ${esc(c.evidence)}</li>`,
    )
    .join('');
  const links = Object.entries(results.reports)
    .filter(([, v]) => v.endsWith('.html'))
    .map(([k, v]) => `<li><a href="${esc(v)}">${esc(k)}</a></li>`)
    .join('');
  const gives = results.method.tradeoffs.length
    ? `<section><h2>What ${esc(results.method.plan.name)} gives up</h2><ul>${results.method.tradeoffs.map((l) => `<li>${esc(l)}</li>`).join('')}</ul></section>`
    : '';
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>kernel-styles benchmark</title><style>${CSS}</style></head><body><main>
<h1>kernel-styles benchmark</h1><p class="note">${esc(results.startedAt)} · ${esc(runLine(results))}<br>${esc(machineLine(results))}<br>${esc(natsLine(results))}</p>
${gives}
<section><h2>Targets (issues #8 and #17)</h2><ul>${checks}</ul></section>
${benchTables(results)
  .map((t) => `<section><h2>${esc(t.title)}</h2>${htmlTable(t)}</section>`)
  .join('')}
<section><h2>Reruns and problems</h2><ul>${problemLines(results)
    .map((l) => `<li>${esc(l)}</li>`)
    .join('')}</ul></section>
<section><h2>Charts</h2>${charts.join('')}</section>
<section><h2>Method</h2><ul>${results.method.text.map((t) => `<li>${esc(t)}</li>`).join('')}</ul></section>
${links ? `<section><h2>Load reports of the latency and recovery runs</h2><ul>${links}</ul></section>` : ''}
</main></body></html>
`;
}

/** One load report for several runs of the same shape (same rate): their targets side by side. */
export function combineRuns(runs: LoadResults[]): LoadResults | null {
  const [first, ...rest] = runs;
  if (!first) return null;
  return {
    ...first,
    durationMs: Math.max(...runs.map((r) => r.durationMs)),
    targets: runs.flatMap((r) => r.targets),
    faults: runs.flatMap((r) => r.faults),
    generator: {
      ...first.generator,
      warnings: [first, ...rest].flatMap((r) =>
        r.generator.warnings.map((w) => `${r.targets[0]?.name ?? ''}: ${w}`),
      ),
    },
  };
}

/** Writes results.json, report.md, report.html, and the load generator's reports of the runs. */
export async function writeBenchReports(run: BenchRun, outDir: string): Promise<string[]> {
  makeDirectory(outDir);
  const results = run.results;
  for (const size of SIZE_KEYS) {
    const combined = combineRuns(run.loadRuns.latency[size] ?? []);
    if (!combined) continue;
    const dir = path.join(outDir, `latency-${size}`);
    await writeReports(combined, dir);
    results.reports[`latency ${SIZES[size].label}`] = `latency-${size}/report.html`;
  }
  const recovery = combineRuns(run.loadRuns.recovery);
  if (recovery) {
    await writeReports(recovery, path.join(outDir, 'recovery'));
    results.reports.recovery = 'recovery/report.html';
  }
  const files = [
    path.join(outDir, 'results.json'),
    path.join(outDir, 'report.md'),
    path.join(outDir, 'report.html'),
  ];
  await writeFile(files[0]!, `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(files[1]!, renderMarkdown(results));
  await writeFile(files[2]!, renderHtml(results));
  return files;
}
