/**
 * One request followed through each style (issue 15), as real processes with KSTYLES_TRACES_FILE:
 * the monolith, the microkernel (supervisor, nats-server, driver, fs, gateway) and the unikernel. The
 * spans of one GET share one trace id and cover every hop, parent to child as the request went; a
 * driver SIGKILLed during a read shows the failed attempt and the retried one; an incoming
 * `traceparent` is continued; with no exporter configured nothing is written and no SDK module loads.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KSTYLES_BIN, REPO_ROOT } from '../cli/kit/repo.ts';
import { MonolithProcess } from '../monolith/test-helpers.ts';
import { type TestCorpus, testCorpus } from '../services/contract/testing/test-corpus.ts';
import type { ManifestFile } from '../services/corpus/corpus.ts';
import { fetchChecked } from '../services/microkernel/testing/load.ts';
import { startProcessKernel } from '../services/microkernel/testing/process-kernel.ts';
import { type FlatSpan, groupByTrace, parseTraceLines, rootOf } from '../services/telemetry/trace-file.ts';
import { startProgram } from '../unikernel/build/testing.ts';

let corpus: TestCorpus;
let dir: string;
before(async () => {
  corpus = await testCorpus();
  dir = mkdtempSync(path.join(os.tmpdir(), 'kstyles-traces-test-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const fileOf = (p: string): ManifestFile => corpus.manifest.files.find((f) => f.path === p)!;
/** Four 256 KiB chunks: every chunk goes through the unikernel's pool and the microkernel's fs.read. */
const LARGE = 'bench/1m.bin';
const SMALL = 'docs/hello world.txt';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The spans in `file` once `ready` holds for them (spans are written every 250 ms by each process). */
async function spansWhen(
  file: string,
  ready: (spans: FlatSpan[]) => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<FlatSpan[]> {
  const until = Date.now() + timeoutMs;
  let spans: FlatSpan[] = [];
  for (;;) {
    spans = existsSync(file) ? parseTraceLines(readFileSync(file, 'utf8')) : [];
    if (ready(spans)) return spans;
    if (Date.now() > until) {
      throw new Error(
        `${what} not in ${file} within ${timeoutMs} ms; spans: ${spans.map(describeSpan).join(', ')}`,
      );
    }
    await sleep(100);
  }
}
const describeSpan = (s: FlatSpan) => `${s.service}:${s.name}`;

/** The trace of the one request whose server span has this url.path, once its root has arrived. */
function traceOfPath(spans: FlatSpan[], urlPath: string): FlatSpan[] | undefined {
  const server = spans.find((s) => s.kind === 'server' && s.attributes['url.path'] === urlPath);
  return server ? groupByTrace(spans).get(server.traceId) : undefined;
}

const childrenOf = (trace: FlatSpan[], parent: FlatSpan, name?: string) =>
  trace.filter((s) => s.parentSpanId === parent.spanId && (name === undefined || s.name === name));

function only(spans: FlatSpan[], what: string): FlatSpan {
  assert.equal(spans.length, 1, `exactly one ${what}, got ${spans.map(describeSpan).join(', ') || 'none'}`);
  return spans[0]!;
}

/** Every span of a trace hangs from its one root: no span names a parent the trace lacks. */
function assertConnected(trace: FlatSpan[]): FlatSpan {
  const ids = new Set(trace.map((s) => s.spanId));
  const roots = trace.filter((s) => s.parentSpanId === undefined || !ids.has(s.parentSpanId));
  assert.equal(roots.length, 1, `one root, got ${roots.map(describeSpan).join(', ')}`);
  return roots[0]!;
}

const urlPathOf = (p: string) => `/files/${p.split('/').map(encodeURIComponent).join('/')}`;

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${CALLER_SPAN}-01`;

/** The HTTP server spans of `service` in the trace the TRACEPARENT request continued. */
const continuedBy = (spans: FlatSpan[], service: string) =>
  (groupByTrace(spans).get(TRACE_ID) ?? []).filter(
    (s) => s.kind === 'server' && s.service === service && s.name === 'GET /files/*',
  );

/** A request that carried TRACEPARENT: its server span continues the caller's trace. */
function assertContinued(spans: FlatSpan[], service: string): void {
  const trace = groupByTrace(spans).get(TRACE_ID);
  assert.ok(trace, `no span of trace ${TRACE_ID}`);
  const server = only(continuedBy(spans, service), `${service} server span in the continued trace`);
  assert.equal(server.parentSpanId, CALLER_SPAN);
  assert.equal(rootOf(trace), server, 'the server span is the trace root here (its parent is the caller)');
}

describe('traces through each style (real processes)', { concurrency: false }, () => {
  it('monolith: HTTP → fs stat → fs read → driver read, function calls in one trace', async () => {
    const file = path.join(dir, 'monolith.jsonl');
    const monolith = new MonolithProcess(['--port', '0', '--data', corpus.dir], {
      KSTYLES_TRACES_FILE: file,
    });
    try {
      const started = await monolith.waitForLine((l) => l.msg === 'monolith listening');
      const base = `http://127.0.0.1:${started.port}`;
      assert.deepEqual((started.tracing as { serviceName: string }).serviceName, 'monolith');
      assert.ok((await fetchChecked(base, fileOf(LARGE))).ok);
      assert.ok((await fetchChecked(base, fileOf(SMALL), { traceparent: TRACEPARENT })).ok);
      const spans = await spansWhen(
        file,
        (s) => traceOfPath(s, urlPathOf(LARGE))?.length === 10 && groupByTrace(s).has(TRACE_ID),
        'the monolith trace (GET, fs stat, 4 × fs read and driver read) and the continued trace',
      );
      const trace = traceOfPath(spans, urlPathOf(LARGE))!;
      const root = assertConnected(trace);
      assert.equal(root.name, 'GET /files/*');
      assert.equal(root.parentSpanId, undefined, 'no traceparent: a trace of its own');
      assert.ok(trace.every((s) => s.service === 'monolith' && s.traceId === root.traceId));
      assert.equal(
        only(childrenOf(trace, root, 'fs stat'), 'fs stat').attributes['kstyles.file.path'],
        LARGE,
      );
      const reads = childrenOf(trace, root, 'fs read');
      assert.deepEqual(
        reads.map((r) => r.attributes['kstyles.read.offset']).sort((a, b) => Number(a) - Number(b)),
        [0, 262144, 524288, 786432],
      );
      for (const read of reads) only(childrenOf(trace, read, 'driver read'), 'driver read per fs read');
      assertContinued(spans, 'monolith');
    } finally {
      monolith.child.kill('SIGTERM');
      await monolith.exited;
    }
  });

  it('microkernel: gateway → fs → driver over NATS, every hop a client and a server span, the grant shown', async () => {
    const file = path.join(dir, 'microkernel.jsonl');
    const kernel = await startProcessKernel({ data: corpus.dir, env: { KSTYLES_TRACES_FILE: file } });
    try {
      assert.ok((await fetchChecked(kernel.url, fileOf(LARGE))).ok);
      assert.ok((await fetchChecked(kernel.url, fileOf(SMALL), { traceparent: TRACEPARENT })).ok);
      const services = ['microkernel-gateway', 'microkernel-fs', 'microkernel-driver'];
      const spans = await spansWhen(
        file,
        (s) => {
          const trace = traceOfPath(s, urlPathOf(LARGE));
          // GET, stat (client, server, fs stat, client, server, driver read), 4 chunk reads (client,
          // server, client, server, driver read), and the close's server span.
          // Each process exports its own spans: wait for the gateway's of the continued trace too, not
          // only for the first span of it that the file server or the driver wrote.
          return (
            (trace?.length ?? 0) >= 1 + 6 + 4 * 5 + 1 && continuedBy(s, 'microkernel-gateway').length > 0
          );
        },
        'the microkernel trace',
      );
      const trace = traceOfPath(spans, urlPathOf(LARGE))!;
      const root = assertConnected(trace);
      assert.equal(root.service, 'microkernel-gateway');
      assert.deepEqual([...new Set(trace.map((s) => s.service))].sort(), services.sort());

      // gateway → fs → driver for every byte: the file server authorizes (a stat, then chunk reads of its
      // handle), and the driver's bytes go straight to the gateway, the stat's first 64 KiB with the stat.
      const granted = (client: (typeof trace)[number], handler: string) => {
        assert.equal(client.kind, 'client');
        assert.equal(client.attributes['messaging.system'], 'nats');
        assert.equal(client.attributes['kstyles.ipc.outcome'], 'ok');
        assert.equal(client.attributes['kstyles.transfer'], 'grant', 'the reply came from the driver');
        const fsServer = only(childrenOf(trace, client, handler), `${handler} in the file server`);
        assert.equal(fsServer.service, 'microkernel-fs');
        assert.equal(fsServer.kind, 'server');
        const grantTo = fsServer.attributes['kstyles.grant.to'];
        assert.match(String(grantTo), /^_INBOX_gateway\./, 'the file server granted the gateway inbox');
        const send = only(childrenOf(trace, fsServer, 'send kstyles.drv.read'), 'fs → driver grant request');
        const driverServer = only(
          childrenOf(trace, send, 'process kstyles.drv.read'),
          'driver grant handler',
        );
        assert.equal(driverServer.service, 'microkernel-driver');
        assert.equal(driverServer.attributes['kstyles.grant.to'], grantTo);
        const published = driverServer.events.find(
          (e) => e.name === 'grant: bytes published to the requester',
        );
        assert.equal(
          published?.attributes['messaging.message.body.size'],
          client.attributes['messaging.message.body.size'],
          'the driver published the bytes the gateway received',
        );
        only(childrenOf(trace, driverServer, 'driver read'), 'driver read of the grant');
        return fsServer;
      };
      const stat = only(childrenOf(trace, root, 'send kstyles.fs.stat'), 'stat request');
      assert.equal(stat.attributes['messaging.destination.name'], 'kstyles.fs.stat');
      assert.equal(stat.attributes['kstyles.ipc.attempt'], 1);
      assert.equal(stat.attributes['messaging.message.body.size'], 64 * 1024, 'the first 64 KiB');
      only(
        childrenOf(trace, granted(stat, 'process kstyles.fs.stat'), 'fs stat'),
        'fs stat in the file server',
      );
      const chunks = childrenOf(trace, root, 'send kstyles.fs.read');
      // The 960 KiB after the 64 KiB the stat carried: 256 + 256 + 256 + 192 KiB.
      assert.deepEqual(
        chunks.map((c) => c.attributes['messaging.message.body.size']).sort(),
        [196608, 262144, 262144, 262144],
      );
      for (const chunk of chunks) granted(chunk, 'process kstyles.fs.read');
      only(
        trace.filter((s) => s.name === 'process kstyles.fs.close'),
        'the close of the file server handle, in the same trace',
      );
      assertContinued(spans, 'microkernel-gateway');
    } finally {
      await kernel.stop();
    }
  });

  it('microkernel: a driver SIGKILLed during a read shows the failed attempt and the retried one', async () => {
    const file = path.join(dir, 'microkernel-kill.jsonl');
    // Every driver read takes 6 s (chaos latency), so the read is held by the driver when it is killed
    // 2.5 s in (a loaded machine may take seconds to bring the first request to a new kernel's driver);
    // the file server waits up to 15 s per attempt and the gateway 30 s for the request.
    const kernel = await startProcessKernel({
      data: corpus.dir,
      args: ['--chaos', '--deadline-ms', '30000', '--heartbeat-ms', '2000'],
      env: {
        KSTYLES_TRACES_FILE: file,
        KSTYLES_CHAOS_LATENCY_MS: '6000',
        KSTYLES_DRIVER_TIMEOUT_MS: '15000',
      },
    });
    try {
      const driverPid = await kernel.pidOf('driver');
      const answer = fetchChecked(kernel.url, fileOf(SMALL));
      await sleep(2500);
      process.kill(driverPid, 'SIGKILL');
      const result = await answer;
      assert.ok(result.ok, `the request survived the driver's death: ${JSON.stringify(result)}`);
      const spans = await spansWhen(
        file,
        (s) =>
          (traceOfPath(s, urlPathOf(SMALL)) ?? []).some(
            (x) => x.name === 'send kstyles.drv.read' && x.attributes['kstyles.ipc.outcome'] === 'ok',
          ),
        'the retried driver read',
      );
      const trace = traceOfPath(spans, urlPathOf(SMALL))!;
      // The file server's stat handler asks the driver to grant the small file's bytes to the gateway.
      const statHandler = only(
        trace.filter((s) => s.name === 'process kstyles.fs.stat'),
        'the stat of the small file',
      );
      const attempts = childrenOf(trace, statHandler, 'send kstyles.drv.read').sort(
        (a, b) => Number(a.attributes['kstyles.ipc.attempt']) - Number(b.attributes['kstyles.ipc.attempt']),
      );
      assert.ok(
        attempts.length >= 2,
        `separate spans per attempt: ${attempts.map((a) => a.attributes['kstyles.ipc.attempt'])}`,
      );
      const [failed, ...later] = attempts;
      assert.equal(failed!.attributes['kstyles.ipc.attempt'], 1);
      assert.equal(failed!.status, 'error');
      assert.ok(
        ['crashed', 'timeout'].includes(String(failed!.attributes['kstyles.ipc.outcome'])),
        `the first attempt was held by the driver that died: ${failed!.attributes['kstyles.ipc.outcome']}`,
      );
      const retried = later.at(-1)!;
      assert.equal(retried.attributes['kstyles.ipc.outcome'], 'ok');
      assert.equal(retried.status, 'unset');
      assert.ok(retried.startUs >= failed!.endUs, 'the retry follows the failed attempt');
      // The retry reached a new driver process, whose spans are in the same trace.
      const handler = only(childrenOf(trace, retried, 'process kstyles.drv.read'), 'the new driver handler');
      only(childrenOf(trace, handler, 'driver read'), "the new driver's read");
      assert.equal(childrenOf(trace, failed!).length, 0, 'the killed driver never finished its span');
    } finally {
      await kernel.stop();
    }
  });

  it('unikernel: HTTP → fs stat → fs read → pool read → driver read in a worker thread', async () => {
    const file = path.join(dir, 'unikernel.jsonl');
    const program = await startProgram(
      [process.execPath, '--import', 'tsx', path.join(REPO_ROOT, 'unikernel', 'runtime', 'main.ts')],
      ['--data', corpus.dir],
      { KSTYLES_TRACES_FILE: file },
    );
    try {
      assert.ok((await fetchChecked(program.baseUrl, fileOf(LARGE))).ok);
      assert.ok((await fetchChecked(program.baseUrl, fileOf(SMALL), { traceparent: TRACEPARENT })).ok);
      const spans = await spansWhen(
        file,
        (s) => traceOfPath(s, urlPathOf(LARGE))?.length === 14 && groupByTrace(s).has(TRACE_ID),
        'the unikernel trace (GET, fs stat, 4 × fs read, pool read and driver read)',
      );
      const trace = traceOfPath(spans, urlPathOf(LARGE))!;
      const root = assertConnected(trace);
      assert.ok(trace.every((s) => s.service === 'unikernel'));
      only(childrenOf(trace, root, 'fs stat'), 'fs stat');
      const reads = childrenOf(trace, root, 'fs read');
      assert.equal(reads.length, 4);
      for (const read of reads) {
        const hop = only(childrenOf(trace, read, 'pool read'), 'the pool hop of a 256 KiB read');
        assert.equal(hop.kind, 'client');
        only(childrenOf(trace, hop, 'driver read'), "the worker's driver read, under the hop");
      }
      // A small file stays on the main thread: no hop.
      const small = groupByTrace(spans).get(TRACE_ID)!;
      assert.equal(small.filter((s) => s.name === 'pool read').length, 0);
      only(
        small.filter((s) => s.name === 'driver read'),
        'the inline driver read',
      );
      assertContinued(spans, 'unikernel');
    } finally {
      await program.stop();
    }
  });

  it('a tracing variable that cannot be used stops each style at start, exit 2, naming it', () => {
    const bad = {
      ...process.env,
      KSTYLES_TRACES_FILE: path.join(dir, 'x.jsonl'),
      OTEL_TRACES_SAMPLER: 'often',
    };
    const unikernel = path.join(REPO_ROOT, 'unikernel', 'runtime', 'main.ts');
    for (const [style, args] of [
      ['monolith', [KSTYLES_BIN, 'monolith', '--port', '0', '--data', corpus.dir]],
      ['microkernel', [KSTYLES_BIN, 'microkernel', '--port', '0', '--data', corpus.dir]],
      ['unikernel', ['--import', 'tsx', unikernel, '--port', '0', '--data', corpus.dir]],
    ] as const) {
      const result = spawnSync(process.execPath, [...args], { env: bad, encoding: 'utf8', timeout: 60_000 });
      assert.equal(result.status, 2, `${style}: ${result.stderr}${result.stdout}`);
      assert.match(result.stderr, /OTEL_TRACES_SAMPLER=often is not a sampler: use one of always_on/, style);
    }
  });

  it('with no exporter configured: no trace file, and no module of the SDK is loaded', async () => {
    const recorder = path.join(REPO_ROOT, 'services', 'telemetry', 'testing', 'record-module-loads.mjs');
    const run = async (tracing: Record<string, string>) => {
      const log = path.join(dir, `modules-${Object.keys(tracing).length}.log`);
      const monolith = new MonolithProcess(['--port', '0', '--data', corpus.dir], {
        NODE_OPTIONS: `--import ${recorder}`,
        KSTYLES_TEST_MODULE_LOG: log,
        ...tracing,
      });
      try {
        const started = await monolith.waitForLine((l) => l.msg === 'monolith listening');
        assert.ok((await fetchChecked(`http://127.0.0.1:${started.port}`, fileOf(LARGE))).ok);
        return { started, modules: readFileSync(log, 'utf8') };
      } finally {
        monolith.child.kill('SIGTERM');
        await monolith.exited;
      }
    };
    const wouldBe = path.join(dir, 'never-written.jsonl');
    const off = await run({});
    assert.equal(off.started.tracing, undefined, 'the start line names no tracing');
    assert.match(off.modules, /node_modules\/express\//, 'the recorder saw the modules the monolith loads');
    assert.match(off.modules, /@opentelemetry\/api\//, 'the API, which the spans go through, is loaded');
    assert.doesNotMatch(
      off.modules,
      /@opentelemetry\/(sdk-trace-base|exporter-trace-otlp-http|core|resources)\//,
    );
    assert.doesNotMatch(off.modules, /services\/telemetry\/(sdk|file-exporter)\.ts/);
    assert.equal(existsSync(wouldBe), false);
    // The same process with a file named: the SDK loads and the file is written.
    const on = await run({ KSTYLES_TRACES_FILE: wouldBe });
    assert.match(on.modules, /@opentelemetry\/sdk-trace-base\//);
    assert.match(on.modules, /services\/telemetry\/sdk\.ts/);
    await spansWhen(wouldBe, (s) => s.length > 0, 'spans of the traced monolith');
  });
});
