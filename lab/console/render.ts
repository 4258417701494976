/**
 * The console's tables as HTML, from one state object. The server renders the whole page with them (it
 * reads without JavaScript); the page's script renders the same sections again on every pushed update.
 */
import type { SupervisorEvent } from '../../services/supervisor/supervisor.ts';
import type { LiveFault, LiveSecond } from './live-load.ts';
import type { TreeSnapshot } from './supervisor-watch.ts';

export const CONSOLE_STYLES = ['monolith', 'microkernel', 'unikernel'] as const;
export type ConsoleStyle = (typeof CONSOLE_STYLES)[number];

export type ConsoleState = {
  now: number;
  load: { rate: number; mix: string; startedAt: number } | null;
  seconds: Record<string, LiveSecond[]>;
  totals: Record<string, { completed: number; ok: number; failed: number } | null>;
  trees: TreeSnapshot[];
  /** The supervisors' latest events, newest first. */
  events: SupervisorEvent[];
  faults: LiveFault[];
};

/** The parts of the state that change every second; seconds only those completed since the last push. */
export type ConsoleDelta = Pick<ConsoleState, 'now' | 'load' | 'totals' | 'faults'> & {
  seconds: Record<string, LiveSecond[]>;
  /** How many seconds per style the page keeps (the server's history). */
  keep: number;
  /** Present only when they changed since the last push. */
  trees?: TreeSnapshot[];
  events?: SupervisorEvent[];
};

/** One Server-Sent Event: a page's first is the whole state; every later one only what changed. */
export type ConsoleUpdate = { full: true; state: ConsoleState } | { full: false; delta: ConsoleDelta };

/**
 * The state after one update. A new run of the load (a new start time) starts the charts afresh, as
 * the server does; seconds the page already has are not added twice.
 */
export function applyUpdate(state: ConsoleState, update: ConsoleUpdate): ConsoleState {
  if (update.full) return update.state;
  const { delta } = update;
  const newRun = delta.load !== null && delta.load.startedAt !== state.load?.startedAt;
  const seconds: Record<string, LiveSecond[]> = {};
  for (const style of CONSOLE_STYLES) {
    const kept = newRun ? [] : (state.seconds[style] ?? []);
    const lastAt = kept.at(-1)?.at ?? Number.NEGATIVE_INFINITY;
    const added = (delta.seconds[style] ?? []).filter((s) => s.at > lastAt);
    seconds[style] = [...kept, ...added].slice(-delta.keep);
  }
  return {
    now: delta.now,
    load: delta.load,
    totals: delta.totals,
    faults: delta.faults,
    seconds,
    trees: delta.trees ?? state.trees,
    events: delta.events ?? state.events,
  };
}

/** The error classes of the load generator, in the order the page shows them. */
const ERROR_CLASSES = ['4xx', '5xx', 'refused', 'reset', 'timeout', 'data_loss'] as const;

export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const ms = (us: number): string => (us > 0 ? `${(us / 1000).toFixed(2)} ms` : '—');
const duration = (ms: number | null): string =>
  ms === null ? '—' : ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
const clock = (unixMs: number): string => new Date(unixMs).toISOString().slice(11, 19);

export function renderTrees(state: ConsoleState): string {
  return state.trees
    .map((tree) => {
      const stale = tree.error !== undefined;
      const transfer = tree.status?.info?.['transfer'];
      const facts = tree.status
        ? ` (PID ${tree.status.pid}, ${tree.status.strategy}, ${tree.status.phase}${typeof transfer === 'string' ? `, ${escapeHtml(transfer)} transfers` : ''})`
        : '';
      const caption = `supervisor <code>${escapeHtml(tree.id)}</code>${facts}${stale && tree.status ? ` — not answering (${escapeHtml(tree.error!)}); its last status, read at ${clock(tree.readAt)} UTC:` : ''}`;
      if (!tree.status) {
        return `<table class="tree" data-supervisor="${escapeHtml(tree.id)}"><caption>${caption}</caption><tbody><tr><td>${escapeHtml(tree.error ?? 'reading its status…')}</td></tr></tbody></table>`;
      }
      const since = state.now - tree.readAt;
      const rows = tree.status.children
        .map((c) => {
          const exit = c.lastExit
            ? `${c.lastExit.reason}${c.lastExit.signal ? ` (${c.lastExit.signal})` : c.lastExit.code !== null ? ` (code ${c.lastExit.code})` : ''} at ${c.lastExit.time.slice(11, 19)}`
            : '—';
          const uptime = c.uptimeMs === null || c.state !== 'up' || stale ? null : c.uptimeMs + since;
          const armed =
            c.crashStartsLeft > 0 ? ` · crash loop: ${c.crashStartsLeft} failing start(s) left` : '';
          return `<tr data-child="${escapeHtml(c.name)}"><th scope="row">${escapeHtml(c.name)}</th><td class="pid">${c.pid ?? '—'}</td><td class="state state-${c.state}">${c.state}${armed}</td><td class="restarts">${c.restarts}</td><td>${escapeHtml(exit)}</td><td>${duration(uptime)}</td></tr>`;
        })
        .join('');
      return `<table class="tree${stale ? ' stale' : ''}" data-supervisor="${escapeHtml(tree.id)}"><caption>${caption}</caption><thead><tr><th scope="col">name</th><th scope="col">PID</th><th scope="col">state</th><th scope="col">restarts</th><th scope="col">last exit</th><th scope="col">uptime</th></tr></thead><tbody>${rows}</tbody></table>`;
    })
    .join('');
}

/** What one supervisor event says, beyond its type: why, how it ended, the backoff, the recovery. */
function eventDetails(e: SupervisorEvent): string {
  const parts: string[] = [];
  if (e.reason) parts.push(e.reason);
  if (e.signal) parts.push(e.signal);
  else if (e.code !== undefined && e.code !== null) parts.push(`code ${e.code}`);
  if (e.type === 'restarting' && e.delayMs !== undefined)
    parts.push(e.delayMs > 0 ? `backoff ${duration(e.delayMs)}` : 'at once');
  if (e.recoveryMs !== undefined) parts.push(`recovered in ${duration(e.recoveryMs)}`);
  if (e.message) parts.push(e.message);
  return parts.join(' · ');
}

/** The supervisors' latest events: restarts climbing, the backoff growing, a supervisor giving up. */
export function renderSupervisorEvents(state: ConsoleState): string {
  if (state.events.length === 0) return '<p>No supervisor event yet.</p>';
  const rows = state.events
    .map(
      (e) =>
        `<tr class="event-${e.type}" data-supervisor="${escapeHtml(e.supervisorId)}" data-service="${escapeHtml(e.service)}" data-type="${e.type}"><td>${clock(Date.parse(e.time))}</td><td><code>${escapeHtml(e.supervisorId)}:${escapeHtml(e.service)}</code></td><td>${e.type}</td><td class="pid">${e.pid ?? '—'}</td><td class="restarts">${e.restarts}</td><td>${escapeHtml(eventDetails(e))}</td></tr>`,
    )
    .join('');
  return `<table id="events-table"><caption>the supervisors' latest events (newest first)</caption><thead><tr><th scope="col">time (UTC)</th><th scope="col">service</th><th scope="col">event</th><th scope="col">PID</th><th scope="col">restarts</th><th scope="col">details</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/** The last complete second and the run's totals of one style. */
export function renderStyleNumbers(state: ConsoleState, style: ConsoleStyle): string {
  const last = state.seconds[style]?.at(-1);
  const totals = state.totals[style];
  const allErrors = Object.fromEntries(ERROR_CLASSES.map((c) => [c, 0])) as Record<string, number>;
  for (const s of state.seconds[style] ?? []) for (const c of ERROR_CLASSES) allErrors[c]! += s.outcomes[c];
  const errorRows = ERROR_CLASSES.map(
    (c) => `<tr><th scope="row">${c}</th><td>${last?.outcomes[c] ?? 0}</td><td>${allErrors[c]}</td></tr>`,
  ).join('');
  return `<table class="numbers" data-style="${style}"><caption>${style}: last second and the charted window</caption>
<thead><tr><th scope="col">measure</th><th scope="col">last second</th><th scope="col">window</th></tr></thead>
<tbody><tr><th scope="row">ok/s</th><td class="ok">${last?.outcomes.ok ?? 0}</td><td>${totals ? `${totals.ok} ok` : '—'}</td></tr>
<tr><th scope="row">p50</th><td class="p50">${ms(last?.p50 ?? 0)}</td><td></td></tr>
<tr><th scope="row">p99</th><td class="p99">${ms(last?.p99 ?? 0)}</td><td></td></tr>
<tr><th scope="row">failed</th><td>${last ? last.sent - last.outcomes.ok : 0}</td><td class="failed">${totals ? totals.failed : 0}</td></tr>
${errorRows}</tbody></table>`;
}

export function renderTimeline(state: ConsoleState): string {
  if (state.faults.length === 0) return '<p>No fault yet: press a button above.</p>';
  const rows = [...state.faults]
    .reverse()
    .map((f) => {
      const recovery = f.open
        ? 'measuring…'
        : f.recovery.length === 0
          ? 'no load running: nothing measured'
          : f.recovery
              .map(
                (r) =>
                  `${r.target}: ${r.failed}/${r.requests} failed, first success after failure ${r.failed ? duration(r.firstSuccessAfterFailureMs) : 'n/a'}, p99 back ${r.p99RecoveryMs === null ? 'never' : duration(r.p99RecoveryMs)}`,
              )
              .join('; ');
      return `<tr data-fault="${f.id}" data-target="${escapeHtml(f.target)}" data-kind="${f.kind}" class="${f.open ? 'open' : 'closed'}"><td>${clock(f.at)}</td><td>${escapeHtml(f.kind)}${f.forMs ? ` ${f.forMs / 1000} s` : ''}${f.times ? ` ${f.times} starts` : ''}</td><td><code>${escapeHtml(f.target)}</code></td><td class="${f.ok ? '' : 'failed-fault'}">${escapeHtml(f.message || 'sent…')}</td><td class="recovery">${escapeHtml(recovery)}</td></tr>`;
    })
    .join('');
  return `<table id="timeline-table"><caption>faults and measured recovery (newest first)</caption><thead><tr><th scope="col">time (UTC)</th><th scope="col">fault</th><th scope="col">target</th><th scope="col">what the driver did</th><th scope="col">recovery</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/** The seed's table, with what this page measured in each style's cell. */
export function renderComparison(state: ConsoleState): string {
  const cell = (style: ConsoleStyle, row: 'performance' | 'stability'): string => {
    const seconds = state.seconds[style] ?? [];
    if (row === 'performance') {
      const served = seconds.filter((s) => s.outcomes.ok > 0);
      if (served.length === 0) return 'not measured yet (start the load)';
      const p50s = served.map((s) => s.p50).sort((a, b) => a - b);
      return `median p50 ${ms(p50s[Math.floor(p50s.length / 2)]!)} over ${served.length} s`;
    }
    const faults = state.faults.filter((f) => f.recovery.some((r) => r.target === style));
    if (faults.length === 0) return 'no fault measured yet';
    return faults
      .map((f) => {
        const r = f.recovery.find((x) => x.target === style)!;
        return `${f.kind} ${f.target}: ${r.failed} failed${r.failed ? `, served again after ${duration(r.firstSuccessAfterFailureMs)}` : ''}`;
      })
      .join('; ');
  };
  const rows = (['performance', 'stability'] as const)
    .map(
      (row) =>
        `<tr><th scope="row">${row === 'performance' ? 'Performance' : 'Stability'}</th>${CONSOLE_STYLES.map((s) => `<td>${escapeHtml(cell(s, row))}</td>`).join('')}</tr>`,
    )
    .join('');
  return `<table id="comparison-table"><caption>the seed's comparison, measured on this page</caption><thead><tr><th scope="col">row</th>${CONSOLE_STYLES.map((s) => `<th scope="col">${s}</th>`).join('')}</tr></thead><tbody>${rows}</tbody></table>`;
}

export function renderLoadStatus(state: ConsoleState): string {
  return state.load
    ? `Load running: ${state.load.rate} req/s per style, mix ${escapeHtml(state.load.mix)}, since ${clock(state.load.startedAt)} UTC.`
    : 'Load stopped.';
}
