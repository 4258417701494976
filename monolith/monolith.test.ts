import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FileService } from '../services/contract/file-service.ts';
import { listen } from '../services/contract/http-server.ts';
import { createHttpMetrics } from '../services/contract/metrics.ts';
import { LEAK_MARKER } from '../services/contract/testing/attacks.ts';
import { httpContract } from '../services/contract/testing/contract-suite.ts';
import { rawRequest } from '../services/contract/testing/raw-http.ts';
import { testCorpus } from '../services/contract/testing/test-corpus.ts';
import { createMonolithServer, type RunningMonolith, startMonolith } from './app.ts';
import { openInProcessFileService } from './in-process.ts';
import { STYLE } from './style.ts';
import { PausedDownload } from './test-helpers.ts';

const MiB = 1024 * 1024;

httpContract('monolith (Express over the in-process services)', STYLE, async (corpus) => {
  const monolith = await startMonolith({
    dataDir: corpus.dir,
    metrics: createHttpMetrics(STYLE, { defaultMetrics: false }),
  });
  return { baseUrl: monolith.url, corpus, stop: async () => void (await monolith.stop(1000)) };
});

describe('monolith: malformed requests over raw HTTP', () => {
  let monolith: RunningMonolith;
  before(async () => {
    monolith = await startMonolith({
      dataDir: (await testCorpus()).dir,
      metrics: createHttpMetrics(STYLE, { defaultMetrics: false }),
    });
  });
  after(() => monolith?.stop(1000));

  // Each is sent byte for byte as written; none may leak, crash the process or answer in anything but problem+json.
  const cases: Array<{ method: string; target: string; status: number; headers?: Record<string, string> }> = [
    { method: 'GET', target: '/files/%zz', status: 400 },
    { method: 'GET', target: '/files/%', status: 400 },
    { method: 'GET', target: '/files/docs/%E0%A4%A', status: 400 },
    { method: 'GET', target: '/files/docs/hello%ZZworld.txt', status: 400 },
    { method: 'GET', target: '/files/', status: 400 },
    { method: 'GET', target: '/files/docs/hello world.txt', status: 400 },
    { method: 'GET', target: '/files/docs/\x00', status: 400 },
    { method: 'GET', target: '/files/docs/\x7f', status: 400 },
    { method: 'BREW', target: '/files/docs/hello%20world.txt', status: 400 },
    { method: 'DELETE', target: '/files/docs/hello%20world.txt', status: 405 },
    { method: 'PUT', target: '/files/../../etc/passwd', status: 405 },
    { method: 'GET', target: 'http://127.0.0.1/files/../../../etc/passwd', status: 403 },
    { method: 'GET', target: '/healthz/../files/../../etc/passwd', status: 404 },
    { method: 'GET', target: '/FILES/../../etc/passwd', status: 404 },
    {
      method: 'GET',
      target: '/files/docs/hello%20world.txt',
      status: 431,
      headers: { 'x-big': 'y'.repeat(20_000) },
    },
  ];

  for (const { method, target, status, headers } of cases) {
    it(`${method} ${JSON.stringify(target).slice(1, 60)} → ${status} problem+json`, async () => {
      const res = await rawRequest(monolith.url, method, target, headers);
      assert.equal(res.status, status);
      assert.equal(res.headers['content-type'], 'application/problem+json');
      const text = res.body.toString('latin1');
      assert.ok(!text.includes(LEAK_MARKER), 'leaked /etc/passwd');
      assert.ok(!/\bat .+\.(ts|js):\d+/.test(text), 'no stack trace in an answer');
      const problem = JSON.parse(text) as { status: number; detail: string; hint: string };
      assert.equal(problem.status, status);
      assert.ok(problem.detail && problem.hint);
    });
  }

  it('is still alive and serving after all of them', async () => {
    const res = await fetch(`${monolith.url}/files/docs/hello%20world.txt`);
    assert.equal(res.status, 200);
    assert.equal((await res.arrayBuffer()).byteLength, 1200);
  });
});

describe('monolith: bounded memory for large files and slow clients', () => {
  // The corpus's 4 MiB file fits whole into one loopback connection's kernel buffers (tcp_wmem's maximum is
  // 4 MiB here), so it could not show backpressure: a file several times larger than the kernel may buffer
  // per connection does. Without backpressure the server would read every byte of every download.
  const wmemMax = Number(
    readFileSync('/proc/sys/net/ipv4/tcp_wmem', 'utf8').trim().split(/\s+/)[2] ?? 4 * MiB,
  );
  /** What one connection may hold outside the server's heap: kernel send buffer, paused client's receive
   *  buffer, node's stream buffers and one driver chunk in flight. */
  const perConnectionBound = wmemMax + 8 * MiB;
  const fileSize = Math.ceil((4 * perConnectionBound) / MiB) * MiB;
  const downloads = 4;
  let dir: string;
  let expectedSha: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kstyles-monolith-big-'));
    // One random MiB repeated, each copy stamped with its index, so a misplaced block changes the hash.
    const block = randomBytes(MiB);
    const file = Buffer.allocUnsafe(fileSize);
    for (let index = 0; index * MiB < fileSize; index++) {
      block.writeUInt32BE(index, 0);
      block.copy(file, index * MiB);
    }
    writeFileSync(join(dir, 'big.bin'), file);
    expectedSha = createHash('sha256').update(file).digest('hex');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it(`reads at most what the connection can hold while ${downloads} clients of a large file pause`, async () => {
    const inner = await openInProcessFileService(dir);
    let bytesRead = 0;
    // A counting wrapper around the real service: the only way to see how far the server read ahead.
    const counting: FileService = {
      open: async (rawPath, options) => {
        const file = await inner.open(rawPath, options);
        return {
          stat: file.stat,
          async *read(range, readOptions) {
            for await (const chunk of file.read(range, readOptions)) {
              bytesRead += chunk.byteLength;
              yield chunk;
            }
          },
          close: () => file.close(),
        };
      },
      ready: (options) => inner.ready(options),
      close: () => inner.close(),
    };
    // A long deadline: this test is about memory, and the readers pause on purpose.
    const server = createMonolithServer(counting, { deadlineMs: 60_000 });
    const port = await listen(server, 0);
    const baseUrl = `http://127.0.0.1:${port}`;
    const rssBefore = process.memoryUsage().rss;
    const clients = Array.from({ length: downloads }, () => new PausedDownload(baseUrl, '/files/big.bin'));
    try {
      await Promise.all(clients.map((client) => client.paused));
      // Wait until the server stops reading: it does within milliseconds either way, as disk reads are fast.
      for (let last = -1; bytesRead !== last; ) {
        last = bytesRead;
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      const rssGrowth = process.memoryUsage().rss - rssBefore;
      assert.ok(
        bytesRead <= downloads * perConnectionBound,
        `read ${(bytesRead / MiB).toFixed(1)} MiB for ${downloads} paused clients of a ${fileSize / MiB} MiB file: no backpressure`,
      );
      assert.ok(
        rssGrowth < fileSize,
        `RSS grew by ${(rssGrowth / MiB).toFixed(0)} MiB while ${downloads} clients paused`,
      );
      for (const client of clients) client.resume();
      for (const result of await Promise.all(clients.map((client) => client.finished))) {
        assert.equal(result.status, 200);
        assert.equal(result.bodyLength, fileSize);
        assert.equal(result.bodySha256, expectedSha);
        assert.ok(result.complete);
      }
    } finally {
      for (const client of clients) client.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await inner.close();
    }
  });
});

describe('monolith: chaos hooks in-process', () => {
  it('an injected driver error is a 500 problem+json, not a crash', async () => {
    const corpus = await testCorpus();
    const monolith = await startMonolith({
      dataDir: corpus.dir,
      chaos: { enabled: true, errorRate: 1 },
      metrics: createHttpMetrics(STYLE, { defaultMetrics: false }),
    });
    try {
      const res = await fetch(`${monolith.url}/files/docs/hello%20world.txt`);
      assert.equal(res.status, 500);
      assert.equal(res.headers.get('content-type'), 'application/problem+json');
      const problem = (await res.json()) as { code: string; detail: string };
      assert.equal(problem.code, 'INTERNAL');
      assert.match(problem.detail, /injected driver error/);
      // stat needs no driver read: HEAD still answers, and the process lives on.
      assert.equal(
        (await fetch(`${monolith.url}/files/docs/hello%20world.txt`, { method: 'HEAD' })).status,
        200,
      );
      assert.equal((await fetch(`${monolith.url}/healthz`)).status, 200);
    } finally {
      await monolith.stop(1000);
    }
  });

  it('without chaos the poison file is an ordinary file', async () => {
    const corpus = await testCorpus();
    const poison = corpus.manifest.files.find((file) => file.poison);
    assert.ok(poison);
    const monolith = await startMonolith({
      dataDir: corpus.dir,
      metrics: createHttpMetrics(STYLE, { defaultMetrics: false }),
    });
    try {
      const res = await fetch(`${monolith.url}/files/${poison.path}`);
      assert.equal(res.status, 200);
      const body = Buffer.from(await res.arrayBuffer());
      assert.equal(createHash('sha256').update(body).digest('hex'), poison.sha256);
      assert.equal(monolith.chaos.enabled, false);
      assert.throws(() => monolith.chaos.setLatency(50), /chaos is not enabled/);
    } finally {
      await monolith.stop(1000);
    }
  });
});
