/**
 * The gateway follows the supervisors' events as the file server does for its driver (MINIX 3's
 * reincarnation server telling VFS): a request held by a file server that died is reissued on the new
 * one when the supervisor says it is ready, not at the next step of the backoff that waits for it.
 * Servers in this process, connected through a real nats-server; a "death" is a closed connection.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NatsConnection } from '@nats-io/nats-core';
import { Registry } from 'prom-client';
import { testCorpus } from '../contract/testing/test-corpus.ts';
import { startDriverServer } from '../driver/nats-server.ts';
import { StorageDriver } from '../driver/storage-driver.ts';
import { NatsBlockReader } from '../fs/block-reader-client.ts';
import { FileSystem } from '../fs/file-system.ts';
import { startFileServer } from '../fs/nats-server.ts';
import { connectNats } from '../ipc/connect.ts';
import { hostService } from '../ipc/service-host.ts';
import { SERVICE_NAMES, SUBJECTS } from '../ipc/subjects.ts';
import { followSupervisedChild } from '../ipc/supervisor-news.ts';
import { CHILD_NAMES } from '../microkernel/composition.ts';
import { startNatsServer } from '../supervisor/testing/nats-server.ts';
import { NatsFileService } from './file-service-client.ts';

describe('NatsFileService: the supervisor says a file server exited or is back', () => {
  it('a stat held by a file server that died is reissued on the new one when the supervisor says so', async () => {
    const nats = await startNatsServer();
    const connections: NatsConnection[] = [];
    const connect = async (name: string) => {
      const nc = await connectNats({ servers: nats.url, name, firstConnectTimeoutMs: 5000 });
      connections.push(nc);
      return nc;
    };
    try {
      const corpus = await testCorpus();
      const gatewayNc = await connect('gateway');
      // Without the news, the request would wait out this backoff before it looked for a file server again.
      const service = new NatsFileService(gatewayNc, { backoff: { initialMs: 10_000, maxMs: 10_000 } });
      const news = followSupervisedChild(gatewayNc, CHILD_NAMES.fs, () => service.nudge());
      // A file server that takes the stat and never answers, then dies with it.
      const doomedNc = await connect('fs-doomed');
      await hostService(doomedNc, {
        name: SERVICE_NAMES.fs,
        description: 'a file server that dies holding the stat',
        endpoints: [{ name: 'stat', subject: SUBJECTS.fsStat, handle: () => new Promise(() => {}) }],
      });
      const started = Date.now();
      const opening = service.open('bench/4k.bin', { deadline: started + 30_000 });
      await new Promise((resolve) => setTimeout(resolve, 300));
      await doomedNc.close();
      // Long enough for the crash watch to see it gone and the retry to meet no responders.
      await new Promise((resolve) => setTimeout(resolve, 800));
      const driverNc = await connect('driver');
      await startDriverServer(driverNc, new StorageDriver());
      const fsNc = await connect('fs-new');
      const registry = new Registry();
      await startFileServer(fsNc, await FileSystem.mount(corpus.dir, new NatsBlockReader(fsNc)), {
        registry,
      });
      const supervisorNc = await connect('supervisor');
      // Timed from the news (the connects and the new servers before it take what a loaded machine gives them).
      const newsAt = Date.now();
      supervisorNc.publish('kstyles.sup.events.test', JSON.stringify({ service: 'fs', type: 'ready' }));
      const file = await opening;
      assert.ok(Date.now() - newsAt < 5000, 'reissued on the news, not after the 10 s backoff');
      assert.equal(file.stat.size, 4096);
      const served =
        /kstyles_ipc_handler_duration_seconds_count\{[^}]*op="stat"[^}]*outcome="ok"[^}]*\} (\d+)/.exec(
          await registry.metrics(),
        );
      assert.equal(served?.[1], '1', 'the new file server served the stat');
      await file.close();
      news.unsubscribe();
    } finally {
      await Promise.all(connections.map((nc) => nc.close().catch(() => {})));
      await nats.stop();
    }
  });
});
