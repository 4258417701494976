import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fileServiceContract, httpContract } from '../contract/testing/contract-suite.ts';
import { testCorpus } from '../contract/testing/test-corpus.ts';
import { startDriverServer } from '../driver/nats-server.ts';
import { StorageDriver } from '../driver/storage-driver.ts';
import { startInProcessKernel } from '../microkernel/testing/in-process-kernel.ts';
import { NatsFileService } from '../nats/file-service-client.ts';

// The servers run in this process for speed, but talk only through a real nats-server with the
// generated per-user permissions; the process-level behaviour is in test/microkernel-*.test.ts.
httpContract('microkernel gateway over NATS (fs and driver servers)', 'microkernel', async (corpus) => {
  const kernel = await startInProcessKernel(corpus.dir);
  return { baseUrl: kernel.gateway.url, corpus, stop: () => kernel.stop() };
});

fileServiceContract(
  'NATS-backed FileService (gateway user → kstyles-fs → kstyles-driver)',
  async (corpus) => {
    const kernel = await startInProcessKernel(corpus.dir);
    const service = new NatsFileService(await kernel.connectAs('gateway'));
    return { service, corpus, stop: () => kernel.stop() };
  },
);

describe('microkernel gateway metrics and bus permissions', () => {
  let kernel: Awaited<ReturnType<typeof startInProcessKernel>>;
  before(async () => {
    kernel = await startInProcessKernel((await testCorpus()).dir);
  });
  after(() => kernel?.stop());

  it('records every hop in kstyles_ipc_request_duration_seconds', async () => {
    const res = await fetch(`${kernel.gateway.url}/files/docs/hello%20world.txt`);
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    const text = await (await fetch(`${kernel.gateway.url}/metrics`)).text();
    assert.match(
      text,
      /kstyles_ipc_request_duration_seconds_count\{from="gateway",to="fs",op="stat",outcome="ok"\} [1-9]/,
    );
    assert.match(
      text,
      /kstyles_ipc_request_duration_seconds_count\{from="gateway",to="fs",op="read",outcome="ok"\} [1-9]/,
    );
  });

  it("refuses the gateway's credentials on a driver subject (Permissions Violation)", async () => {
    const nc = await kernel.connectAs('gateway');
    await assert.rejects(nc.request('kstyles.drv.read', '', { timeout: 1000 }), /Permissions Violation/);
    const fsNc = await kernel.connectAs('fs');
    const ping = await fsNc.request('$SRV.PING.kstyles-driver', '', { timeout: 1000 });
    assert.equal(
      ping.json<{ name: string }>().name,
      'kstyles-driver',
      'the file server may reach the driver',
    );
  });

  it('shows both servers to `nats micro info`: endpoints in queue groups named after the service', async () => {
    const nc = await kernel.connectAs('supervisor');
    for (const [service, subjects] of [
      ['kstyles-fs', ['kstyles.fs.stat', 'kstyles.fs.read']],
      ['kstyles-driver', ['kstyles.drv.read']],
    ] as const) {
      const info = (await nc.request(`$SRV.INFO.${service}`, '', { timeout: 1000 })).json<{
        name: string;
        endpoints: Array<{ subject: string; queue_group: string }>;
      }>();
      assert.equal(info.name, service);
      assert.deepEqual(info.endpoints.map((e) => e.subject).sort(), [...subjects].sort());
      for (const endpoint of info.endpoints) assert.equal(endpoint.queue_group, service);
    }
  });
});

describe('microkernel replicas', () => {
  it('a second driver joins the queue group and shares the reads with no change elsewhere', async () => {
    const corpus = await testCorpus();
    const kernel = await startInProcessKernel(corpus.dir);
    const driver = new StorageDriver();
    try {
      const replica = await startDriverServer(await kernel.connectAs('driver'), driver);
      for (let i = 0; i < 40; i++) {
        const res = await fetch(`${kernel.gateway.url}/files/bench/4k.bin`);
        assert.equal(res.status, 200);
        await res.arrayBuffer();
      }
      const nc = await kernel.connectAs('supervisor');
      const stats: Array<{ id: string; endpoints: Array<{ num_requests: number }> }> = [];
      for await (const msg of await nc.requestMany('$SRV.STATS.kstyles-driver', '', {
        strategy: 'timer',
        maxWait: 500,
      })) {
        stats.push(msg.json());
      }
      assert.equal(stats.length, 2, 'two driver instances answer');
      assert.ok(stats.some((s) => s.id === replica.id));
      for (const s of stats) assert.ok(s.endpoints[0]!.num_requests > 0, `instance ${s.id} served reads`);
      await replica.stop();
    } finally {
      await driver.close();
      await kernel.stop();
    }
  });
});

describe('microkernel gateway when a server is away', () => {
  it('answers 504 when the driver is gone for the whole deadline, 503 with Retry-After when the file server is', async () => {
    const kernel = await startInProcessKernel((await testCorpus()).dir, { deadlineMs: 400 });
    try {
      await kernel.servers.driver.stop();
      const timedOut = await fetch(`${kernel.gateway.url}/files/docs/hello%20world.txt`);
      assert.equal(timedOut.status, 504);
      assert.equal(((await timedOut.json()) as { code: string }).code, 'TIMEOUT');
      assert.equal((await fetch(`${kernel.gateway.url}/readyz`)).status, 503, 'not ready without a driver');

      await kernel.servers.fs.stop();
      const unavailable = await fetch(`${kernel.gateway.url}/files/docs/hello%20world.txt`);
      assert.equal(unavailable.status, 503);
      assert.equal(unavailable.headers.get('retry-after'), '1');
      assert.equal(((await unavailable.json()) as { code: string }).code, 'UNAVAILABLE');
    } finally {
      await kernel.stop();
    }
  });
});
