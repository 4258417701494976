import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { openInProcessFileService } from '../../monolith/in-process.ts';
import { encodeFilePath } from '../corpus/corpus.ts';
import type { FileService } from './file-service.ts';
import { createRequestListener } from './http-handler.ts';
import { type TestCorpus, testCorpus } from './testing/test-corpus.ts';

/** The in-process service with every chunk delayed: a slow disk, so a stream outlives one deadline. */
function slowChunks(service: FileService, delayMs: number): FileService {
  return {
    open: async (path, options) => {
      const file = await service.open(path, options);
      return {
        stat: file.stat,
        async *read(range, readOptions) {
          for await (const chunk of file.read(range, readOptions)) {
            await new Promise((resolve) => setTimeout(resolve, delayMs));
            yield chunk;
          }
        },
        close: () => file.close(),
      };
    },
    ready: (options) => service.ready(options),
    close: () => service.close(),
  };
}

const DEADLINE_MS = 1000;

describe('serveFile deadlines while streaming', () => {
  let corpus: TestCorpus;
  let baseUrl: string;
  let close: () => Promise<void>;
  before(async () => {
    corpus = await testCorpus();
    const service = await openInProcessFileService(corpus.dir);
    // 17 chunks of 256 KiB at 100 ms each take ~1.7 s, past the 1 s deadline of each call, and each
    // chunk keeps 0.9 s of slack for a loaded machine.
    const server = createServer(
      createRequestListener({ style: 'test', service: slowChunks(service, 100), deadlineMs: DEADLINE_MS }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await service.close();
    };
  });
  after(() => close());

  it('gives each chunk its own deadline, so a long stream completes with every byte', async () => {
    const large = corpus.manifest.files.find((file) => file.size > 4 * 1024 * 1024)!;
    const started = Date.now();
    const res = await fetch(`${baseUrl}/files/${encodeFilePath(large.path)}`);
    assert.equal(res.status, 200);
    const body = Buffer.from(await res.arrayBuffer());
    assert.ok(Date.now() - started > DEADLINE_MS, 'the stream really outlived one deadline');
    assert.equal(body.length, large.size);
    assert.equal(createHash('sha256').update(body).digest('hex'), large.sha256);
  });
});
