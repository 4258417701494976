/**
 * Reading a KSTYLES_TRACES_FILE back: each line is one OTLP/JSON ExportTraceServiceRequest (the
 * Collector's file-exporter format); the spans come out flat, with their service, and grouped by trace.
 * The lab console's waterfall, the tests and the tracing-cost benchmark read traces through here.
 */
import { open, stat } from 'node:fs/promises';

type AnyValue = {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number;
  arrayValue?: { values?: AnyValue[] };
};
type KeyValue = { key: string; value?: AnyValue };
type OtlpEvent = { name: string; timeUnixNano: string; attributes?: KeyValue[] };
type OtlpLink = { traceId: string; spanId: string; attributes?: KeyValue[] };
type OtlpSpan = {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes?: KeyValue[];
  events?: OtlpEvent[];
  links?: OtlpLink[];
  status?: { code?: number; message?: string };
};
/** The parts of an ExportTraceServiceRequest this reader uses. */
export type ExportTraceServiceRequest = {
  resourceSpans: Array<{
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: Array<{ scope?: { name?: string }; spans?: OtlpSpan[] }>;
  }>;
};

export type AttributeValue = string | number | boolean | Array<string | number | boolean>;
export type Attributes = Record<string, AttributeValue>;

/** OTLP's SpanKind enumeration, by number. */
const KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'] as const;
export type FlatSpanKind = (typeof KINDS)[number];

export type FlatSpan = {
  /** The resource's service.name (monolith, microkernel-gateway, …). */
  service: string;
  traceId: string;
  spanId: string;
  /** Undefined for a root span. */
  parentSpanId: string | undefined;
  name: string;
  kind: FlatSpanKind;
  /** Microseconds since the Unix epoch (exact: below 2^53). */
  startUs: number;
  endUs: number;
  attributes: Attributes;
  events: Array<{ name: string; atUs: number; attributes: Attributes }>;
  links: Array<{ traceId: string; spanId: string }>;
  status: 'unset' | 'ok' | 'error';
  statusMessage?: string;
};

function attributeValueOf(value: AnyValue | undefined): AttributeValue {
  if (!value) return '';
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.arrayValue) return (value.arrayValue.values ?? []).map((v) => attributeValueOf(v) as string);
  return '';
}

function attributesOf(list: KeyValue[] | undefined): Attributes {
  const out: Attributes = {};
  for (const { key, value } of list ?? []) out[key] = attributeValueOf(value);
  return out;
}

const microseconds = (nanos: string): number => Number(BigInt(nanos) / 1000n);

/** The spans of one line; throws with the reason when the line is not an ExportTraceServiceRequest. */
export function parseTraceLine(line: string): FlatSpan[] {
  const request = JSON.parse(line) as ExportTraceServiceRequest;
  if (!request || !Array.isArray(request.resourceSpans)) {
    throw new Error('not an OTLP/JSON ExportTraceServiceRequest: no resourceSpans array');
  }
  const spans: FlatSpan[] = [];
  for (const resourceSpans of request.resourceSpans) {
    const service = String(attributesOf(resourceSpans.resource?.attributes)['service.name'] ?? '');
    for (const scope of resourceSpans.scopeSpans ?? []) {
      for (const span of scope.spans ?? []) {
        if (!/^[0-9a-f]{32}$/.test(span.traceId) || !/^[0-9a-f]{16}$/.test(span.spanId)) {
          throw new Error(`span ${span.name}: trace and span ids must be hex (OTLP/JSON)`);
        }
        const status = span.status?.code === 2 ? 'error' : span.status?.code === 1 ? 'ok' : 'unset';
        spans.push({
          service,
          traceId: span.traceId,
          spanId: span.spanId,
          parentSpanId: span.parentSpanId || undefined,
          name: span.name,
          kind: KINDS[span.kind ?? 0] ?? 'unspecified',
          startUs: microseconds(span.startTimeUnixNano),
          endUs: microseconds(span.endTimeUnixNano),
          attributes: attributesOf(span.attributes),
          events: (span.events ?? []).map((e) => ({
            name: e.name,
            atUs: microseconds(e.timeUnixNano),
            attributes: attributesOf(e.attributes),
          })),
          links: (span.links ?? []).map((l) => ({ traceId: l.traceId, spanId: l.spanId })),
          status,
          ...(span.status?.message ? { statusMessage: span.status.message } : {}),
        });
      }
    }
  }
  return spans;
}

/**
 * The spans of a trace file's text. A last line cut short (a process still writing it) is skipped;
 * any other line that does not parse fails with its line number.
 */
export function parseTraceLines(text: string): FlatSpan[] {
  const lines = text.split('\n');
  const spans: FlatSpan[] = [];
  lines.forEach((line, index) => {
    if (line.trim() === '') return;
    try {
      spans.push(...parseTraceLine(line));
    } catch (err) {
      const last = index === lines.length - 1;
      if (last) return;
      throw new Error(`line ${index + 1}: ${(err as Error).message}`);
    }
  });
  return spans;
}

/**
 * The spans of the last `maxBytes` of a trace file (all of a smaller one): the newest traces, without
 * reading a long-running lab's whole file. The first, partial line of the tail is dropped.
 */
export async function readTraceFileTail(path: string, maxBytes: number): Promise<FlatSpan[]> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    return [];
  }
  const start = Math.max(0, size - maxBytes);
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(size - start);
    await handle.read(buffer, 0, buffer.byteLength, start);
    let text = buffer.toString('utf8');
    if (start > 0) text = text.slice(text.indexOf('\n') + 1);
    return parseTraceLines(text);
  } finally {
    await handle.close();
  }
}

/** Spans grouped by trace id, each trace's spans in start order. */
export function groupByTrace(spans: FlatSpan[]): Map<string, FlatSpan[]> {
  const traces = new Map<string, FlatSpan[]>();
  for (const span of spans) {
    let trace = traces.get(span.traceId);
    if (!trace) {
      trace = [];
      traces.set(span.traceId, trace);
    }
    trace.push(span);
  }
  for (const trace of traces.values()) trace.sort((a, b) => a.startUs - b.startUs);
  return traces;
}

/** A trace's root span: the one whose parent is not in the trace (the first such, by start). */
export function rootOf(trace: FlatSpan[]): FlatSpan | undefined {
  const ids = new Set(trace.map((s) => s.spanId));
  return trace.find((s) => s.parentSpanId === undefined || !ids.has(s.parentSpanId));
}
