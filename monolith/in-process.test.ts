import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { answerClientErrors, createRequestListener } from '../services/contract/http-handler.ts';
import { createHttpMetrics } from '../services/contract/metrics.ts';
import { fileServiceContract, httpContract } from '../services/contract/testing/contract-suite.ts';
import { openInProcessFileService } from './in-process.ts';

fileServiceContract('in-process (fs core + driver core)', async (corpus) => {
  const service = await openInProcessFileService(corpus.dir);
  return { service, corpus, stop: () => service.close() };
});

// The shared node:http listener over the in-process service: the contract's reference implementation.
httpContract('shared request listener over the in-process service', 'reference', async (corpus) => {
  const service = await openInProcessFileService(corpus.dir);
  const server = createServer(
    createRequestListener({
      style: 'reference',
      service,
      metrics: createHttpMetrics('reference', { defaultMetrics: false }),
    }),
  );
  answerClientErrors(server, 'reference');
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    corpus,
    stop: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await service.close();
    },
  };
});
