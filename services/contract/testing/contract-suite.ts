/**
 * The contract suites: one for any FileService implementation, one for any HTTP base URL that serves the
 * contract of docs/architecture.md, 'The HTTP contract'. Every style runs both against itself; they are the
 * definition of "the same service".
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { ManifestFile } from '../../corpus/corpus.ts';
import { encodeFilePath } from '../../corpus/corpus.ts';
import { ErrorCode, ServiceError } from '../errors.ts';
import type { FileService } from '../file-service.ts';
import { LEAK_MARKER, TRAVERSAL_ATTACKS } from './attacks.ts';
import { rawRequest } from './raw-http.ts';
import { type TestCorpus, testCorpus } from './test-corpus.ts';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function servable(corpus: TestCorpus): ManifestFile[] {
  return corpus.manifest.files.filter((file) => !file.poison);
}

function fileOfSize(corpus: TestCorpus, predicate: (size: number) => boolean): ManifestFile {
  const file = servable(corpus).find((candidate) => predicate(candidate.size));
  assert.ok(file, 'the test corpus lacks a file of the size this check needs');
  return file;
}

async function readAll(service: FileService, rawPath: string, range?: { start: number; end: number }) {
  const deadline = Date.now() + 10_000;
  const file = await service.open(rawPath, { deadline });
  const stat = file.stat;
  const chunks: Uint8Array[] = [];
  try {
    if (stat.size > 0) {
      for await (const chunk of file.read(range ?? { start: 0, end: stat.size - 1 }, { deadline })) {
        chunks.push(chunk);
      }
    }
  } finally {
    await file.close();
  }
  return { stat, bytes: Buffer.concat(chunks) };
}

async function expectCode(promise: Promise<unknown>, codes: readonly string[], what: string) {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ServiceError, `${what}: expected a ServiceError, got ${String(err)}`);
    assert.ok(
      codes.includes(err.code),
      `${what}: expected ${codes.join('|')}, got ${err.code} (${err.message})`,
    );
    return true;
  });
}

export type FileServiceUnderTest = { service: FileService; corpus: TestCorpus; stop(): Promise<void> };

/** Runs the FileService contract against the implementation `start` returns (over the test corpus). */
export function fileServiceContract(
  name: string,
  start: (corpus: TestCorpus) => Promise<FileServiceUnderTest>,
): void {
  describe(`FileService contract: ${name}`, () => {
    let sut: FileServiceUnderTest;
    before(async () => {
      sut = await start(await testCorpus());
    });
    after(() => sut?.stop());

    it('serves every manifest file with matching size and sha256', async () => {
      for (const file of servable(sut.corpus)) {
        const { stat, bytes } = await readAll(sut.service, encodeFilePath(file.path));
        assert.equal(stat.size, file.size, file.path);
        assert.equal(bytes.length, file.size, file.path);
        assert.equal(sha256(bytes), file.sha256, file.path);
        assert.match(stat.etag, /^"[^"]+"$/, 'strong ETag');
      }
    });

    it('streams large files in chunks no larger than 256 KiB', async () => {
      const large = fileOfSize(sut.corpus, (size) => size > 1024 * 1024);
      const deadline = Date.now() + 10_000;
      const file = await sut.service.open(encodeFilePath(large.path), { deadline });
      const hash = createHash('sha256');
      let chunks = 0;
      for await (const chunk of file.read({ start: 0, end: file.stat.size - 1 }, { deadline })) {
        assert.ok(chunk.byteLength <= 256 * 1024, `chunk of ${chunk.byteLength} bytes`);
        hash.update(chunk);
        chunks++;
      }
      assert.ok(chunks > 1);
      await file.close();
      assert.equal(hash.digest('hex'), large.sha256);
    });

    it('reads byte ranges', async () => {
      const file = fileOfSize(sut.corpus, (size) => size > 5000);
      const whole = (await readAll(sut.service, encodeFilePath(file.path))).bytes;
      const { bytes } = await readAll(sut.service, encodeFilePath(file.path), { start: 100, end: 4099 });
      assert.deepEqual(bytes, whole.subarray(100, 4100));
    });

    it('answers errors with stable codes', async () => {
      const deadline = Date.now() + 5000;
      await expectCode(
        sut.service.open('no/such/file.txt', { deadline }),
        [ErrorCode.NOT_FOUND],
        'missing file',
      );
      await expectCode(sut.service.open('docs', { deadline }), [ErrorCode.NOT_FOUND], 'directory');
      await expectCode(
        sut.service.open('links/escape', { deadline }),
        [ErrorCode.FORBIDDEN_PATH],
        'escaping symlink',
      );
      await expectCode(
        sut.service.open('links/loop-a', { deadline }),
        [ErrorCode.FORBIDDEN_PATH],
        'symlink loop',
      );
      await expectCode(
        sut.service.open('..%2fetc', { deadline }),
        [ErrorCode.INVALID_PATH],
        'encoded separator',
      );
      await expectCode(
        sut.service.open('../etc/passwd', { deadline }),
        [ErrorCode.FORBIDDEN_PATH],
        'dot-dot',
      );
      await expectCode(sut.service.open('x'.repeat(1100), { deadline }), [ErrorCode.TOO_LARGE], 'overlong');
    });

    it('refuses every traversal attack', async () => {
      for (const attack of TRAVERSAL_ATTACKS) {
        await expectCode(
          sut.service.open(attack, { deadline: Date.now() + 5000 }),
          [ErrorCode.INVALID_PATH, ErrorCode.FORBIDDEN_PATH, ErrorCode.NOT_FOUND, ErrorCode.TOO_LARGE],
          attack,
        );
      }
    });

    it('fails with TIMEOUT when the deadline has passed', async () => {
      await expectCode(
        sut.service.open(encodeFilePath('docs/hello world.txt'), { deadline: Date.now() - 1 }),
        [ErrorCode.TIMEOUT],
        'past deadline',
      );
    });

    it('reports readiness', async () => {
      const report = await sut.service.ready({ deadline: Date.now() + 2000 });
      assert.equal(report.ready, true, report.detail);
    });
  });
}

export type HttpServiceUnderTest = { baseUrl: string; corpus: TestCorpus; stop(): Promise<void> };

async function expectProblem(res: Response, status: number, code?: string) {
  assert.equal(res.status, status, `${res.url}: status`);
  assert.equal(res.headers.get('content-type'), 'application/problem+json');
  const problem = (await res.json()) as { status: number; code: string; detail: string; hint: string };
  assert.equal(problem.status, status);
  if (code) assert.equal(problem.code, code);
  assert.ok(
    problem.detail.length > 0 && problem.hint.length > 0,
    'a problem says what went wrong and what to do',
  );
  return problem;
}

/** Runs the HTTP contract against whatever `start` serves (a monolith, a gateway, a unikernel...). */
export function httpContract(
  name: string,
  style: string,
  start: (corpus: TestCorpus) => Promise<HttpServiceUnderTest>,
): void {
  describe(`HTTP contract: ${name}`, () => {
    let sut: HttpServiceUnderTest;
    const url = (path: string) => `${sut.baseUrl}/files/${encodeFilePath(path)}`;
    before(async () => {
      sut = await start(await testCorpus());
    });
    after(() => sut?.stop());

    it('GET serves every manifest file with matching sha256 and the contract headers', async () => {
      for (const file of servable(sut.corpus)) {
        const res = await fetch(url(file.path));
        assert.equal(res.status, 200, file.path);
        const body = Buffer.from(await res.arrayBuffer());
        assert.equal(body.length, file.size, file.path);
        assert.equal(sha256(body), file.sha256, file.path);
        assert.equal(res.headers.get('content-length'), String(file.size));
        assert.match(res.headers.get('etag') ?? '', /^"[^"]+"$/, 'strong ETag');
        assert.ok(res.headers.get('last-modified'));
        assert.ok(res.headers.get('content-type'));
        assert.equal(res.headers.get('accept-ranges'), 'bytes');
        assert.equal(res.headers.get('x-kernel-style'), style);
      }
    });

    it('HEAD answers the same headers without a body', async () => {
      const file = fileOfSize(sut.corpus, (size) => size > 1000);
      const res = await fetch(url(file.path), { method: 'HEAD' });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-length'), String(file.size));
      assert.equal((await res.arrayBuffer()).byteLength, 0);
    });

    it('serves single ranges with 206 and refuses unsatisfiable ones with 416', async () => {
      const file = fileOfSize(sut.corpus, (size) => size > 5000);
      const whole = Buffer.from(await (await fetch(url(file.path))).arrayBuffer());
      const cases: Array<[string, number, number]> = [
        ['bytes=0-99', 0, 99],
        ['bytes=100-', 100, file.size - 1],
        ['bytes=-500', file.size - 500, file.size - 1],
        [`bytes=10-${file.size + 1000}`, 10, file.size - 1],
      ];
      for (const [range, start, end] of cases) {
        const res = await fetch(url(file.path), { headers: { range } });
        assert.equal(res.status, 206, range);
        assert.equal(res.headers.get('content-range'), `bytes ${start}-${end}/${file.size}`, range);
        assert.deepEqual(Buffer.from(await res.arrayBuffer()), whole.subarray(start, end + 1), range);
      }
      const past = await fetch(url(file.path), { headers: { range: `bytes=${file.size}-` } });
      assert.equal(past.headers.get('content-range'), `bytes */${file.size}`);
      await expectProblem(past, 416, ErrorCode.RANGE_NOT_SATISFIABLE);
      const garbage = await fetch(url(file.path), { headers: { range: 'bytes=zz-top' } });
      assert.equal(garbage.status, 200, 'an invalid Range header is ignored');
      assert.equal(Buffer.from(await garbage.arrayBuffer()).length, file.size);
    });

    it('streams a file larger than NATS max_payload in one response', async () => {
      const large = fileOfSize(sut.corpus, (size) => size > 4 * 1024 * 1024);
      const res = await fetch(url(large.path), { headers: { range: 'bytes=1048000-' } });
      assert.equal(res.status, 206);
      const tail = Buffer.from(await res.arrayBuffer());
      assert.equal(tail.length, large.size - 1048000);
    });

    it('answers If-None-Match with 304 and no body', async () => {
      const file = fileOfSize(sut.corpus, (size) => size > 0);
      const first = await fetch(url(file.path));
      await first.arrayBuffer();
      const etag = first.headers.get('etag')!;
      const res = await fetch(url(file.path), { headers: { 'if-none-match': etag } });
      assert.equal(res.status, 304);
      assert.equal(res.headers.get('etag'), etag);
      assert.equal((await res.arrayBuffer()).byteLength, 0);
      const changed = await fetch(url(file.path), { headers: { 'if-none-match': '"something-else"' } });
      assert.equal(changed.status, 200);
      await changed.arrayBuffer();
    });

    it('answers errors as problem+json with stable codes', async () => {
      await expectProblem(await fetch(url('no/such/file.txt')), 404, ErrorCode.NOT_FOUND);
      await expectProblem(await fetch(url('links/escape')), 403, ErrorCode.FORBIDDEN_PATH);
      await expectProblem(await fetch(`${sut.baseUrl}/files/..%2fsecret`), 400, ErrorCode.INVALID_PATH);
      await expectProblem(await fetch(`${sut.baseUrl}/no-such-route`), 404, ErrorCode.NOT_FOUND);
      await expectProblem(
        await fetch(url('docs/hello world.txt'), { method: 'POST' }),
        405,
        ErrorCode.METHOD_NOT_ALLOWED,
      );
      await expectProblem(await fetch(`${sut.baseUrl}/files/${'x'.repeat(1100)}`), 414, ErrorCode.TOO_LARGE);
    });

    it('never serves a byte from outside the root, even to raw request lines', async () => {
      for (const attack of TRAVERSAL_ATTACKS) {
        for (const target of [`/files/${attack}`, `/files/docs/../${attack}`]) {
          const res = await rawRequest(sut.baseUrl, 'GET', target);
          assert.ok(res.status >= 400 && res.status < 500, `${target}: status ${res.status}`);
          assert.equal(res.headers['content-type'], 'application/problem+json', target);
          assert.ok(!res.body.toString('latin1').includes(LEAK_MARKER), `${target} leaked /etc/passwd`);
        }
      }
      const healthy = await fetch(`${sut.baseUrl}/healthz`);
      assert.equal(healthy.status, 200, 'still alive after the attack list');
    });

    it('serves /healthz, /readyz and /metrics with sub-millisecond buckets', async () => {
      assert.equal((await fetch(`${sut.baseUrl}/healthz`)).status, 200);
      assert.equal((await fetch(`${sut.baseUrl}/readyz`)).status, 200);
      const metrics = await fetch(`${sut.baseUrl}/metrics`);
      assert.equal(metrics.status, 200);
      const text = await metrics.text();
      assert.match(
        text,
        new RegExp(
          `kstyles_http_request_duration_seconds_bucket\\{le="0.00005",style="${style}",route="files",code="200"\\}`,
        ),
      );
      assert.doesNotMatch(text, /hello world/, 'no file paths in metric labels');
    });
  });
}
