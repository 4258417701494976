/// <reference lib="dom" />
/**
 * The console's trace waterfalls, as HTML from one view object: the newest sampled request of each style,
 * one row per span, indented under its parent, with a bar where it ran. The server renders them into the
 * page (they read without JavaScript); the page's script fetches `/traces` every few seconds and renders
 * the same HTML again, and sends the "trace one request" button's form without leaving the page.
 */

/** One span of a waterfall, times relative to the trace's root. */
export type WaterfallRow = {
  name: string;
  service: string;
  depth: number;
  startMs: number;
  durationMs: number;
  error: boolean;
  /** What tells this span from its siblings: attempt and outcome, offset, a grant's target. */
  note: string;
};

export type StyleTrace = {
  traceId: string;
  /** When the request began (Unix ms). */
  at: number;
  totalMs: number;
  /** The request's path and status code. */
  request: string;
  rows: WaterfallRow[];
};

export type TraceView = {
  /** Where the styles write their traces; null when the lab runs without tracing. */
  dir: string | null;
  styles: Record<string, StyleTrace | null>;
};

export const WATERFALL_STYLES = ['monolith', 'microkernel', 'unikernel'] as const;

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const ms = (value: number): string => (value < 10 ? value.toFixed(2) : value.toFixed(1));

/** Bars and indentation: the console's stylesheet is not this file's, so the few rules come along. */
const STYLE = `<style>
.waterfall{border-collapse:collapse;width:100%;font-size:12px;margin-bottom:1em}
.waterfall th,.waterfall td{padding:1px 6px;text-align:left;vertical-align:middle;white-space:nowrap}
.waterfall td.span{overflow:hidden;text-overflow:ellipsis;max-width:28em}
.waterfall td.bar{width:45%}
.waterfall .track{position:relative;height:10px;background:#f3f4f6}
.waterfall .fill{position:absolute;top:0;height:10px;min-width:1px;background:#1a5fb4}
.waterfall tr.error .fill{background:#cf222e}
.waterfall .svc{color:#57606a}
.waterfall .note{color:#57606a;font-size:11px}
</style>`;

function renderStyle(style: string, trace: StyleTrace | null | undefined): string {
  if (!trace) {
    return `<table class="waterfall" data-style="${style}"><caption>${style}: no sampled request yet</caption></table>`;
  }
  const total = Math.max(trace.totalMs, 0.001);
  const rows = trace.rows
    .map((row) => {
      const left = Math.min(100, (row.startMs / total) * 100);
      const width = Math.min(100 - left, (row.durationMs / total) * 100);
      return `<tr class="${row.error ? 'error' : 'ok'}" data-service="${escapeHtml(row.service)}"><td class="span" style="padding-left:${0.4 + row.depth * 1.1}em" title="${escapeHtml(row.note)}">${escapeHtml(row.name)} <span class="svc">${escapeHtml(row.service)}</span>${row.note ? ` <span class="note">${escapeHtml(row.note)}</span>` : ''}</td><td class="bar"><div class="track"><div class="fill" style="left:${left.toFixed(2)}%;width:${width.toFixed(2)}%"></div></div></td><td class="ms">${ms(row.durationMs)} ms</td></tr>`;
    })
    .join('');
  const when = new Date(trace.at).toISOString().slice(11, 23);
  return `<table class="waterfall" data-style="${style}" data-trace="${trace.traceId}"><caption>${style}: ${escapeHtml(trace.request)}, ${ms(trace.totalMs)} ms, at ${when} UTC, trace <code>${trace.traceId}</code></caption><thead><tr><th scope="col">span (service)</th><th scope="col">when</th><th scope="col">duration</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/** The waterfalls of every style, or why there are none. */
export function renderTraceSection(view: TraceView): string {
  if (!view.dir) {
    return '<p>Tracing is off in this lab (kstyles up --traces-ratio off).</p>';
  }
  const form =
    '<form method="post" action="/traces" id="trace-now-form"><button type="submit" id="trace-now">trace one request in each style now</button> <span class="note">a GET of bench/1m.bin with a sampled traceparent, whatever the sampling ratio</span></form>';
  return `${STYLE}${form}<p class="note">The newest sampled request of each style, from ${escapeHtml(view.dir)}/&lt;style&gt;.jsonl (OTLP/JSON lines: Jaeger's UI loads them).</p>${WATERFALL_STYLES.map((style) => renderStyle(style, view.styles[style])).join('')}`;
}

/** In the page: keeps `#traces` current and sends the button's form as a fetch. */
export function followTraces(intervalMs = 3000): void {
  const section = document.getElementById('traces');
  if (!section) return;
  const refresh = async () => {
    const res = await fetch('/traces', { headers: { accept: 'application/json' } });
    if (res.ok) section.innerHTML = renderTraceSection((await res.json()) as TraceView);
  };
  section.addEventListener('submit', (event) => {
    event.preventDefault();
    event.stopPropagation();
    void fetch('/traces', { method: 'POST', headers: { accept: 'application/json' } }).then(() =>
      setTimeout(() => void refresh(), 1500),
    );
  });
  setInterval(() => void refresh(), intervalMs);
}
