/**
 * How often a thread that receives HTTP bodies runs full garbage collections, by how it reads them:
 * through undici (a fresh buffer for every read) or through the sender threads' own client
 * (load/http-client.ts: every read into one reused buffer). `npx tsx load/measure-body-gc.ts [--rate 300]
 * [--seconds 20] [--runs 2]`.
 *
 * A server in the main thread answers 1 MiB for 3 requests in 100 and 2 KiB for the rest; a thread with
 * the sender thread's 8 MiB young generation sends them open-loop over 8 keep-alive connections and
 * counts its own collections (perf_hooks 'gc' entries). The two readers run alternately. Figures and
 * what they mean for the demo: load/README.md, 'In the demo'.
 */
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';

const READERS = ['undici', 'http-client'] as const;
type Reader = (typeof READERS)[number];
type Counts = { requests: number; mib: number; markCompacts: number; otherGcs: number; maxPauseMs: number };

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '300' },
    seconds: { type: 'string', default: '20' },
    runs: { type: 'string', default: '2' },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const runs = Number(values.runs);
for (const [flag, value] of [
  ['--rate', rate],
  ['--seconds', seconds],
  ['--runs', runs],
] as const) {
  if (!(Number.isInteger(value) && value > 0)) {
    process.stderr.write(`measure-body-gc: ${flag} must be a positive integer, not '${value}'\n`);
    process.exit(2);
  }
}

// Plain JavaScript; the thread registers tsx's loader itself to import the client (as sender-thread.mjs does).
const THREAD = `
const { PerformanceObserver, constants } = require('node:perf_hooks');
const { workerData, parentPort } = require('node:worker_threads');
const { reader, port, rate, seconds, undiciPath, tsxApiUrl, httpClientUrl } = workerData;
const counts = { requests: 0, bytes: 0, markCompacts: 0, otherGcs: 0, maxPauseMs: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) counts.markCompacts++;
    else counts.otherGcs++;
    counts.maxPauseMs = Math.max(counts.maxPauseMs, e.duration);
  }
}).observe({ entryTypes: ['gc'] });
const CONNECTIONS = 8;
const origin = 'http://127.0.0.1:' + port;
(async () => {
  let send;
  if (reader === 'undici') {
    const { Pool } = require(undiciPath);
    const pool = new Pool(origin, { connections: CONNECTIONS });
    const handler = {
      onConnect() {}, onHeaders() { return true; },
      onData(chunk) { counts.bytes += chunk.length; return true; },
      onComplete() { counts.requests++; },
      onError(err) { throw err; },
    };
    send = (path) => pool.dispatch({ origin, path, method: 'GET' }, handler);
  } else {
    (await import(tsxApiUrl)).register();
    const { HttpPool } = await import(httpClientUrl);
    const pool = new HttpPool(origin, CONNECTIONS, 5000);
    // The pool takes one request per connection at a time; the rest wait here, as in target-runner.ts.
    const waiting = [];
    let inFlight = 0;
    const pump = () => {
      while (inFlight < CONNECTIONS && waiting.length > 0) {
        inFlight++;
        pool.get(waiting.shift(), handler);
      }
    };
    const handler = {
      onSent() {}, onStatus() {},
      onBody(chunk) { counts.bytes += chunk.length; },
      onEnd() { counts.requests++; inFlight--; queueMicrotask(pump); },
      onError(err) { throw err; },
    };
    send = (path) => { waiting.push(path); pump(); };
  }
  const t0 = performance.now();
  let sent = 0;
  const tick = setInterval(() => {
    const elapsed = performance.now() - t0;
    for (const due = Math.floor((elapsed * rate) / 1000); sent < due; sent++) send(sent % 100 < 3 ? '/big' : '/small');
    if (elapsed < seconds * 1000) return;
    clearInterval(tick);
    setTimeout(() => parentPort.postMessage(counts), 500);
  }, 1);
})();
`;

const big = Buffer.alloc(1 << 20, 7);
const small = Buffer.alloc(2048, 1);
const server = http.createServer((req, res) => {
  const body = req.url === '/big' ? big : small;
  res.writeHead(200, { 'content-length': body.length }).end(body);
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as AddressInfo;
const undiciPath = createRequire(import.meta.url).resolve('undici');
const tsxApiUrl = import.meta.resolve('tsx/esm/api');
const httpClientUrl = new URL('./http-client.ts', import.meta.url).href;

function measure(reader: Reader): Promise<Counts> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(THREAD, {
      eval: true,
      workerData: { reader, port, rate, seconds, undiciPath, tsxApiUrl, httpClientUrl },
      resourceLimits: { maxYoungGenerationSizeMb: 8 },
    });
    worker.once('error', reject);
    worker.once('message', (c: Counts & { bytes: number }) => {
      void worker.terminate();
      resolve({
        requests: c.requests,
        mib: Math.round(c.bytes / 2 ** 20),
        markCompacts: c.markCompacts,
        otherGcs: c.otherGcs,
        maxPauseMs: Math.round(c.maxPauseMs * 10) / 10,
      });
    });
  });
}

process.stdout.write(
  `${rate} req/s for ${seconds} s (3 in 100 of 1 MiB), ${runs} alternating runs per reader\n`,
);
for (let run = 1; run <= runs; run++) {
  for (const reader of READERS) {
    const c = await measure(reader);
    process.stdout.write(
      `run ${run}  ${reader.padEnd(13)}  ${c.requests} requests, ${c.mib} MiB: ${c.markCompacts} mark-compacts, ${c.otherGcs} other collections, longest pause ${c.maxPauseMs} ms\n`,
    );
  }
}
server.close();
