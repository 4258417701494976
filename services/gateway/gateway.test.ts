import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileServiceContract, httpContract } from '../contract/testing/contract-suite.ts';
import { testCorpus } from '../contract/testing/test-corpus.ts';
import { startDriverServer } from '../driver/nats-server.ts';
import { StorageDriver } from '../driver/storage-driver.ts';
import { getStat, HEADERS, putSpan, putStat, TRANSFER_MODES, withDeadline } from '../ipc/headers.ts';
import { SHM_MIN_BYTES, type ShmSegments } from '../ipc/shm.ts';
import { SUBJECTS } from '../ipc/subjects.ts';
import { startInProcessKernel } from '../microkernel/testing/in-process-kernel.ts';
import { NatsFileService } from './file-service-client.ts';

/** The gateway's view of the kernel's segments, when it runs `shm` transfers. */
const shmOf = (kernel: { shm: ShmSegments | undefined }) => (kernel.shm ? { shm: kernel.shm } : {});

// The servers run in this process for speed, but talk only through a real nats-server with the
// generated per-user permissions; the process-level behaviour is in test/microkernel-*.test.ts.
for (const transfer of TRANSFER_MODES) {
  httpContract(
    `microkernel gateway over NATS (fs and driver servers, ${transfer} transfers)`,
    'microkernel',
    async (corpus) => {
      const kernel = await startInProcessKernel(corpus.dir, { transfer });
      return { baseUrl: kernel.gateway.url, corpus, stop: () => kernel.stop() };
    },
  );

  fileServiceContract(
    `NATS-backed FileService (gateway user → kstyles-fs → kstyles-driver, ${transfer} transfers)`,
    async (corpus) => {
      const kernel = await startInProcessKernel(corpus.dir, { transfer });
      const service = new NatsFileService(await kernel.connectAs('gateway'), shmOf(kernel));
      return { service, corpus, stop: () => kernel.stop() };
    },
  );
}

describe('microkernel gateway metrics and bus permissions', () => {
  let kernel: Awaited<ReturnType<typeof startInProcessKernel>> & { dataDir: string };
  before(async () => {
    const { dir } = await testCorpus();
    kernel = Object.assign(await startInProcessKernel(dir), { dataDir: dir });
  });
  after(() => kernel?.stop());

  /** How many gateway→fs requests of `op` the gateway has recorded (all outcomes). */
  async function gatewayRequests(op: 'stat' | 'read'): Promise<number> {
    const text = await (await fetch(`${kernel.gateway.url}/metrics`)).text();
    const pattern = new RegExp(
      `^kstyles_ipc_request_duration_seconds_count\\{from="gateway",to="fs",op="${op}",outcome="[^"]+"\\} (\\d+)$`,
      'gm',
    );
    return [...text.matchAll(pattern)].reduce((sum, match) => sum + Number(match[1]), 0);
  }

  /** Runs `request` and returns what it answered plus the gateway→fs requests it cost. */
  async function costOf(request: () => Promise<Response>) {
    const [stats, reads] = [await gatewayRequests('stat'), await gatewayRequests('read')];
    const res = await request();
    const body = Buffer.from(await res.arrayBuffer());
    return {
      res,
      body,
      stats: (await gatewayRequests('stat')) - stats,
      reads: (await gatewayRequests('read')) - reads,
    };
  }

  it('serves a small file with exactly one gateway→fs request (the stat carries the bytes)', async () => {
    const expected = await readFile(path.join(kernel.dataDir, 'docs/hello world.txt'));
    const get = await costOf(() => fetch(`${kernel.gateway.url}/files/docs/hello%20world.txt`));
    assert.equal(get.res.status, 200);
    assert.deepEqual(get.body, expected);
    assert.deepEqual([get.stats, get.reads], [1, 0], 'one stat, no read');
    const text = await (await fetch(`${kernel.gateway.url}/metrics`)).text();
    assert.match(
      text,
      /kstyles_ipc_request_duration_seconds_count\{from="gateway",to="fs",op="stat",outcome="ok"\} [1-9]/,
    );
    const head = await costOf(() =>
      fetch(`${kernel.gateway.url}/files/docs/hello%20world.txt`, { method: 'HEAD' }),
    );
    assert.equal(head.res.status, 200);
    assert.equal(head.res.headers.get('content-length'), String(expected.length));
    assert.deepEqual([head.stats, head.reads], [1, 0]);
    // A conditional GET asks for no prefetch: a 304 costs one stat, a miss one stat and one read.
    const etag = get.res.headers.get('etag')!;
    const url = `${kernel.gateway.url}/files/docs/hello%20world.txt`;
    const hit = await costOf(() => fetch(url, { headers: { 'if-none-match': etag } }));
    assert.equal(hit.res.status, 304);
    assert.deepEqual([hit.stats, hit.reads], [1, 0]);
    const miss = await costOf(() => fetch(url, { headers: { 'if-none-match': '"stale"' } }));
    assert.equal(miss.res.status, 200);
    assert.deepEqual(miss.body, expected);
    assert.deepEqual([miss.stats, miss.reads], [1, 1]);
  });

  it('reads ranges outside (or reaching past) the prefetched bytes with chunk requests', async () => {
    const whole = await readFile(path.join(kernel.dataDir, 'bench/1m.bin'));
    const url = `${kernel.gateway.url}/files/bench/1m.bin`;
    const cases: Array<[string, number, number, number]> = [
      // range, start, end, read requests expected
      ['bytes=0-99', 0, 99, 0],
      ['bytes=100000-100999', 100_000, 100_999, 1],
      ['bytes=65000-70000', 65_000, 70_000, 1],
    ];
    for (const [range, start, end, reads] of cases) {
      const got = await costOf(() => fetch(url, { headers: { range } }));
      assert.equal(got.res.status, 206, range);
      assert.deepEqual(got.body, whole.subarray(start, end + 1), range);
      assert.deepEqual([got.stats, got.reads], [1, reads], `${range}: requests`);
    }
    const full = await costOf(() => fetch(url));
    assert.equal(full.res.status, 200);
    assert.deepEqual(full.body, whole);
    assert.deepEqual(
      [full.stats, full.reads],
      [1, Math.ceil((whole.length - 64 * 1024) / (256 * 1024))],
      'the first 64 KiB came with the stat; the rest in 256 KiB chunks',
    );
    const text = await (await fetch(`${kernel.gateway.url}/metrics`)).text();
    assert.match(
      text,
      /kstyles_ipc_request_duration_seconds_count\{from="gateway",to="fs",op="read",outcome="ok"\} [1-9]/,
    );
  });

  it("refuses the gateway's credentials on every driver subject (Permissions Violation)", async () => {
    const nc = await kernel.connectAs('gateway');
    const driverSubjects = [
      ...Object.values(SUBJECTS).filter((s) => s.startsWith('kstyles.drv.')),
      'kstyles.drv.write',
      '$SRV.INFO.kstyles-driver',
      '$SRV.STATS.kstyles-driver',
    ];
    assert.ok(driverSubjects.includes('kstyles.drv.read'));
    for (const subject of driverSubjects) {
      await assert.rejects(nc.request(subject, '', { timeout: 1000 }), /Permissions Violation/, subject);
    }
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
      ['kstyles-fs', ['kstyles.fs.stat', 'kstyles.fs.read', 'kstyles.fs.close']],
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

describe('microkernel open-file handles', () => {
  it('reads a large file through its handle, not its path, and a lost handle costs only a reopen', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'kstyles-handles-'));
    const bytes = randomBytes(3 * 256 * 1024 + 1000);
    await writeFile(path.join(dir, 'target.bin'), bytes);
    await symlink('target.bin', path.join(dir, 'alias.bin'));
    const kernel = await startInProcessKernel(dir);
    try {
      const service = new NatsFileService(await kernel.connectAs('gateway'));
      const deadline = Date.now() + 10_000;
      const file = await service.open('alias.bin', { deadline });
      // Resolving the name again would now answer NOT_FOUND: every chunk below goes by handle.
      await rm(path.join(dir, 'alias.bin'));
      const parts: Uint8Array[] = [];
      for await (const chunk of file.read({ start: 0, end: bytes.length - 1 }, { deadline }))
        parts.push(chunk);
      assert.ok(Buffer.concat(parts).equals(bytes));
      await file.close();
      // A handle the file server does not know (issued by one that restarted) costs a reopen by path and ETag.
      const nc = await kernel.connectAs('gateway');
      const headers = putSpan(1000, 4096, putStat(file.stat, withDeadline(deadline)));
      headers.set(HEADERS.handle, 'issued-by-a-file-server-that-restarted.1');
      const stale = Object.assign({}, file.stat, { path: 'target.bin' });
      const reply = await nc.request(SUBJECTS.fsRead, undefined, {
        headers: putStat(stale, headers),
        timeout: 5000,
      });
      assert.ok(Buffer.from(reply.data).equals(bytes.subarray(1000, 5096)));
    } finally {
      await kernel.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('microkernel pipelined reads', () => {
  it('keeps a window of chunk reads in flight, bounded in bytes, that stops when the reader stops', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'kstyles-window-'));
    const chunk = 256 * 1024;
    const bytes = randomBytes(16 * chunk + 64 * 1024 + 123);
    await writeFile(path.join(dir, 'big.bin'), bytes);
    const kernel = await startInProcessKernel(dir);
    try {
      let reads = 0;
      const metrics = { observe: (hop: { op: string }) => void (hop.op === 'read' && reads++) };
      const service = new NatsFileService(await kernel.connectAs('gateway'), {
        metrics,
        pipeline: { chunkBytes: chunk, windowBytes: 4 * chunk },
      });
      const deadline = Date.now() + 20_000;
      const file = await service.open('big.bin', { deadline });
      const chunks = file.read({ start: 0, end: bytes.length - 1 }, { deadline })[Symbol.asyncIterator]();
      const parts: Uint8Array[] = [];
      const first = await chunks.next();
      assert.ok(!first.done);
      parts.push(first.value);
      // The reader pauses: the window is asked for and answered, and not one chunk more.
      for (const until = Date.now() + 10_000; reads < 4 && Date.now() < until; )
        await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(reads, 4, 'chunk reads while the reader holds the first (stat-carried) bytes');
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(reads, 4, 'a paused reader asks for nothing more');
      for (let next = await chunks.next(); !next.done; next = await chunks.next()) parts.push(next.value);
      assert.ok(Buffer.concat(parts).equals(bytes));
      assert.equal(reads, Math.ceil((bytes.length - 64 * 1024) / chunk), 'each byte asked for once');
      await file.close();
    } finally {
      await kernel.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('microkernel transfers', () => {
  for (const transfer of TRANSFER_MODES) {
    const bypass = transfer !== 'copy';
    it(`${transfer}: file bytes ${bypass ? 'bypass' : 'pass through'} the file server${transfer === 'shm' ? ' and the bus' : ''}, a small file's and the stat's first 64 KiB too`, async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'kstyles-transfer-'));
      const files = { 'big.bin': randomBytes(3 * 1024 * 1024), 'small.bin': randomBytes(40 * 1024) };
      for (const [name, bytes] of Object.entries(files)) await writeFile(path.join(dir, name), bytes);
      const kernel = await startInProcessKernel(dir, { transfer });
      try {
        const gatewayNc = await kernel.connectAs('gateway');
        const service = new NatsFileService(gatewayNc, shmOf(kernel));
        for (const [name, bytes] of Object.entries(files)) {
          const before = kernel.fsNats.stats().inBytes;
          const gatewayBefore = gatewayNc.stats().inBytes;
          const deadline = Date.now() + 10_000;
          const file = await service.open(name, { deadline });
          assert.equal(file.stat.size, bytes.length, `${name}: the stat came with the bytes`);
          const parts: Uint8Array[] = [];
          for await (const chunk of file.read({ start: 0, end: bytes.length - 1 }, { deadline }))
            parts.push(chunk);
          await file.close();
          assert.ok(Buffer.concat(parts).equals(bytes), `${name}: every byte`);
          const received = kernel.fsNats.stats().inBytes - before;
          // Headers cost a little; on a copy every byte passes, on a grant none does.
          if (bypass) assert.ok(received < 16 * 1024, `${name}: the file server received ${received} bytes`);
          else assert.ok(received > bytes.length, `${name}: the file server received ${received} bytes`);
          // In shared memory, only payloads smaller than SHM_MIN_BYTES cross the bus to the gateway.
          const onTheBus = gatewayNc.stats().inBytes - gatewayBefore;
          if (transfer === 'shm' && bytes.length >= SHM_MIN_BYTES)
            assert.ok(onTheBus < 16 * 1024, `${name}: the gateway received ${onTheBus} bytes on the bus`);
          else
            assert.ok(onTheBus > bytes.length, `${name}: the gateway received ${onTheBus} bytes on the bus`);
        }
        if (kernel.shm)
          assert.deepEqual(await readdir(kernel.shm.dir), [], 'every segment was taken and removed');
        // Every reply names the file server that held the request (the gateway's crash watch follows
        // it); a grant's delivery also names the driver that sent the bytes.
        const nc = await kernel.connectAs('gateway');
        const h = withDeadline(Date.now() + 5000);
        h.set(HEADERS.prefetch, String(64 * 1024));
        const stat = await nc.request(SUBJECTS.fsStat, 'big.bin', { headers: h, timeout: 5000 });
        const readHeaders = putStat(getStat(stat), withDeadline(Date.now() + 5000));
        readHeaders.set(HEADERS.handle, stat.headers?.get(HEADERS.handle) ?? '');
        const read = await nc.request(SUBJECTS.fsRead, undefined, {
          headers: putSpan(64 * 1024, 1024, readHeaders),
          timeout: 5000,
        });
        for (const [what, reply] of [
          ['stat', stat],
          ['read', read],
        ] as const) {
          assert.equal(
            reply.headers?.get(HEADERS.instance),
            kernel.servers.fs.id,
            `${what}: the file server`,
          );
          assert.equal(
            reply.headers?.get(HEADERS.grantedBy) ?? '',
            bypass ? kernel.servers.driver.id : '',
            `${what}: the driver that sent the bytes, on a grant only`,
          );
        }
        assert.ok(Buffer.from(read.data).equals(files['big.bin'].subarray(64 * 1024, 65 * 1024)));
      } finally {
        await kernel.stop();
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
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
    // Long enough that a stall of the test process on a crowded CI machine does not use it up before
    // the gateway has asked: a stall past an attempt's timer lets the timer fire before the reply
    // saying no responders is read (seen with 400 ms and with 1,500 ms: a 504, "2 attempts, last:
    // timeout", where the 503 was due).
    const kernel = await startInProcessKernel((await testCorpus()).dir, { deadlineMs: 3000 });
    try {
      await kernel.servers.driver.stop();
      const timedOut = await fetch(`${kernel.gateway.url}/files/docs/hello%20world.txt`);
      const timedOutBody = await timedOut.text();
      assert.equal(timedOut.status, 504, timedOutBody);
      assert.equal((JSON.parse(timedOutBody) as { code: string }).code, 'TIMEOUT');
      assert.equal((await fetch(`${kernel.gateway.url}/readyz`)).status, 503, 'not ready without a driver');

      await kernel.servers.fs.stop();
      const unavailable = await fetch(`${kernel.gateway.url}/files/docs/hello%20world.txt`);
      const unavailableBody = await unavailable.text();
      assert.equal(unavailable.status, 503, unavailableBody);
      assert.equal(unavailable.headers.get('retry-after'), '1');
      assert.equal((JSON.parse(unavailableBody) as { code: string }).code, 'UNAVAILABLE');
    } finally {
      await kernel.stop();
    }
  });
});
