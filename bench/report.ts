/**
 * The benchmark's tables (terminal, Markdown, HTML) and its report files. Charts come from the load
 * generator's SVG helpers, and the latency and recovery runs get the load generator's own reports.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type LoadResults, writeReports } from '../load/index.ts';
import { targetColor } from '../load/report-html.ts';
import { escapeXml as esc, lineChart } from '../load/svg-charts.ts';
import { formatBytes, formatMicros } from '../load/units.ts';
import { formatRatio, ratio } from './evaluate.ts';
import type { BenchRun } from './run-bench.ts';
import {
  type BenchResults,
  SIZE_KEYS,
  SIZES,
  type SizeKey,
  type TargetBench,
  type ThroughputResult,
} from './types.ts';

export type Table = { title: string; head: string[]; rows: string[][]; notes: string[] };

const count = (n: number) => Math.round(n).toLocaleString('en-US');
const pct = (r: number) => `${Math.round(r * 100)}%`;
const ms = (v: number) => `${v < 10 ? v.toFixed(1) : v.toFixed(0)} ms`;

function find(results: BenchResults, name: string): TargetBench | undefined {
  return results.targets.find((t) => t.name === name && !t.skipped);
}

/** Other work above this many cores (median over a measurement) makes the number not comparable. */
export const CONTENDED_CORES = 0.5;

function median(values: number[]): number | null {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)]! : null;
}

/** Median cores the rest of the machine used during a throughput search. */
export function searchOthersCores(r: ThroughputResult): number | null {
  return median(r.steps.map((s) => s.othersCores).filter((v): v is number => typeof v === 'number'));
}

const contended = (cores: number | null | undefined) =>
  typeof cores === 'number' && cores > CONTENDED_CORES ? ' †' : '';

function throughputCell(t: TargetBench, size: SizeKey): string {
  if (t.skipped) return 'skipped';
  const r = t.throughput[size];
  if (!r) return '—';
  return `${throughputNumber(r)}${contended(searchOthersCores(r))}`;
}

function throughputNumber(r: ThroughputResult): string {
  if (r.maxRate === 0) return `< ${count(r.firstFailure?.rate ?? 0)}`;
  // Nothing failed: the search stopped at its ceiling.
  if (r.firstFailure === null) return `≥${count(r.maxRate)} (ceiling)`;
  return `${r.generatorBound ? '≥' : ''}${count(r.maxRate)}`;
}

/** The tables every output shares: throughput and latency per size, then start, recovery and memory. */
export function benchTables(results: BenchResults): Table[] {
  const floor = find(results, 'floor');
  const mono = find(results, 'monolith');
  const rates = results.method.commonRates;
  const perf: Table = {
    title: 'Throughput and latency',
    head: [
      'target',
      'size',
      'max req/s',
      '×floor',
      '×monolith',
      'at req/s',
      'p50',
      'p99',
      'p99.9',
      'p50 ×floor',
      'p50 ×monolith',
    ],
    rows: [],
    notes: [
      `max req/s: highest open-loop rate with no failed request, p99 < ${results.method.p99BoundMs} ms and the generator on schedule (≥: the next rate failed because the generator fell behind its schedule; on cores shared with the target that usually means the target's CPU use starved the generator, so a separate load machine might find a little more).`,
      `†: measured while other work on the machine used more than ${CONTENDED_CORES} of its cores (median over the search, or over the latency run): not comparable with the other rows.`,
      `Latency at the common rate (${SIZE_KEYS.map((s) => `${SIZES[s].label} @ ${rates[s] ?? '—'} req/s`).join(', ')}): from the intended send time. Ratios: the target's number divided by the floor's / the monolith's.`,
    ],
  };
  for (const t of results.targets) {
    if (t.skipped) {
      perf.rows.push([t.name, 'all', 'skipped (see below)', '', '', '', '', '', '', '', '']);
      perf.notes.push(`${t.name} skipped: ${t.skipped.replace(/\s+/g, ' ').trim()}`);
      continue;
    }
    for (const size of SIZE_KEYS) {
      const max = t.throughput[size]?.maxRate;
      const lat = t.latency[size];
      const p50 = lat && lat.ok > 0 ? lat.p50 : undefined;
      perf.rows.push([
        t.name,
        SIZES[size].label,
        throughputCell(t, size),
        formatRatio(ratio(max, floor?.throughput[size]?.maxRate)),
        formatRatio(ratio(max, mono?.throughput[size]?.maxRate)),
        lat ? count(lat.rate) : '—',
        p50 !== undefined ? formatMicros(lat!.p50) : '—',
        lat && lat.ok > 0 ? formatMicros(lat.p99) : '—',
        lat && lat.ok > 0
          ? `${formatMicros(lat.p999)}${lat.errors ? ` (${lat.errors} err)` : ''}${contended(lat.othersCores)}`
          : '—',
        formatRatio(ratio(p50, floor?.latency[size]?.p50)),
        formatRatio(ratio(p50, mono?.latency[size]?.p50)),
      ]);
    }
  }
  const life: Table = {
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
      'Cold start: median spawn → first 200 of a 4 KiB file (min–max). Recovery: SIGKILL of the part a driver bug kills, under a steady 4 KiB rate; failed requests of those sent in the window, and fault → first success after the first failure.',
      "RSS: peak of the process tree's summed VmRSS during the latency runs.",
    ],
  };
  for (const t of results.targets) {
    if (t.skipped) continue;
    const cs = t.coldStart;
    const rec = t.recovery;
    const fp = t.footprint;
    life.rows.push([
      t.name,
      cs ? `${ms(cs.medianMs)} (${cs.minMs.toFixed(0)}–${cs.maxMs.toFixed(0)})` : '—',
      formatRatio(ratio(cs?.medianMs, floor?.coldStart?.medianMs)),
      formatRatio(ratio(cs?.medianMs, mono?.coldStart?.medianMs)),
      rec ? `${count(rec.failed)} of ${count(rec.requests)}${rec.injected ? '' : ' (not injected)'}` : '—',
      rec
        ? rec.firstSuccessAfterFailureMs === null
          ? rec.failed
            ? 'never'
            : 'no failure'
          : ms(rec.firstSuccessAfterFailureMs)
        : '—',
      fp ? formatBytes(fp.rssPeakBytes) : '—',
      formatRatio(ratio(fp?.rssPeakBytes, floor?.footprint?.rssPeakBytes)),
      formatRatio(ratio(fp?.rssPeakBytes, mono?.footprint?.rssPeakBytes)),
      fp ? String(fp.processes) : '—',
      fp?.imageBytes !== undefined
        ? `${formatBytes(fp.imageBytes)}, ${fp.fileCount ?? '?'} files${fp.hasShell === false ? ', no shell' : ''}`
        : '—',
    ]);
  }
  return [perf, life];
}

export function checkLines(results: BenchResults): string[] {
  return results.checks.map(
    (c) =>
      `${c.status === 'met' ? '✔ met   ' : c.status === 'missed' ? '✘ MISSED' : '? not measured'}  ${c.statement}: ${c.evidence}`,
  );
}

export function natsLine(results: BenchResults): string {
  const n = results.nats;
  return 'skipped' in n
    ? `NATS round trip: not measured (${n.skipped})`
    : `NATS 1 KiB request/reply round trip: p50 ${formatMicros(n.p50Us)}, p99 ${formatMicros(n.p99Us)}, p99.9 ${formatMicros(n.p999Us)} (${n.count} sequential)`;
}

/** Median cores used by the rest of the machine during the measurements (steps and latency runs). */
export function othersCpuMedian(results: BenchResults): number | null {
  const values = results.targets
    .flatMap((t) => [
      ...Object.values(t.throughput).flatMap((r) => r?.steps.map((s) => s.othersCores) ?? []),
      ...Object.values(t.latency).map((l) => l?.othersCores),
    ])
    .filter((v): v is number => typeof v === 'number')
    .sort((a, b) => a - b);
  return values.length ? values[Math.floor(values.length / 2)]! : null;
}

export function machineLine(results: BenchResults): string {
  const m = results.machine;
  const others = othersCpuMedian(results);
  return `${m.cores} × ${m.cpuModel}, ${formatBytes(m.memoryBytes)} RAM, ${m.os}, node ${m.node}, ${m.natsServer ?? 'no nats-server'}, ${m.nginx ?? 'no nginx'}; load average ${m.loadAverage.join(' ')} at the start${m.loadAverageEnd ? `, ${m.loadAverageEnd.join(' ')} at the end` : ''}${m.cpuPressure !== null ? `; CPU pressure (tasks waiting for a CPU, last 60 s) ${pct(m.cpuPressure)} at the start${m.cpuPressureEnd !== undefined && m.cpuPressureEnd !== null ? `, ${pct(m.cpuPressureEnd)} at the end` : ''}` : ''}${others !== null ? `; other work on the machine used a median ${others.toFixed(1)} of its ${m.cores} cores during the measurements` : ''}`;
}

function pad(table: Table): string[] {
  const widths = table.head.map((h, i) => Math.max(h.length, ...table.rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) =>
    r
      .map((v, i) => (i < 2 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [fmt(table.head), widths.map((w) => '─'.repeat(w)).join('  '), ...table.rows.map(fmt)];
}

/** The whole result for the terminal. */
export function renderTerminal(results: BenchResults): string {
  const out: string[] = [
    '',
    `kstyles bench ${results.method.quick ? '(quick)' : '(full)'} — ${machineLine(results)}`,
    natsLine(results),
    '',
  ];
  for (const table of benchTables(results)) {
    out.push(table.title, ...pad(table), ...table.notes.map((n) => `  ${n}`), '');
  }
  out.push('Targets (issue #8):', ...checkLines(results).map((l) => `  ${l}`));
  for (const t of results.targets) for (const note of t.notes) out.push(`  note: ${t.name}: ${note}`);
  out.push('', `took ${(results.durationMs / 1000).toFixed(0)} s`);
  return `${out.join('\n')}\n`;
}

const mdCell = (s: string) => s.replace(/\|/g, '\\|');

export function markdownTable(table: Table): string[] {
  return [
    `| ${table.head.map(mdCell).join(' | ')} |`,
    `|${table.head.map((_, i) => (i < 2 ? '---' : '--:')).join('|')}|`,
    ...table.rows.map((r) => `| ${r.map(mdCell).join(' | ')} |`),
  ];
}

export function renderMarkdown(results: BenchResults): string {
  const out: string[] = ['# kernel-styles benchmark', ''];
  out.push(
    `${results.startedAt} · ${results.method.quick ? 'quick' : 'full'} run · ${(results.durationMs / 1000).toFixed(0)} s`,
    '',
  );
  out.push('## Machine', '', machineLine(results), '', natsLine(results), '');
  out.push('## Method', '', ...results.method.text.map((t) => `- ${t}`), '');
  for (const t of results.targets)
    out.push(`- **${t.name}**: ${t.skipped ? `skipped — ${t.skipped}` : t.description}`);
  out.push('');
  for (const table of benchTables(results)) {
    out.push(`## ${table.title}`, '', ...markdownTable(table), '', ...table.notes.map((n) => `${n}`), '');
  }
  out.push('## Targets (issue #8)', '', ...checkLines(results).map((l) => `- ${l}`), '');
  const notes = results.targets.flatMap((t) => t.notes.map((n) => `- ${t.name}: ${n}`));
  if (notes.length) out.push('## Notes', '', ...notes, '');
  const reports = Object.entries(results.reports);
  if (reports.length) {
    out.push('## Load reports', '', ...reports.map(([k, v]) => `- ${k}: [${v}](${v})`), '');
  }
  out.push('## Search steps', '');
  for (const t of results.targets) {
    for (const size of SIZE_KEYS) {
      const r = t.throughput[size];
      if (!r) continue;
      out.push(
        `- ${t.name} ${SIZES[size].label}: ${r.steps.map((s) => `${s.rate} ${s.ok ? '✓' : `✗ (${s.reason})`}${s.othersCores != null ? ` [others ${s.othersCores.toFixed(1)} cores]` : ''}`).join(' → ')}`,
      );
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

const CSS = `body{margin:0;background:#fafaf8;color:#1d2330;font:15px/1.5 system-ui,sans-serif}main{max-width:1100px;margin:0 auto;padding:28px 22px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:10px;padding:18px 20px;margin:16px 0}table{border-collapse:collapse;width:100%;font-size:13.5px}
th,td{text-align:right;padding:5px 7px;border-bottom:1px solid #e5e7eb;white-space:nowrap}th:first-child,td:nth-child(2){text-align:left}
.note{color:#6b7280;font-size:13px}.met{color:#2b9348}.missed{color:#b00020;font-weight:600}.nm{color:#c05621}
svg.chart{display:block;margin:8px 0 16px}svg .chart-title{font-size:14px;font-weight:600}svg .tick,svg .legend{font-size:11px;fill:#4b5563}
svg .axis{font-size:12px;fill:#6b7280}svg .grid{stroke:#eef0f3}svg .frame{fill:none;stroke:#d1d5db}svg .muted{fill:#6b7280}`;

export function renderHtml(results: BenchResults): string {
  const charts: string[] = [];
  for (const size of SIZE_KEYS) {
    charts.push(
      barChart(
        `Max sustainable throughput, ${SIZES[size].label}`,
        'req/s',
        results.targets
          .filter((t) => !t.skipped)
          .map((t) => ({ name: t.name, value: t.throughput[size]?.maxRate ?? 0 })),
        (y) => count(y),
      ),
    );
  }
  for (const size of SIZE_KEYS) {
    charts.push(
      barChart(
        `p50 latency at ${results.method.commonRates[size] ?? '—'} req/s, ${SIZES[size].label}`,
        'p50',
        results.targets
          .filter((t) => !t.skipped)
          .map((t) => ({ name: t.name, value: t.latency[size]?.p50 ?? 0 })),
        formatMicros,
      ),
    );
  }
  charts.push(
    barChart(
      'Cold start (median, spawn → first 200)',
      'ms',
      results.targets.map((t) => ({ name: t.name, value: t.coldStart?.medianMs ?? 0 })),
      (y) => `${y.toFixed(0)} ms`,
    ),
    barChart(
      'RSS peak under load (process tree)',
      'RSS',
      results.targets.map((t) => ({ name: t.name, value: t.footprint?.rssPeakBytes ?? 0 })),
      formatBytes,
    ),
  );
  const checks = results.checks
    .map(
      (c) =>
        `<li class="${c.status === 'met' ? 'met' : c.status === 'missed' ? 'missed' : 'nm'}">${esc(c.status)} — ${esc(c.statement)}: ${esc(c.evidence)}</li>`,
    )
    .join('');
  const links = Object.entries(results.reports)
    .filter(([, v]) => v.endsWith('.html'))
    .map(([k, v]) => `<li><a href="${esc(v)}">${esc(k)}</a></li>`)
    .join('');
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>kernel-styles benchmark</title><style>${CSS}</style></head><body><main>
<h1>kernel-styles benchmark</h1><p class="note">${esc(results.startedAt)} · ${results.method.quick ? 'quick' : 'full'} run · ${(results.durationMs / 1000).toFixed(0)} s<br>${esc(machineLine(results))}<br>${esc(natsLine(results))}</p>
<section><h2>Targets (issue #8)</h2><ul>${checks}</ul></section>
${benchTables(results)
  .map((t) => `<section><h2>${esc(t.title)}</h2>${htmlTable(t)}</section>`)
  .join('')}
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
  await mkdir(outDir, { recursive: true });
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
    results.reports['recovery'] = 'recovery/report.html';
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
