/// <reference lib="dom" />
/**
 * The console page's script (bundled with uPlot by esbuild when the console starts): renders each pushed
 * state into the same tables the server rendered, draws the charts, and sends the buttons' forms without
 * leaving the page.
 */
import uPlot from 'uplot';
import {
  applyUpdate,
  CONSOLE_STYLES,
  type ConsoleState,
  type ConsoleUpdate,
  renderComparison,
  renderLoadStatus,
  renderStyleNumbers,
  renderSupervisorEvents,
  renderTimeline,
  renderTrees,
} from './render.ts';
import { followTraces } from './trace-waterfall-view.ts';

const $ = (id: string) => document.getElementById(id)!;
let faultTimes: number[] = [];

function chartData(state: ConsoleState, style: string): uPlot.AlignedData {
  const seconds = state.seconds[style] ?? [];
  return [
    seconds.map((s) => s.at / 1000),
    seconds.map((s) => s.outcomes.ok),
    seconds.map((s) => s.sent - s.outcomes.ok),
    seconds.map((s) => s.p50 / 1000),
    seconds.map((s) => s.p99 / 1000),
  ];
}

/** Draws each fault as a vertical line across the plot. */
const faultMarks: uPlot.Plugin = {
  hooks: {
    draw: (u) => {
      const ctx = u.ctx;
      ctx.save();
      ctx.strokeStyle = '#cf222e';
      ctx.lineWidth = 2;
      for (const t of faultTimes) {
        const x = u.valToPos(t, 'x', true);
        if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
        ctx.beginPath();
        ctx.moveTo(x, u.bbox.top);
        ctx.lineTo(x, u.bbox.top + u.bbox.height);
        ctx.stroke();
      }
      ctx.restore();
    },
  },
};

const charts = new Map<string, uPlot>();

function makeChart(style: string, state: ConsoleState): uPlot {
  const el = $(`chart-${style}`);
  return new uPlot(
    {
      width: Math.max(260, el.clientWidth),
      height: 220,
      plugins: [faultMarks],
      scales: { x: { time: true }, count: {}, ms: {} },
      axes: [
        {},
        { scale: 'count', label: 'req/s' },
        { scale: 'ms', side: 1, label: 'ms', grid: { show: false } },
      ],
      series: [
        {},
        { label: 'ok/s', scale: 'count', stroke: '#1a7f37' },
        { label: 'errors/s', scale: 'count', stroke: '#cf222e' },
        { label: 'p50 ms', scale: 'ms', stroke: '#1a5fb4' },
        { label: 'p99 ms', scale: 'ms', stroke: '#9a6700' },
      ],
    },
    chartData(state, style),
    el,
  );
}

/** The HTML last put into each section: a section whose HTML did not change is not rebuilt. */
const shown = new Map<string, string>();
function setHtml(id: string, html: string): void {
  if (shown.get(id) === html) return;
  shown.set(id, html);
  $(id).innerHTML = html;
}

function render(state: ConsoleState): void {
  faultTimes = state.faults.map((f) => f.at / 1000);
  $('load-status').textContent = renderLoadStatus(state);
  setHtml('trees', renderTrees(state));
  setHtml('events', renderSupervisorEvents(state));
  setHtml('timeline', renderTimeline(state));
  setHtml('comparison', renderComparison(state));
  for (const style of CONSOLE_STYLES) {
    setHtml(`numbers-${style}`, renderStyleNumbers(state, style));
    const chart = charts.get(style);
    if (chart) chart.setData(chartData(state, style));
    else charts.set(style, makeChart(style, state));
  }
}

/** Sends a form as a fetch, so the page (and keyboard focus) stays where it is. */
document.addEventListener('submit', (event) => {
  const form = event.target as HTMLFormElement;
  event.preventDefault();
  const body = new URLSearchParams(new FormData(form, event.submitter) as unknown as Record<string, string>);
  const kind = body.get('kind');
  if (kind === 'hang' || kind === 'slow') body.set('for', ($(`${kind}-seconds`) as HTMLInputElement).value);
  if (kind === 'crashloop') body.set('times', ($('crashloop-starts') as HTMLInputElement).value);
  // getAttribute: `form.action` is the button named "action" in the load form.
  void fetch(form.getAttribute('action')!, {
    method: 'POST',
    body,
    headers: { accept: 'application/json' },
  }).then(async (res) => {
    $('console-error').textContent = res.ok ? '' : await res.text();
  });
});

let state = JSON.parse($('initial-state').textContent ?? '{}') as ConsoleState;
render(state);
followTraces();
new EventSource('/events').onmessage = (event) => {
  state = applyUpdate(state, JSON.parse(event.data) as ConsoleUpdate);
  render(state);
};
