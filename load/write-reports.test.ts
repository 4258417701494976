import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeHistogram } from './histogram.ts';
import { mergeResults } from './merge-results.ts';
import { runLoad } from './run-load.ts';
import { makeCorpus, serveFile, startServer, type TestCorpus, type TestServer } from './test-fixtures.ts';
import type { LoadResults } from './types.ts';
import { writeReports } from './write-reports.ts';

const VOID_ELEMENTS = new Set(['meta', 'br', 'hr', 'img', 'input', 'link']);

/** A small HTML tokenizer: checks that every element is closed in order (SVG children may self-close). */
function checkBalanced(html: string): { elements: Map<string, number> } {
  const body = html.replace(/<!DOCTYPE html>/i, '').replace(/<style>[\s\S]*?<\/style>/g, '<style></style>');
  const stack: string[] = [];
  const elements = new Map<string, number>();
  const tag = /<(\/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^\s=>/]+(?:="[^"]*")?)*)\s*(\/?)>/g;
  let last = 0;
  for (let m = tag.exec(body); m; m = tag.exec(body)) {
    const between = body.slice(last, m.index);
    assert.ok(!/[<>]/.test(between), `stray '<' or '>' in text near: ${between.slice(0, 80)}`);
    last = tag.lastIndex;
    const [, closing, name, , selfClosing] = m;
    const lower = name!.toLowerCase();
    if (closing) {
      const open = stack.pop();
      assert.equal(open, lower, `</${lower}> closes <${open}>`);
    } else {
      elements.set(lower, (elements.get(lower) ?? 0) + 1);
      if (!selfClosing && !VOID_ELEMENTS.has(lower)) stack.push(lower);
    }
  }
  assert.ok(!/[<>]/.test(body.slice(last)), 'stray markup after the last tag');
  assert.deepEqual(stack, [], 'every element is closed');
  return { elements };
}

let corpus: TestCorpus;
let server: TestServer;
let results: LoadResults;
let dir: string;

before(async () => {
  corpus = await makeCorpus();
  dir = await mkdtemp(path.join(os.tmpdir(), 'kstyles-report-test-'));
  // A "monolith": the poison request takes it down for 400 ms (connections reset meanwhile).
  let downUntil = 0;
  server = await startServer((req, res, body) => {
    if (req.url === '/files/chaos/poison.bin') downUntil = performance.now() + 400;
    if (performance.now() < downUntil) {
      req.socket.destroy();
      return;
    }
    serveFile(res, body);
  }, corpus.bodies);
  results = await runLoad({
    targets: [{ name: 'monolith', url: server.url }],
    rate: 100,
    durationMs: 3000,
    corpusDir: corpus.dir,
    faults: [{ atMs: 1500, target: 'monolith', kind: 'poison' }],
    facts: { unikernel: { imageBytes: 90_000_000, fileCount: 12, hasShell: false, bootMs: 120 } },
  });
});

after(async () => {
  await server.close();
  await corpus.cleanup();
  await rm(dir, { recursive: true, force: true });
});

describe('reports', () => {
  test('a poison fault is stamped on the timeline with client-side resilience', () => {
    const [fault] = results.faults;
    assert.ok(fault);
    assert.equal(fault.ok, true, fault.message);
    assert.equal(fault.driver, 'poison');
    assert.match(fault.message, /poison request \/files\/chaos\/poison\.bin on monolith/);
    const [r] = fault.resilience;
    assert.equal(r?.target, 'monolith');
    assert.ok(r.failed > 10 && r.failed <= 100, `failed in window: ${r.failed}`);
    // Requests intended before the fault but still waiting when the server went down fail too; they
    // belong to no fault window (attribution is by intended send time).
    const resets = results.targets[0]!.outcomes.reset;
    assert.ok(r.failed <= resets && resets - r.failed < 60, `failed in window ${r.failed}, resets ${resets}`);
    assert.ok(
      r.firstSuccessAfterFailureMs !== null &&
        r.firstSuccessAfterFailureMs >= 300 &&
        r.firstSuccessAfterFailureMs < 3000,
    );
  });

  test('writes results.json, report.md and one self-contained, well-formed report.html', async () => {
    const files = await writeReports(results, dir);
    const html = await readFile(files.html, 'utf8');
    assert.ok(!/https?:\/\//i.test(html), 'no http:// or https:// anywhere in the HTML');
    assert.ok(!/\bsrc=|<link|@import|url\(/i.test(html), 'nothing loaded from elsewhere');
    const { elements } = checkBalanced(html);
    assert.ok((elements.get('svg') ?? 0) >= 4, 'charts are inline SVG');
    assert.equal(elements.get('script') ?? 0, 0);
    for (const text of [
      'Performance',
      'Stability',
      'Security',
      'Use case',
      'Very High (direct function calls)',
      'no shell',
      'poison',
    ]) {
      assert.ok(html.includes(text), `report mentions ${text}`);
    }
    const markdown = await readFile(files.markdown, 'utf8');
    assert.match(markdown, /\| monolith \| 127\.0\.0\.1:\d+ \| 300 \|/);
    // The test corpus has no files on disk: the report says every body was hashed.
    assert.match(
      markdown,
      /Bodies of monolith: sha256 of every body .*— 0 compared byte for byte, \d+ by sha256\./,
    );
    assert.match(
      markdown,
      /generator: 1 sender thread: .*; warm-up 2\.00s: 200 requests, 0 errors, not counted; CPU [\d.]+ µs per request/,
    );
    const json = JSON.parse(await readFile(files.json, 'utf8')) as LoadResults;
    assert.equal(json.targets[0]!.sent, 300);
    assert.equal(decodeHistogram(json.targets[0]!.histograms.latency).totalCount, 300);
  });

  test('mergeResults adds counts and histograms of side-by-side runs', () => {
    const merged = mergeResults([results, results]);
    const t = merged.targets[0]!;
    assert.equal(t.sent, 600);
    assert.equal(t.outcomes.ok, results.targets[0]!.outcomes.ok * 2);
    assert.equal(decodeHistogram(t.histograms.latency).totalCount, 600);
    assert.equal(t.latency.p99, results.targets[0]!.latency.p99);
    assert.equal(merged.rate, 200);
    assert.equal(merged.faults.length, 2);
    assert.equal(merged.warmup!.sent, results.warmup!.sent * 2);
    assert.equal(t.verification!.sha256, results.targets[0]!.verification!.sha256 * 2);
  });
});
