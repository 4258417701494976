/**
 * The console's side of the lab's traces: reads the newest complete trace of each style from the lab's
 * traces directory (services/telemetry/trace-file.ts) into the waterfall view, and sends one traced
 * request to each style on demand.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type FlatSpan,
  groupByTrace,
  readTraceFileTail,
  rootOf,
} from '../../services/telemetry/trace-file.ts';
import { labTracesFile } from '../traces.ts';
import {
  type StyleTrace,
  type TraceView,
  WATERFALL_STYLES,
  type WaterfallRow,
} from './trace-waterfall-view.ts';

/** How much of each file's end is read: far more than one trace, far less than a long run's file. */
const TAIL_BYTES = 1024 * 1024;
/**
 * A trace's spans come from several processes, each writing every 250 ms: a request counts as
 * complete once its root ended this long ago.
 */
const SETTLE_MS = 1000;
/** The request the button traces: a fixed file of every corpus, large enough to cross every hop. */
export const TRACED_PATH = 'bench/1m.bin';

/** The attributes that tell a span from its siblings, in a few words. */
function noteOf(span: FlatSpan): string {
  const a = span.attributes;
  const parts: string[] = [];
  if (a['kstyles.ipc.attempt'] !== undefined) parts.push(`attempt ${a['kstyles.ipc.attempt']}`);
  if (a['kstyles.ipc.outcome'] !== undefined) parts.push(String(a['kstyles.ipc.outcome']));
  if (a['kstyles.read.offset'] !== undefined) {
    parts.push(`@${a['kstyles.read.offset']} +${Number(a['kstyles.read.length']) / 1024} KiB`);
  }
  if (a['kstyles.grant.to'] !== undefined) parts.push(`grant → ${a['kstyles.grant.to']}`);
  else if (a['kstyles.transfer'] !== undefined) parts.push(String(a['kstyles.transfer']));
  if (span.status === 'error' && a['error.type'] !== undefined && a['kstyles.ipc.outcome'] === undefined) {
    parts.push(String(a['error.type']));
  }
  return parts.join(' · ');
}

/** A trace as waterfall rows: depth first from the root, siblings in start order. */
export function waterfallOf(trace: FlatSpan[]): StyleTrace | null {
  const root = rootOf(trace);
  if (!root) return null;
  const children = new Map<string, FlatSpan[]>();
  for (const span of trace) {
    if (span === root || !span.parentSpanId) continue;
    const list = children.get(span.parentSpanId) ?? [];
    list.push(span);
    children.set(span.parentSpanId, list);
  }
  const rows: WaterfallRow[] = [];
  const visit = (span: FlatSpan, depth: number) => {
    rows.push({
      name: span.name,
      service: span.service,
      depth,
      startMs: (span.startUs - root.startUs) / 1000,
      durationMs: (span.endUs - span.startUs) / 1000,
      error: span.status === 'error',
      note: noteOf(span),
    });
    for (const child of (children.get(span.spanId) ?? []).sort((a, b) => a.startUs - b.startUs))
      visit(child, depth + 1);
  };
  visit(root, 0);
  // A child may end after the root (a file server's span outlives the gateway's answer).
  const end = Math.max(...trace.map((s) => s.endUs));
  return {
    traceId: root.traceId,
    at: Math.round(root.startUs / 1000),
    totalMs: (end - root.startUs) / 1000,
    request: `${root.attributes['url.path'] ?? root.name} → ${root.attributes['http.response.status_code'] ?? '?'}`,
    rows,
  };
}

/** The newest request of one style's spans whose root is an HTTP request that ended SETTLE_MS ago. */
export function newestRequest(spans: FlatSpan[], now: number): StyleTrace | null {
  let newest: FlatSpan[] | undefined;
  let newestEnd = -1;
  for (const trace of groupByTrace(spans).values()) {
    const root = rootOf(trace);
    if (root?.kind !== 'server' || root.attributes['url.path'] === undefined) continue;
    if (root.endUs / 1000 > now - SETTLE_MS || root.endUs <= newestEnd) continue;
    newest = trace;
    newestEnd = root.endUs;
  }
  return newest ? waterfallOf(newest) : null;
}

/** The newest sampled request of every style, from `<dir>/<style>.jsonl` (or its rotated `.1`). */
export async function latestTraces(dir: string | undefined, now = Date.now()): Promise<TraceView> {
  if (!dir) return { dir: null, styles: {} };
  const styles: TraceView['styles'] = {};
  for (const style of WATERFALL_STYLES) {
    const file = labTracesFile(dir, style);
    let found = newestRequest(await readTraceFileTail(file, TAIL_BYTES), now);
    found ??= newestRequest(await readTraceFileTail(`${file}.1`, TAIL_BYTES), now);
    styles[style] = found;
  }
  return { dir, styles };
}

/**
 * One GET of TRACED_PATH to each style with a fresh sampled `traceparent`, so it is traced whatever
 * the sampling ratio; resolves with each style's trace id and status code.
 */
export async function traceOneRequest(
  urls: Record<string, string>,
): Promise<Record<string, { traceId: string; status: number | string }>> {
  const answers = await Promise.all(
    WATERFALL_STYLES.map(async (style) => {
      const traceId = randomBytes(16).toString('hex');
      const traceparent = `00-${traceId}-${randomBytes(8).toString('hex')}-01`;
      try {
        const res = await fetch(`${urls[style]}/files/${TRACED_PATH}`, {
          headers: { traceparent },
          signal: AbortSignal.timeout(10_000),
        });
        await res.arrayBuffer();
        return [style, { traceId, status: res.status }] as const;
      } catch (err) {
        return [style, { traceId, status: (err as Error).message }] as const;
      }
    }),
  );
  return Object.fromEntries(answers);
}

/**
 * `GET /traces`: the view as JSON; `POST /traces`: one traced request per style, then the JSON answer
 * or (a form without JavaScript) back to the page. False for any other request.
 */
export async function serveTraces(
  req: IncomingMessage,
  res: ServerResponse,
  options: { dir: string | undefined; urls: Record<string, string> },
): Promise<boolean> {
  if (new URL(req.url ?? '/', 'http://console').pathname !== '/traces') return false;
  const json = (status: number, value: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(value));
  };
  if (req.method === 'GET') {
    json(200, await latestTraces(options.dir));
    return true;
  }
  if (req.method !== 'POST') {
    res.writeHead(405, { allow: 'GET, POST' });
    res.end();
    return true;
  }
  // Only this page may send requests from here: a cross-site form post would otherwise reach loopback.
  const origin = req.headers.origin;
  if (origin && origin !== `http://${req.headers.host}`) {
    res.writeHead(403, { 'content-type': 'text/plain' });
    res.end(`refused: a request from ${origin}, not from this console`);
    return true;
  }
  const sent = options.dir ? await traceOneRequest(options.urls) : {};
  if (req.headers.accept?.includes('application/json')) json(200, sent);
  else {
    res.writeHead(303, { location: '/#traces-h' });
    res.end();
  }
  return true;
}
