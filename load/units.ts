const DURATION_UNITS = { us: 0.001, µs: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/**
 * Parses a duration such as `500ms`, `10s`, `1.5m` or a bare number of seconds into milliseconds.
 * Returns null when the text is not a duration, so callers can name the field in their own message.
 */
export function parseDurationMs(text: string | number): number | null {
  if (typeof text === 'number') return Number.isFinite(text) && text >= 0 ? text * 1000 : null;
  const match = /^\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s|m|h)?\s*$/.exec(text);
  if (!match) return null;
  const unit = (match[2] ?? 's') as keyof typeof DURATION_UNITS;
  return Number(match[1]) * DURATION_UNITS[unit];
}

/** Formats microseconds for people: `850µs`, `12.3ms`, `1.20s`. */
export function formatMicros(us: number): string {
  if (!Number.isFinite(us)) return '—';
  if (us < 1000) return `${Math.round(us)}µs`;
  if (us < 100_000) return `${(us / 1000).toFixed(us < 10_000 ? 2 : 1)}ms`;
  if (us < 1_000_000) return `${Math.round(us / 1000)}ms`;
  return `${(us / 1_000_000).toFixed(2)}s`;
}

export function formatMs(ms: number | null): string {
  return ms === null ? '—' : formatMicros(ms * 1000);
}

export function formatPercent(ratio: number, digits = 2): string {
  if (!Number.isFinite(ratio)) return '—';
  const pct = ratio * 100;
  if (pct === 100) return '100%';
  return `${pct.toFixed(digits)}%`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}
