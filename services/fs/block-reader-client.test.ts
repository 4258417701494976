/**
 * The file server's driver retries and poison accounting, with the servers in this process: a
 * "crash" is a driver whose NATS connection closes in the middle of a read (what a dying process
 * looks like from the bus), and a little restarter brings a new one up after a pause. The process-level
 * version (real SIGKILL, real supervisor) is test/microkernel-faults.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { NatsConnection } from '@nats-io/nats-core';
import { Registry } from 'prom-client';
import { ErrorCode, InternalError, ServiceError } from '../contract/errors.ts';
import { testCorpus } from '../contract/testing/test-corpus.ts';
import { encodeFilePath } from '../corpus/corpus.ts';
import { DriverChaos } from '../driver/chaos.ts';
import { startDriverServer } from '../driver/nats-server.ts';
import { StorageDriver } from '../driver/storage-driver.ts';
import { NatsFileService } from '../gateway/file-service-client.ts';
import { connectNats } from '../ipc/connect.ts';
import { TRANSFER_MODES } from '../ipc/headers.ts';
import { hostService } from '../ipc/service-host.ts';
import { SERVICE_NAMES, SUBJECTS } from '../ipc/subjects.ts';
import { followSupervisedChild } from '../ipc/supervisor-news.ts';
import { startNatsServer, type TestNatsServer } from '../supervisor/testing/nats-server.ts';
import { NatsBlockReader } from './block-reader-client.ts';
import { FileSystem } from './file-system.ts';
import { fileServerTransfer, startFileServer } from './nats-server.ts';

// Every read below is a chunk read (statOnly: nothing rides on the stat), so both transfers are exercised.
for (const transfer of TRANSFER_MODES)
  describe(`NatsBlockReader: retries and poison requests (${transfer} transfers)`, () => {
    let nats: TestNatsServer;
    let service: NatsFileService;
    let starts = 0;
    let crashes = 0;
    let stopped = false;
    const connections: NatsConnection[] = [];
    const connectTest = async (name: string) => {
      const nc = await connectNats({ servers: nats.url, name, firstConnectTimeoutMs: 5000 });
      connections.push(nc);
      return nc;
    };

    /** A driver whose poison read closes its connection (its "death"); restarted 300 ms later. */
    async function startCrashingDriver(): Promise<void> {
      const nc = await connectTest(`driver-${starts}`);
      if (stopped) {
        await nc.close();
        return;
      }
      const chaos = new DriverChaos({ enabled: true }, Math.random, (reason) => {
        void nc.close();
        throw new InternalError(reason);
      });
      await startDriverServer(nc, new StorageDriver({ chaos }));
      starts++;
      void nc.closed().then(() => {
        if (stopped) return;
        crashes++;
        setTimeout(() => void startCrashingDriver(), 300);
      });
    }

    before(async () => {
      nats = await startNatsServer();
      const corpus = await testCorpus();
      await startCrashingDriver();
      const fsNc = await connectTest('fs');
      const reader = new NatsBlockReader(fsNc);
      await startFileServer(fsNc, await FileSystem.mount(corpus.dir, reader), {
        transfer: fileServerTransfer(transfer, reader),
      });
      service = new NatsFileService(await connectTest('gateway'));
    });
    after(async () => {
      stopped = true;
      // A restart may be half-way through its connect: let it see `stopped` and close.
      await new Promise((resolve) => setTimeout(resolve, 500));
      await Promise.all(connections.map((nc) => nc.close().catch(() => {})));
      await nats?.stop();
    });

    async function read(path: string): Promise<Buffer> {
      const deadline = Date.now() + 8000;
      const file = await service.open(encodeFilePath(path), { deadline, statOnly: true });
      const parts: Uint8Array[] = [];
      for await (const chunk of file.read({ start: 0, end: file.stat.size - 1 }, { deadline }))
        parts.push(chunk);
      return Buffer.concat(parts);
    }

    it('answers a poison read with INTERNAL after two driver crashes, while other reads succeed', async () => {
      const innocent = async () => {
        const results: number[] = [];
        for (let i = 0; i < 20; i++) {
          results.push((await read('bench/4k.bin')).length);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        return results;
      };
      const others = Promise.all([innocent(), innocent(), innocent()]);
      const started = Date.now();
      await assert.rejects(read('chaos/poison.bin'), (err: unknown) => {
        assert.ok(err instanceof ServiceError, `a ServiceError, not ${String(err)}`);
        assert.equal(err.code, ErrorCode.INTERNAL, err.message);
        assert.match(err.message, /poison request.*2 storage driver crashes/);
        return true;
      });
      const tookMs = Date.now() - started;
      assert.ok(
        tookMs < 5000,
        `the crash is noticed while the read is in flight, not at the deadline (took ${tookMs} ms)`,
      );
      // Counted in crashes, not starts: on a busy machine the third driver may be up (300 ms after
      // the second crash) before the rejection reaches this test.
      assert.equal(crashes, 2, 'two drivers had crashed when the poison read was given up');
      for (const lengths of await others) assert.deepEqual(lengths, Array(20).fill(4096));
      assert.equal((await read('bench/4k.bin')).length, 4096, 'the third driver serves');
      assert.equal(starts, 3, 'and it is still the third: the poison read was not retried on it');
      assert.equal(crashes, 2, 'no third crash');
    });
  });

/** A fresh nats-server for `body`, whose connections (made with `connect`) all close after it. */
async function withNats(body: (connect: (name: string) => Promise<NatsConnection>) => Promise<void>) {
  const nats = await startNatsServer();
  const connections: NatsConnection[] = [];
  try {
    await body(async (name) => {
      const nc = await connectNats({ servers: nats.url, name, firstConnectTimeoutMs: 5000 });
      connections.push(nc);
      return nc;
    });
  } finally {
    await Promise.all(connections.map((nc) => nc.close().catch(() => {})));
    await nats.stop();
  }
}

/** A driver that takes every read and never answers: it dies holding them when its connection closes. */
async function startDoomedDriver(nc: NatsConnection): Promise<void> {
  await hostService(nc, {
    name: SERVICE_NAMES.driver,
    description: 'a driver that dies holding the read',
    endpoints: [{ name: 'read', subject: SUBJECTS.drvRead, handle: () => new Promise(() => {}) }],
  });
}

describe('NatsBlockReader: the supervisor says a driver exited or is back', () => {
  it('a read held by a driver that died is reissued on the new driver when the supervisor says so', () =>
    withNats(async (connect) => {
      const corpus = await testCorpus();
      const fsNc = await connect('fs');
      // Without the news, the read would wait out this backoff before it looked for a driver again.
      const reader = new NatsBlockReader(fsNc, {
        attemptTimeoutMs: 20_000,
        backoff: { initialMs: 10_000, maxMs: 10_000 },
      });
      const news = followSupervisedChild(fsNc, 'driver', () => reader.nudge());
      const { ref } = await (await FileSystem.mount(corpus.dir, reader)).resolve('bench/4k.bin');
      // A driver that takes the read and never answers, then dies with it.
      const doomedNc = await connect('driver-doomed');
      await startDoomedDriver(doomedNc);
      const started = Date.now();
      const reading = reader.read(ref, 0, 4096, { deadline: started + 30_000 });
      await new Promise((resolve) => setTimeout(resolve, 300));
      await doomedNc.close();
      await new Promise((resolve) => setTimeout(resolve, 600));
      const registry = new Registry();
      const driver = new StorageDriver();
      await startDriverServer(await connect('driver-new'), driver, { registry });
      const supervisorNc = await connect('supervisor');
      // Timed from the news (the connects and the new driver before it take what a loaded machine gives them).
      const newsAt = Date.now();
      supervisorNc.publish('kstyles.sup.events.test', JSON.stringify({ service: 'driver', type: 'ready' }));
      const bytes = await reading;
      assert.ok(
        Date.now() - newsAt < 5000,
        'reissued on the news, not after the backoff (10 s) or the attempt timeout (20 s)',
      );
      assert.equal(bytes.byteLength, 4096);
      const text = await registry.metrics();
      const served = /kstyles_ipc_handler_duration_seconds_count\{[^}]*outcome="ok"[^}]*\} (\d+)/.exec(text);
      assert.equal(served?.[1], '1', 'the new driver served the read');
      news.unsubscribe();
      await driver.close();
    }));

  it('a crash of the first driver the file server meets counts once: a slow retry on the new one is not poison', () =>
    withNats(async (connect) => {
      const corpus = await testCorpus();
      const fsNc = await connect('fs');
      const reader = new NatsBlockReader(fsNc, {
        attemptTimeoutMs: 20_000,
        backoff: { initialMs: 50, maxMs: 100 },
      });
      const news = followSupervisedChild(fsNc, 'driver', () => reader.nudge());
      const { ref } = await (await FileSystem.mount(corpus.dir, reader)).resolve('bench/4k.bin');
      // The file server has never had a reply: the attempt knows no instance, and the watch's PINGs
      // find the doomed one, which takes the read and dies with it.
      const doomedNc = await connect('driver-doomed');
      await startDoomedDriver(doomedNc);
      const reading = reader.read(ref, 0, 4096, { deadline: Date.now() + 30_000 });
      await new Promise((resolve) => setTimeout(resolve, 600));
      await doomedNc.close();
      await new Promise((resolve) => setTimeout(resolve, 400));
      // The new driver takes a second per read; while it holds the retry, the supervisor says it is ready.
      const slow = new StorageDriver({ chaos: new DriverChaos({ enabled: true, latencyMs: 1000 }) });
      await startDriverServer(await connect('driver-new'), slow);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const supervisorNc = await connect('supervisor');
      supervisorNc.publish('kstyles.sup.events.test', JSON.stringify({ service: 'driver', type: 'ready' }));
      assert.equal((await reading).byteLength, 4096, 'served by the new driver, not refused as poison');
      news.unsubscribe();
      await slow.close();
    }));
});
