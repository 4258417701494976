/**
 * The SDK as the processes register it (setup.ts → sdk.ts), in this test's own process: spans recorded
 * through spans.ts over real HTTP, written by the file exporter, read back through trace-file.ts.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTracing, type Tracing } from './setup.ts';
import {
  endSpan,
  type HeaderMap,
  inCarriedContext,
  inHttpServerSpan,
  injectHeaders,
  inSpan,
  inSpanContext,
  SpanKind,
  sampledCarrier,
  startMessagingClientSpan,
  startMessagingServerSpan,
  startSpan,
  traceCarrierOf,
  tracingOn,
} from './spans.ts';
import { type FlatSpan, groupByTrace, parseTraceLine, parseTraceLines, rootOf } from './trace-file.ts';

/** A header map of the shape NATS's MsgHdrs has (get/set/keys; '' when missing). */
function headerMap(): HeaderMap & { values: Map<string, string> } {
  const values = new Map<string, string>();
  return {
    values,
    get: (key) => values.get(key) ?? '',
    set: (key, value) => {
      values.set(key, value);
    },
    keys: () => [...values.keys()],
  };
}

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const PARENT_ID = 'b7ad6b7169203331';

describe('tracing with the file exporter (real SDK, real HTTP)', () => {
  let dir: string;
  let file: string;
  let tracing: Tracing;
  let server: Server;
  let base: string;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'kstyles-tracing-'));
    file = path.join(dir, 'nested', 'traces.jsonl');
    assert.equal(tracingOn(), false, 'nothing registered before startTracing');
    tracing = await startTracing(
      { style: 'test', component: 'http' },
      { env: { KSTYLES_TRACES_FILE: file, OTEL_TRACES_SAMPLER: 'always_on' } },
    );
    server = createServer((req, res) => {
      void inHttpServerSpan(req, res, '/x', async () => {
        await inSpan('child work', SpanKind.INTERNAL, async () => {
          await new Promise((resolve) => setTimeout(resolve, 2));
        });
        const status = req.url === '/fail' ? 503 : 200;
        res.writeHead(status);
        res.end('done');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    await tracing.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  async function spansAfterFlush(): Promise<FlatSpan[]> {
    await tracing.flush();
    return parseTraceLines(readFileSync(file, 'utf8'));
  }

  it('registers the SDK and names the exporter and sampler', () => {
    assert.equal(tracingOn(), true);
    assert.deepEqual(tracing.summary, {
      serviceName: 'test-http',
      exporters: [`file ${file}`],
      sampler: 'always_on',
    });
  });

  it('records an HTTP server span with its child, and continues an incoming traceparent', async () => {
    const res = await fetch(`${base}/files/a`, {
      headers: { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` },
    });
    assert.equal(await res.text(), 'done');
    const trace = groupByTrace(await spansAfterFlush()).get(TRACE_ID);
    assert.ok(trace, 'the trace the request named was continued');
    const server = trace.find((s) => s.name === 'GET /x')!;
    assert.equal(server.kind, 'server');
    assert.equal(server.parentSpanId, PARENT_ID);
    assert.equal(server.service, 'test-http');
    assert.equal(server.attributes['http.response.status_code'], 200);
    assert.equal(server.attributes['url.path'], '/files/a');
    const child = trace.find((s) => s.name === 'child work')!;
    assert.equal(child.parentSpanId, server.spanId);
    assert.ok(
      child.startUs >= server.startUs && child.endUs <= server.endUs,
      'the child lies inside its parent',
    );
    assert.ok(child.endUs - child.startUs >= 1000, 'microsecond times: the 2 ms wait shows');
  });

  it('starts a trace of its own without a traceparent, and marks a 5xx failed', async () => {
    await (await fetch(`${base}/fail`)).text();
    const spans = await spansAfterFlush();
    const failed = spans.find((s) => s.attributes['url.path'] === '/fail')!;
    assert.equal(failed.parentSpanId, undefined);
    assert.notEqual(failed.traceId, TRACE_ID);
    assert.equal(failed.status, 'error');
    assert.equal(failed.attributes['http.response.status_code'], 503);
  });

  it('writes lines that are each one OTLP/JSON ExportTraceServiceRequest', async () => {
    await spansAfterFlush();
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    assert.ok(lines.length >= 1);
    for (const line of lines) {
      const request = JSON.parse(line) as {
        resourceSpans: Array<{
          resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> };
          scopeSpans: Array<{ scope: { name: string }; spans: Array<Record<string, unknown>> }>;
        }>;
      };
      for (const resourceSpans of request.resourceSpans) {
        const name = resourceSpans.resource.attributes.find((a) => a.key === 'service.name');
        assert.equal(name?.value.stringValue, 'test-http');
        for (const scope of resourceSpans.scopeSpans) {
          assert.equal(scope.scope.name, 'kernel-styles');
          for (const span of scope.spans) {
            assert.match(String(span.traceId), /^[0-9a-f]{32}$/);
            assert.match(String(span.spanId), /^[0-9a-f]{16}$/);
            assert.match(String(span.startTimeUnixNano), /^\d{19}$/);
            assert.equal(typeof span.kind, 'number');
          }
        }
      }
      assert.ok(parseTraceLine(line).length > 0);
    }
  });

  it('carries the context through message headers and task messages, and fails a span with its code', async () => {
    const headers = headerMap();
    let clientId = '';
    await inSpan('caller', SpanKind.INTERNAL, async () => {
      const client = startMessagingClientSpan('nats', 'kstyles.test', 1)!;
      clientId = client.spanContext().spanId;
      injectHeaders(client, headers);
      endSpan(client);
    });
    assert.match(headers.values.get('traceparent') ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    // As services/ipc/service-host.ts runs a handler: the span from the headers, the handler inside it.
    const handler = startMessagingServerSpan('nats', 'kstyles.test', headers)!;
    await assert.rejects(
      inSpanContext(handler, async () => {
        const pool = startSpan('pool hop', SpanKind.CLIENT)!;
        const carrier = traceCarrierOf(pool);
        assert.ok(sampledCarrier(carrier));
        await inCarriedContext(carrier, () => inSpan('in the worker', SpanKind.INTERNAL, async () => {}));
        endSpan(pool);
        throw Object.assign(new Error('no such file'), { code: 'NOT_FOUND' });
      }).catch((err: unknown) => {
        endSpan(handler, err);
        throw err;
      }),
      /no such file/,
    );
    const spans = await spansAfterFlush();
    const server = spans.find((s) => s.name === 'process kstyles.test')!;
    assert.equal(server.parentSpanId, clientId);
    assert.equal(server.kind, 'server');
    assert.equal(server.attributes['messaging.system'], 'nats');
    assert.equal(server.status, 'error');
    assert.equal(server.attributes['error.type'], 'NOT_FOUND');
    const pool = spans.find((s) => s.name === 'pool hop')!;
    assert.equal(pool.parentSpanId, server.spanId);
    assert.equal(spans.find((s) => s.name === 'in the worker')?.parentSpanId, pool.spanId);
    const root = rootOf(groupByTrace(spans).get(server.traceId)!);
    assert.equal(root?.name, 'caller');
  });
});

describe('the traces file past its size bound', () => {
  it('is moved to <file>.1 and begun again', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kstyles-tracing-'));
    const file = path.join(dir, 'traces.jsonl');
    const tracing = await startTracing(
      { style: 'test' },
      { env: { KSTYLES_TRACES_FILE: file, KSTYLES_TRACES_FILE_MAX_BYTES: '4096' } },
    );
    try {
      for (let i = 0; i < 40; i++) {
        await inSpan(`span ${i} ${'x'.repeat(100)}`, SpanKind.INTERNAL, async () => {});
        await tracing.flush();
      }
      assert.ok(existsSync(`${file}.1`), 'the full file was moved aside');
      assert.ok(statSync(file).size <= 4096, `the new file is within the bound (${statSync(file).size})`);
      const names = [
        ...parseTraceLines(readFileSync(`${file}.1`, 'utf8')),
        ...parseTraceLines(readFileSync(file, 'utf8')),
      ].map((s) => s.name);
      assert.ok(names.includes(`span 39 ${'x'.repeat(100)}`), 'the newest span is kept');
    } finally {
      await tracing.shutdown();
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(tracingOn(), false, 'shutdown unregisters');
  });
});

describe('OTLP/HTTP export (OTEL_EXPORTER_OTLP_ENDPOINT)', () => {
  it('posts OTLP/JSON to <endpoint>/v1/traces', async () => {
    // A collector stand-in on loopback: Jaeger's image cannot be pulled here (no registry). It records what
    // the real OTLP exporter sends, as Jaeger's OTLP/HTTP receiver would get it.
    const received: Array<{ url: string; type: string; body: string }> = [];
    const collector = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      req.on('end', () => {
        received.push({ url: req.url ?? '', type: String(req.headers['content-type']), body });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
    const tracing = await startTracing({ style: 'test' }, { env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint } });
    try {
      assert.deepEqual(tracing.summary?.exporters, [`otlp ${endpoint}/v1/traces`]);
      await inSpan('exported over http', SpanKind.INTERNAL, async () => {});
      await tracing.flush();
      assert.equal(received.length, 1);
      assert.equal(received[0]!.url, '/v1/traces');
      assert.match(received[0]!.type, /^application\/json/);
      const spans = parseTraceLine(received[0]!.body);
      assert.deepEqual(
        spans.map((s) => [s.service, s.name]),
        [['test', 'exported over http']],
      );
    } finally {
      await tracing.shutdown();
      await new Promise((resolve) => collector.close(resolve));
    }
  });
});
