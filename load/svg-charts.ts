/** Inline SVG charts for the self-contained HTML report: no scripts, no fonts, no external references. */

export type Series = {
  name: string;
  color: string;
  points: [number, number][];
  dash?: boolean;
  /** Draw as bars instead of a line. */
  bars?: boolean;
};

export type Marker = { x: number; label: string; color: string; failed?: boolean };

export type ChartOptions = {
  title: string;
  series: Series[];
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
  yLog?: boolean;
  xMin?: number;
  xMax?: number;
  /** Tick positions (in x units) and their labels; defaults to evenly spaced numbers. */
  xTicks?: { at: number; label: string }[];
  formatY?: (y: number) => string;
  markers?: Marker[];
  /** Shaded ranges along x, e.g. the generator falling behind. */
  bands?: { from: number; to: number; label: string }[];
};

/**
 * Escapes text for HTML/SVG. It also drops URL schemes, so a report never holds a link to anywhere
 * (target addresses print as host:port).
 */
export function escapeXml(text: string): string {
  return text
    .replace(/\b[a-z][a-z0-9+.-]*:\/\//gi, '')
    .replace(
      /[&<>"']/g,
      (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
    );
}

function niceStep(range: number, count: number): number {
  const raw = range / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const scaled = raw / power;
  const nice = scaled <= 1 ? 1 : scaled <= 2 ? 2 : scaled <= 5 ? 5 : 10;
  return nice * power;
}

const f = (n: number) => (Math.round(n * 10) / 10).toString();

export function lineChart(opts: ChartOptions): string {
  const width = opts.width ?? 880;
  const height = opts.height ?? 300;
  const margin = { top: 56, right: 16, bottom: 44, left: 68 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const all = opts.series.flatMap((s) => s.points);
  const formatY = opts.formatY ?? ((y: number) => String(y));
  const parts: string[] = [
    `<svg viewBox="0 0 ${width} ${height}" width="100%" role="img" aria-label="${escapeXml(opts.title)}" class="chart">`,
    `<text x="${margin.left}" y="20" class="chart-title">${escapeXml(opts.title)}</text>`,
  ];
  if (all.length === 0) {
    parts.push(
      `<text x="${width / 2}" y="${height / 2}" text-anchor="middle" class="muted">no data</text></svg>`,
    );
    return parts.join('');
  }
  const xMin = opts.xMin ?? Math.min(...all.map((p) => p[0]));
  const xMax = Math.max(opts.xMax ?? Math.max(...all.map((p) => p[0])), xMin + 1e-9);
  const ys = all.map((p) => p[1]).filter((y) => (opts.yLog ? y > 0 : true));
  let yMin = opts.yLog ? Math.min(...ys) : 0;
  let yMax = Math.max(...ys, opts.yLog ? 1 : 0);
  if (opts.yLog) {
    yMin = 10 ** Math.floor(Math.log10(Math.max(yMin, 1e-9)));
    yMax = 10 ** Math.ceil(Math.log10(Math.max(yMax, yMin * 10)));
  } else {
    const step = niceStep(yMax || 1, 5);
    yMax = Math.ceil((yMax || 1) / step) * step;
  }
  const sx = (x: number) => margin.left + ((x - xMin) / (xMax - xMin)) * plotW;
  const sy = (y: number) => {
    if (opts.yLog) {
      const v = Math.max(y, yMin);
      return (
        margin.top +
        plotH -
        ((Math.log10(v) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * plotH
      );
    }
    return margin.top + plotH - (y / yMax) * plotH;
  };
  // Grid and y ticks.
  const yTicks: number[] = [];
  if (opts.yLog) {
    for (let v = yMin; v <= yMax * 1.0001; v *= 10) yTicks.push(v);
  } else {
    const step = niceStep(yMax, 5);
    for (let v = 0; v <= yMax + step / 2; v += step) yTicks.push(v);
  }
  for (const v of yTicks) {
    const y = f(sy(v));
    parts.push(`<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${y}" y2="${y}" class="grid"/>`);
    parts.push(
      `<text x="${margin.left - 6}" y="${y}" dy="4" text-anchor="end" class="tick">${escapeXml(formatY(v))}</text>`,
    );
  }
  const xTicks =
    opts.xTicks ??
    (() => {
      const step = niceStep(xMax - xMin, 8);
      const ticks: { at: number; label: string }[] = [];
      for (let v = Math.ceil(xMin / step) * step; v <= xMax + 1e-9; v += step)
        ticks.push({ at: v, label: f(v) });
      return ticks;
    })();
  for (const t of xTicks) {
    const x = f(sx(t.at));
    parts.push(`<line x1="${x}" x2="${x}" y1="${margin.top}" y2="${margin.top + plotH}" class="grid"/>`);
    parts.push(
      `<text x="${x}" y="${margin.top + plotH + 16}" text-anchor="middle" class="tick">${escapeXml(t.label)}</text>`,
    );
  }
  for (const band of opts.bands ?? []) {
    const x1 = sx(Math.max(xMin, band.from));
    const x2 = sx(Math.min(xMax, band.to));
    parts.push(
      `<rect x="${f(x1)}" y="${margin.top}" width="${f(Math.max(1, x2 - x1))}" height="${plotH}" class="band"><title>${escapeXml(band.label)}</title></rect>`,
    );
  }
  parts.push(`<rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" class="frame"/>`);
  // Series.
  const barSeries = opts.series.filter((s) => s.bars && s.points.length > 0);
  const slot = barSeries.length > 0 ? plotW / Math.max(1, xMax - xMin || 1) : 0;
  barSeries.forEach((s, i) => {
    const barW = Math.max(1, (slot * 0.8) / barSeries.length);
    for (const [x, y] of s.points) {
      if (y <= 0) continue;
      const left = sx(x) - (slot * 0.8) / 2 + i * barW;
      const top = sy(y);
      parts.push(
        `<rect x="${f(left)}" y="${f(top)}" width="${f(barW)}" height="${f(margin.top + plotH - top)}" fill="${s.color}" opacity="0.85"><title>${escapeXml(`${s.name}: ${formatY(y)} at ${f(x)}`)}</title></rect>`,
      );
    }
  });
  for (const s of opts.series) {
    if (s.bars || s.points.length === 0) continue;
    const d = s.points.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${f(sx(x))},${f(sy(y))}`).join('');
    parts.push(
      `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2" stroke-linejoin="round"${s.dash ? ' stroke-dasharray="6 4"' : ''}><title>${escapeXml(s.name)}</title></path>`,
    );
    if (s.points.length === 1) {
      const [x, y] = s.points[0]!;
      parts.push(`<circle cx="${f(sx(x))}" cy="${f(sy(y))}" r="3" fill="${s.color}"/>`);
    }
  }
  for (const m of opts.markers ?? []) {
    if (m.x < xMin || m.x > xMax) continue;
    const x = f(sx(m.x));
    parts.push(
      `<line x1="${x}" x2="${x}" y1="${margin.top}" y2="${margin.top + plotH}" stroke="${m.color}" stroke-width="1.5" stroke-dasharray="${m.failed ? '2 3' : '5 3'}"/>`,
    );
    parts.push(
      `<text x="${x}" y="${margin.top - 4}" text-anchor="middle" class="marker" fill="${m.color}">${escapeXml(m.label)}</text>`,
    );
  }
  parts.push(
    `<text x="${margin.left + plotW / 2}" y="${height - 6}" text-anchor="middle" class="axis">${escapeXml(opts.xLabel)}</text>`,
    `<text transform="translate(14 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle" class="axis">${escapeXml(opts.yLabel)}</text>`,
  );
  // Legend: its own line under the title, left to right.
  let lx = margin.left;
  const legend: string[] = [];
  for (const s of opts.series) {
    const w = 30 + s.name.length * 6.4;
    legend.push(
      `<line x1="${f(lx)}" x2="${f(lx + 16)}" y1="34" y2="34" stroke="${s.color}" stroke-width="${s.bars ? 8 : 2.5}"${s.dash ? ' stroke-dasharray="4 3"' : ''}/><text x="${f(lx + 20)}" y="38" class="legend">${escapeXml(s.name)}</text>`,
    );
    lx += w;
  }
  parts.push(...legend, '</svg>');
  return parts.join('');
}

/** x position of percentile p (0..100) on a percentile-distribution plot: log10(1/(1-p)). */
export function percentileX(p: number): number {
  return Math.log10(1 / Math.max(1e-7, 1 - p / 100));
}

export const PERCENTILE_TICKS = [
  { at: percentileX(0), label: '0%' },
  { at: percentileX(90), label: '90%' },
  { at: percentileX(99), label: '99%' },
  { at: percentileX(99.9), label: '99.9%' },
  { at: percentileX(99.99), label: '99.99%' },
  { at: percentileX(99.999), label: '99.999%' },
  { at: percentileX(99.9999), label: '99.9999%' },
];
