import { decodeHistogram, percentileCurve } from './histogram.ts';
import { securityFindings, securityHtml } from './security-report.ts';
import { STYLE_HEADINGS, STYLES, seedComparison } from './seed-comparison.ts';
import { escapeXml as esc, lineChart, type Marker, PERCENTILE_TICKS, percentileX } from './svg-charts.ts';
import type { FaultRecord, LoadResults, TargetResult } from './types.ts';
import { formatBytes, formatCount, formatMicros, formatMs, formatPercent } from './units.ts';

const STYLE_COLORS: Record<string, string> = {
  monolith: '#d1495b',
  microkernel: '#00798c',
  unikernel: '#6a4c93',
};
const PALETTE = ['#d1495b', '#00798c', '#6a4c93', '#edae49', '#30638e', '#66a182', '#8d6a9f'];
const ERROR_COLORS = {
  '4xx': '#edae49',
  '5xx': '#d1495b',
  refused: '#8d6a9f',
  reset: '#30638e',
  timeout: '#5c5c5c',
  data_loss: '#b00020',
} as const;

export function targetColor(name: string, index: number): string {
  return (
    STYLE_COLORS[name] ??
    Object.entries(STYLE_COLORS).find(([k]) => name.includes(k))?.[1] ??
    PALETTE[index % PALETTE.length]!
  );
}

/** Removes the scheme from an address: the report names hosts, never links. */
export function hostOf(url: string): string {
  return url.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').replace(/\/$/, '');
}

const msY = (us: number) => formatMicros(us);

function faultMarkers(faults: FaultRecord[], target?: string): Marker[] {
  return faults
    .filter((f) => !target || f.resilience.some((r) => r.target === target) || f.resilience.length === 0)
    .map((f) => ({
      x: f.firedAtMs / 1000,
      label: `${f.kind}${f.ok ? '' : ' ✗'}`,
      color: f.ok ? '#b00020' : '#888888',
      failed: !f.ok,
    }));
}

function behindBands(results: LoadResults) {
  return results.generator.timeline
    .filter((g) => g.behind)
    .map((g) => ({
      from: g.t,
      to: g.t + 1,
      label: 'generator fell behind: this second reflects the generator',
    }));
}

function latencyChart(results: LoadResults, target: TargetResult): string {
  const tl = target.timeline.filter((s) => s.t * 1000 < results.durationMs + 1);
  const pick = (key: 'p50' | 'p90' | 'p99' | 'max') =>
    tl.filter((s) => s[key] > 0).map((s) => [s.t + 0.5, s[key]] as [number, number]);
  return lineChart({
    title: `${target.name}: corrected latency per second`,
    xLabel: 'seconds since start (requests by intended send time)',
    yLabel: 'latency (log)',
    yLog: true,
    xMin: 0,
    xMax: Math.max(1, Math.ceil(results.durationMs / 1000)),
    formatY: msY,
    series: [
      { name: 'p50', color: '#7fb7be', points: pick('p50') },
      { name: 'p90', color: '#00798c', points: pick('p90') },
      { name: 'p99', color: '#d1495b', points: pick('p99') },
      { name: 'max', color: '#444444', points: pick('max'), dash: true },
    ],
    markers: faultMarkers(results.faults, target.name),
    bands: behindBands(results),
  });
}

function throughputChart(results: LoadResults, target: TargetResult): string {
  const tl = target.timeline;
  const errorSeries = (Object.keys(ERROR_COLORS) as (keyof typeof ERROR_COLORS)[])
    .filter((o) => tl.some((s) => s.outcomes[o] > 0))
    .map((o) => ({
      name: o,
      color: ERROR_COLORS[o],
      bars: true,
      points: tl.map((s) => [s.t + 0.5, s.outcomes[o]] as [number, number]),
    }));
  return lineChart({
    title: `${target.name}: throughput and errors per second`,
    xLabel: 'seconds since start',
    yLabel: 'requests / s',
    xMin: 0,
    xMax: Math.max(1, Math.ceil(results.durationMs / 1000)),
    formatY: (y) => formatCount(y),
    height: 240,
    series: [
      ...errorSeries,
      {
        name: 'sent',
        color: '#9aa5b1',
        dash: true,
        points: tl.map((s) => [s.t + 0.5, s.sent] as [number, number]),
      },
      { name: 'ok', color: '#2b9348', points: tl.map((s) => [s.t + 0.5, s.outcomes.ok] as [number, number]) },
    ],
    markers: faultMarkers(results.faults, target.name),
  });
}

function distributionChart(results: LoadResults): string {
  const series = results.targets.flatMap((t, i) => {
    const color = targetColor(t.name, i);
    const curve = (encoded: string) =>
      percentileCurve(decodeHistogram(encoded)).map(
        (p) => [percentileX(p.percentile), Math.max(1, p.value)] as [number, number],
      );
    return [
      { name: `${t.name}`, color, points: curve(t.histograms.latency) },
      { name: `${t.name} uncorrected`, color, dash: true, points: curve(t.histograms.serviceTime) },
    ];
  });
  const maxX = Math.max(percentileX(99.9), ...series.flatMap((s) => s.points.map((p) => p[0])));
  return lineChart({
    title:
      'Latency by percentile, all targets (solid: from intended send time; dashed: uncorrected service time)',
    xLabel: 'percentile (log scale of 1/(1-p))',
    yLabel: 'latency (log)',
    yLog: true,
    xMin: 0,
    xMax: maxX,
    xTicks: PERCENTILE_TICKS.filter((t) => t.at <= maxX + 1e-9),
    formatY: msY,
    height: 340,
    series,
  });
}

function generatorChart(results: LoadResults): string {
  const g = results.generator.timeline;
  return lineChart({
    title: 'Generator self-check: how late requests left, and event-loop delay',
    xLabel: 'seconds since start',
    yLabel: 'delay (log)',
    yLog: true,
    xMin: 0,
    xMax: Math.max(1, Math.ceil(results.durationMs / 1000)),
    formatY: msY,
    height: 200,
    series: [
      {
        name: 'send lag p99',
        color: '#30638e',
        points: g.map((s) => [s.t + 0.5, Math.max(1, s.sendLagP99)] as [number, number]),
      },
      {
        name: 'send lag max',
        color: '#9aa5b1',
        dash: true,
        points: g.map((s) => [s.t + 0.5, Math.max(1, s.sendLagMax)] as [number, number]),
      },
      {
        name: 'event loop p99',
        color: '#edae49',
        points: g.map((s) => [s.t + 0.5, Math.max(1, s.eventLoopP99)] as [number, number]),
      },
    ],
    bands: behindBands(results),
  });
}

function summaryTable(results: LoadResults): string {
  const rows = results.targets.map((t, i) => {
    const errors = t.completed - t.outcomes.ok;
    const loss = t.outcomes.data_loss;
    return `<tr>
<th scope="row"><span class="dot" style="background:${targetColor(t.name, i)}"></span>${esc(t.name)}<div class="muted small">${esc(hostOf(t.url))}</div></th>
<td>${formatCount(t.sent)}</td><td>${t.throughput.toFixed(1)}</td>
<td class="${t.availability < 0.999 ? 'warn' : 'good'}">${formatPercent(t.availability, 3)}</td>
<td>${formatMicros(t.latency.p50)}</td><td>${formatMicros(t.latency.p90)}</td><td><b>${formatMicros(t.latency.p99)}</b></td><td>${formatMicros(t.latency.p999)}</td><td>${formatMicros(t.latency.max)}</td>
<td class="muted">${formatMicros(t.serviceTime.p99)}</td>
<td>${errors ? `<span class="warn">${formatCount(errors)}</span>` : '0'}</td>
<td>${loss ? `<span class="loss">${formatCount(loss)}</span>` : '0'}</td>
</tr>`;
  });
  return `<table class="summary"><thead><tr><th>target</th><th>sent</th><th>ok/s</th><th>availability</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th title="from actual send: what a closed-loop tool would report">p99 uncorrected</th><th>errors</th><th>data loss</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function outcomeTable(results: LoadResults): string {
  const classes = ['ok', '4xx', '5xx', 'refused', 'reset', 'timeout', 'data_loss'] as const;
  const rows = results.targets.map(
    (t) =>
      `<tr><th scope="row">${esc(t.name)}</th>${classes
        .map(
          (c) =>
            `<td class="${c === 'data_loss' && t.outcomes[c] > 0 ? 'loss' : ''}">${formatCount(t.outcomes[c])}</td>`,
        )
        .join('')}<td>${formatBytes(t.bytes)}</td></tr>`,
  );
  return `<table><thead><tr><th>target</th>${classes.map((c) => `<th>${c.replace('_', ' ')}</th>`).join('')}<th>verified bytes</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function faultTable(results: LoadResults): string {
  if (results.faults.length === 0) return '<p class="muted">No faults were injected in this run.</p>';
  const rows = results.faults.map((f) => {
    const res = f.resilience
      .map(
        (r) =>
          `<div><b>${esc(r.target)}</b>: ${formatCount(r.failed)} failed of ${formatCount(r.requests)} (availability ${formatPercent(r.availability, 2)}, blast radius ${formatPercent(r.blastRadius, 1)}); first success after failure ${r.failed === 0 ? 'n/a (nothing failed)' : formatMs(r.firstSuccessAfterFailureMs)}; p99 back within 2× ${r.p99RecoveryMs === null ? (r.preFaultP99 ? 'never' : 'n/a (no baseline)') : formatMs(r.p99RecoveryMs)}</div>`,
      )
      .join('');
    return `<tr><td>${(f.firedAtMs / 1000).toFixed(2)}s</td><td>${esc(f.target)}</td><td>${esc(f.kind)}${f.forMs ? ` for ${formatMs(f.forMs)}` : ''}</td><td>${esc(f.driver)}</td><td class="${f.ok ? 'good' : 'warn'}">${f.ok ? 'injected' : 'FAILED'}</td><td class="small">${esc(f.message)}</td><td class="small">${res}</td></tr>`;
  });
  return `<table class="faults"><thead><tr><th>at</th><th>target</th><th>fault</th><th>driver</th><th>result</th><th>message</th><th>client-side resilience (fault window)</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function comparisonTable(results: LoadResults): string {
  const rows = seedComparison(results).map(
    (row) =>
      `<tr><th scope="row">${esc(row.heading)}</th>${STYLES.map((style) => {
        const cell = row.cells[style];
        return `<td><div class="claim">“${esc(cell.claim)}”</div><ul class="measured">${cell.measured.map((m) => `<li>${esc(m).replace(/\*\*(.+?)\*\*/g, '<b class="warn">$1</b>')}</li>`).join('')}</ul></td>`;
      }).join('')}</tr>`,
  );
  return `<table class="seed"><thead><tr><th></th>${STYLES.map((s) => `<th>${esc(STYLE_HEADINGS[s])}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function thresholdList(results: LoadResults): string {
  if (!results.thresholds?.length) return '';
  const items = results.thresholds.map(
    (t) =>
      `<li class="${t.pass ? 'pass' : 'fail'}"><span class="mark">${t.pass ? '✔' : '✘'}</span> <code>${esc(t.expression)}</code> — measured ${esc(t.actual)}</li>`,
  );
  const failed = results.thresholds.filter((t) => !t.pass).length;
  return `<section><h2>Thresholds: ${failed ? `<span class="warn">${failed} failed</span>` : '<span class="good">all passed</span>'}</h2><ul class="checklist">${items.join('')}</ul></section>`;
}

function errorSamples(results: LoadResults): string {
  const rows = results.targets.flatMap((t) =>
    t.errorSamples.map(
      (s) =>
        `<tr><td>${esc(t.name)}</td><td class="${s.outcome === 'data_loss' ? 'loss' : ''}">${esc(s.outcome)}</td><td>${formatCount(s.count)}</td><td class="small">${esc(s.message)}</td></tr>`,
    ),
  );
  if (rows.length === 0) return '';
  return `<section><h2>Errors seen</h2><table><thead><tr><th>target</th><th>class</th><th>count</th><th>message</th></tr></thead><tbody>${rows.join('')}</tbody></table></section>`;
}

const CSS = `
:root{--fg:#1d2330;--muted:#6b7280;--line:#e5e7eb;--bg:#fafaf8;--card:#fff;--bad:#b00020;--good:#2b9348;--warn:#c05621}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:1080px;margin:0 auto;padding:32px 24px 64px}
h1{font-size:28px;margin:0 0 4px}h2{font-size:19px;margin:0 0 12px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:20px 22px;margin:18px 0}
.meta{color:var(--muted);font-size:14px}.meta b{color:var(--fg);font-weight:600}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{text-align:left;padding:7px 8px;border-bottom:1px solid var(--line);vertical-align:top}
thead th{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);font-weight:600}
table.summary td{font-variant-numeric:tabular-nums;white-space:nowrap}
.muted{color:var(--muted)}.small{font-size:12.5px}
.good{color:var(--good)}.warn{color:var(--warn);font-weight:600}
.loss{color:#fff;background:var(--bad);font-weight:700;border-radius:4px;padding:1px 6px}
.dot{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:7px}
.banner{border-radius:10px;padding:14px 18px;margin:18px 0;font-weight:600}
.banner.loss{display:block;padding:14px 18px}
.banner.behind{background:#fff7e6;border:1px solid #f5c16c;color:#7a4b00;font-weight:500}.banner ul{margin:6px 0 0;padding-left:20px;font-size:13.5px}
.claim{font-style:italic;color:var(--muted);font-size:13px;margin-bottom:4px}
ul.measured{margin:0;padding-left:18px;font-size:13.5px}
table.seed td{width:30%}
.checklist{list-style:none;padding:0;margin:0}.checklist li{padding:4px 0}
.checklist .pass .mark{color:var(--good)}.checklist .fail .mark{color:var(--bad)}.checklist .fail{color:var(--bad)}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px;background:#f1f2f4;padding:1px 5px;border-radius:4px}
svg.chart{display:block;margin:8px 0 18px;background:#fff}
svg .chart-title{font-size:14px;font-weight:600;fill:var(--fg)}
svg .tick,svg .legend{font-size:11px;fill:#4b5563}svg .axis{font-size:12px;fill:var(--muted)}
svg .marker{font-size:11px;font-weight:600}svg .muted{fill:var(--muted)}
svg .grid{stroke:#eef0f3;stroke-width:1}svg .frame{fill:none;stroke:#d1d5db}
svg .band{fill:#f5c16c;opacity:.25}
.two{display:grid;grid-template-columns:1fr;gap:0}
footer{color:var(--muted);font-size:13px;margin-top:28px}
`;

/** The whole report as one self-contained HTML page: inline CSS and SVG, no script, no external reference. */
export function renderHtml(results: LoadResults): string {
  const lossTotal = results.targets.reduce((sum, t) => sum + t.outcomes.data_loss, 0);
  const banners: string[] = [];
  if (lossTotal > 0) {
    banners.push(
      `<div class="banner loss">DATA LOSS: ${formatCount(lossTotal)} response${lossTotal === 1 ? '' : 's'} with bytes that do not match the corpus manifest (${results.targets
        .filter((t) => t.outcomes.data_loss > 0)
        .map((t) => `${esc(t.name)}: ${formatCount(t.outcomes.data_loss)}`)
        .join(', ')})</div>`,
    );
  }
  const findings = securityFindings(results);
  if (findings.length > 0) {
    banners.push(
      `<div class="banner loss">SECURITY FINDINGS:<ul>${findings.map((f) => `<li>${esc(f)}</li>`).join('')}</ul></div>`,
    );
  }
  if (results.generator.warnings.length > 0) {
    banners.push(
      `<div class="banner behind"><b>⚠ The generator could not always hold the schedule.</b> Results for these windows reflect the generator, not the target (shaded in the charts):<ul>${results.generator.warnings
        .map(
          (w) =>
            `<li>${esc(w.replace(/^generator fell behind: /, '').replace(/; results for this window reflect the generator, not the target$/, ''))}</li>`,
        )
        .join('')}</ul></div>`,
    );
  }
  const perTarget = results.targets
    .map(
      (t) =>
        `<section><h2>${esc(t.name)}</h2>${latencyChart(results, t)}${throughputChart(results, t)}</section>`,
    )
    .join('');
  const started = new Date(results.startedAt);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kernel-styles load report — ${esc(results.targets.map((t) => t.name).join(', '))}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<header>
<h1>kernel-styles load report</h1>
<div class="meta">${esc(
    started
      .toISOString()
      .replace('T', ' ')
      .replace(/\.\d+Z$/, ' UTC'),
  )} · <b>${formatMs(results.durationMs)}</b> at <b>${formatCount(results.rate)} req/s</b> per target (open loop) · ${results.connections} connections per target · timeout ${formatMs(results.timeoutMs)} · seed ${results.seed} · mix ${esc(results.mix)} · corpus ${formatCount(results.corpus.files)} files</div>
</header>
${banners.join('\n')}
<section><h2>Summary</h2>${summaryTable(results)}
<p class="muted small">Latency is measured from each request's <b>intended</b> send time (constant arrival rate, wrk2's model), so a stalled server cannot hide its stall. “p99 uncorrected” is measured from the moment the request went on the wire — what a closed-loop tool would report.</p></section>
${thresholdList(results)}
<section><h2>The seed's claims, measured</h2>${comparisonTable(results)}
<p class="muted small">Claims quoted from the comparison table of <i>Kernel Architectures: Monolithic, Microkernel, and Unikernel</i>. Blast radius: share of requests that failed in a fault window (from the fault to the next fault on that target, at most the window length). Recovery: from the fault to the first success after the first failure, and until the per-second p99 is back within 2× its pre-fault value.</p></section>
${securityHtml(results, targetColor)}
<section id="distribution"><h2>Latency distribution</h2>${distributionChart(results)}</section>
${perTarget}
<section id="faults"><h2>Faults</h2>${faultTable(results)}</section>
<section><h2>Outcomes</h2>${outcomeTable(results)}</section>
${errorSamples(results)}
<section><h2>Generator</h2>${generatorChart(results)}<p class="muted small">Event-loop delay p99 over the run: ${formatMicros(results.generator.eventLoop.p99)}. Seconds shaded in amber are ones where the generator could not hold the schedule; their numbers describe the generator, not the target.</p></section>
<footer>kstyles load · results.json holds every number and the HdrHistograms (compressed, base64) for merging runs.</footer>
</main>
</body>
</html>
`;
}
