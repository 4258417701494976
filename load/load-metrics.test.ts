import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Agent, request } from 'undici';
import { runLoad } from './run-load.ts';
import { makeCorpus, serveFile, startServer, type TestCorpus, type TestServer } from './test-fixtures.ts';

let corpus: TestCorpus;
let server: TestServer;
before(async () => {
  corpus = await makeCorpus();
  server = await startServer((req, res, body) => {
    if (req.url === '/files/chaos/poison.bin') res.writeHead(500).end();
    else serveFile(res, body);
  }, corpus.bodies);
});
after(async () => {
  await server.close();
  await corpus.cleanup();
});

test('the client-side view is on /metrics while the run lasts', async () => {
  let scrape: Promise<string> | undefined;
  let port = 0;
  await runLoad({
    targets: [{ name: 'mono', url: server.url }],
    rate: 100,
    durationMs: 1500,
    corpusDir: corpus.dir,
    metricsPort: 0,
    faults: [{ atMs: 200, target: 'mono', kind: 'poison' }],
    onMetricsListening: (p) => {
      port = p;
    },
    onProgress: (p) => {
      // Scrape once the poison is injected (its request may take a while on a crowded machine).
      if (!scrape && p.faults.some((f) => f.ok)) {
        scrape = request(`http://127.0.0.1:${port}/metrics`).then((res) => res.body.text());
      }
    },
  });
  assert.ok(scrape, 'scraped during the run');
  const text = await scrape;
  assert.match(text, /kstyles_load_requests_total\{target="mono",outcome="ok"\} \d+/);
  assert.match(
    text,
    /kstyles_load_request_duration_seconds_bucket\{le="0\.00005",target="mono",outcome="ok"\}/,
  );
  assert.match(
    text,
    /kstyles_load_request_duration_seconds_bucket\{le="6\.5536",target="mono",outcome="ok"\}/,
  );
  assert.match(text, /kstyles_load_faults_injected_total\{style="mono",target="mono",kind="poison"\} 1/);
  // A fresh connection: the scrape's kept-alive socket may not have seen its close yet.
  const fresh = new Agent();
  await assert.rejects(
    request(`http://127.0.0.1:${port}/metrics`, { dispatcher: fresh }),
    /ECONNREFUSED/,
    'closed after the run',
  );
  await fresh.close();
});
