import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Manifest } from '../services/corpus/corpus.ts';
import { byteVerifier } from './body-verifier.ts';
import { runLoad } from './run-load.ts';
import {
  makeCorpus,
  serveFile,
  serveFlipped,
  startServer,
  type TestCorpus,
  type TestServer,
} from './test-fixtures.ts';
import type { TargetResult } from './types.ts';

/** The corrupted file: large enough that its body arrives in several chunks, flipped past the first. */
const CORRUPT_URL = '/files/medium/page.bin';
const CORRUPT_AT = 70_000;

let corpus: TestCorpus;
let manifest: Manifest;
let server: TestServer;
let corrupted = 0;
let okServed = 0;

before(async () => {
  corpus = await makeCorpus();
  manifest = JSON.parse(await readFile(path.join(corpus.dir, 'MANIFEST.json'), 'utf8')) as Manifest;
  // The corpus files themselves, so byte compare has something local to compare with.
  for (const f of manifest.files) {
    const body = corpus.bodies.get(`/files/${f.path.split('/').map(encodeURIComponent).join('/')}`)!;
    await mkdir(path.dirname(path.join(corpus.dir, f.path)), { recursive: true });
    await writeFile(path.join(corpus.dir, f.path), body);
  }
  server = await startServer((req, res, body) => {
    if (req.url === CORRUPT_URL && body) {
      corrupted++;
      serveFlipped(res, body, CORRUPT_AT, 0x01);
      return;
    }
    if (body) okServed++;
    serveFile(res, body);
  }, corpus.bodies);
});
after(async () => {
  await server.close();
  await corpus.cleanup();
});

async function loadWith(
  verify: 'bytes' | 'sha256' | undefined,
  corpusDir = corpus.dir,
  workers = 1,
): Promise<TargetResult> {
  corrupted = 0;
  okServed = 0;
  const results = await runLoad({
    targets: [{ name: 'flipper', url: server.url }],
    rate: 200,
    durationMs: 1000,
    corpusDir,
    mix: 'all',
    // The battery's probes and the warm-up would reach the flipping server too and be counted as corrupted bodies.
    hostileBattery: false,
    security: false,
    warmupMs: 0,
    workers,
    ...(verify ? { verify } : {}),
  });
  return results.targets[0]!;
}

describe('body verification', () => {
  for (const [verify, workers] of [
    ['bytes', 1],
    ['sha256', 1],
    ['bytes', 3],
    ['sha256', 3],
  ] as const) {
    test(`${verify}, ${workers} sender thread${workers > 1 ? 's' : ''}: one flipped bit of one file is data loss; every clean body passes`, async () => {
      const t = await loadWith(verify, corpus.dir, workers);
      assert.equal(t.sent, 200);
      assert.ok(corrupted > 0, 'the mix requested the corrupted file');
      assert.equal(t.outcomes.data_loss, corrupted);
      assert.equal(t.outcomes.ok, okServed);
      assert.equal(t.outcomes.ok + t.outcomes.data_loss, 200);
      // Every 200 body was checked, each by the method asked for.
      assert.equal(t.verification?.[verify], 200);
      assert.equal(t.verification?.[verify === 'bytes' ? 'sha256' : 'bytes'], 0);
      const loss = t.errorSamples.find((s) => s.outcome === 'data_loss')!;
      assert.match(loss.message, verify === 'bytes' ? new RegExp(`at byte ${CORRUPT_AT}`) : /sha256/);
    });
  }

  test('by default, byte compare is used when the corpus files are here', async () => {
    const t = await loadWith(undefined);
    assert.match(t.verification!.method, /byte compare with the 11 corpus files/);
    assert.equal(t.verification!.bytes, 200);
    assert.equal(t.outcomes.data_loss, corrupted);
  });

  test("a local file that is not the manifest's is hashed instead of trusted", async () => {
    const stale = path.join(corpus.dir, 'small', 'file-0.bin');
    const original = await readFile(stale);
    const changed = Buffer.from(original);
    changed[0] = changed[0]! ^ 0xff;
    await writeFile(stale, changed);
    try {
      const verifier = await byteVerifier(corpus.dir, manifest.files);
      assert.match(verifier.describe, /10 of 11 corpus files/);
      const file = manifest.files.find((f) => f.path === 'small/file-0.bin')!;
      const check = verifier.begin({ ...file, urlPath: '' });
      assert.equal(check.mode, 'sha256');
      check.update(original);
      assert.equal(check.finish(), null, 'the served bytes match the manifest, so they pass');
    } finally {
      await writeFile(stale, original);
    }
  });

  test('without corpus files on this machine, every body is checked by sha256', async () => {
    const bare = await makeCorpus();
    try {
      const t = await loadWith(undefined, bare.dir);
      assert.match(t.verification!.method, /sha256/);
      assert.equal(t.verification!.sha256, 200);
      assert.equal(t.verification!.bytes, 0);
      assert.equal(t.outcomes.data_loss, corrupted);
    } finally {
      await bare.cleanup();
    }
  });

  test('byte compare finds a flip in any chunk and a body longer than the file', async () => {
    const verifier = await byteVerifier(corpus.dir, manifest.files);
    const file = manifest.files.find((f) => f.path === 'medium/page.bin')!;
    const body = corpus.bodies.get(CORRUPT_URL)!;
    const clean = verifier.begin({ ...file, urlPath: CORRUPT_URL });
    for (let i = 0; i < body.length; i += 4096) clean.update(body.subarray(i, i + 4096));
    assert.equal(clean.finish(), null);
    const flipped = Buffer.from(body);
    flipped[body.length - 1] = flipped[body.length - 1]! ^ 0x80;
    const last = verifier.begin({ ...file, urlPath: CORRUPT_URL });
    last.update(flipped.subarray(0, 1000));
    last.update(flipped.subarray(1000));
    assert.match(last.finish()!, new RegExp(`at byte ${body.length - 1}`));
    const longer = verifier.begin({ ...file, urlPath: CORRUPT_URL });
    longer.update(body);
    longer.update(Buffer.from('x'));
    assert.match(longer.finish()!, /wrong length/);
  });
});
