/**
 * `npx tsx unikernel/runtime/bench-pool.ts [--json]`: what a hop through the worker pool costs against a read on
 * the main thread, per read size, sequentially (latency) and 32 at a time (throughput and main-thread
 * busy share). The numbers behind DEFAULT_INLINE_MAX_BYTES and README.md's "The pool".
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { generateCorpus } from '../../services/corpus/corpus.ts';
import { StorageDriver } from '../../services/driver/storage-driver.ts';
import { FileSystem } from '../../services/fs/file-system.ts';
import { RUNTIME_DIR } from './layout.ts';
import { PoolBlockReader } from './pool.ts';

const SIZES = [4 * 1024, 64 * 1024, 256 * 1024] as const;
const SEQUENTIAL = 2000;
const CONCURRENT_TOTAL = 2000;
const IN_FLIGHT = 32;

type Row = {
  bytes: number;
  path: 'main thread' | 'pool';
  p50Us: number;
  p99Us: number;
  concurrentReadsPerSecond: number;
  mainThreadBusy: number;
};

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

async function main(): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), 'kstyles-bench-pool-'));
  // The TypeScript task module: the bundled worker carries its own copy of piscina, which only a bundled
  // main thread (the executable) shares; under tsx the main thread uses node_modules' piscina.
  const taskFile = join(RUNTIME_DIR, 'read-task.dev.mjs');
  const tasksArg = process.argv.indexOf('--tasks-per-worker');
  const pool = new PoolBlockReader({
    taskFile,
    inlineMaxBytes: 0,
    ...(tasksArg > 0 ? { tasksPerWorker: Number(process.argv[tasksArg + 1]) } : {}),
  });
  const inline = new StorageDriver();
  try {
    const data = join(base, 'data');
    await generateCorpus(data, { seed: 1, count: 12 });
    const fs = await FileSystem.mount(data, inline);
    const { ref } = await fs.resolveNormalized('large/4mib-plus.bin');
    await pool.ready();
    const rows: Row[] = [];
    // Empty round trip: the fixed price of the hop.
    const pings: number[] = [];
    for (let i = 0; i < SEQUENTIAL; i++) {
      const t = performance.now();
      await pool.ready();
      pings.push((performance.now() - t) * 1000);
    }
    pings.sort((a, b) => a - b);
    for (const bytes of SIZES) {
      for (const [path, reader] of [
        ['main thread', inline],
        ['pool', pool],
      ] as const) {
        for (let i = 0; i < 200; i++) await reader.read(ref, 0, bytes);
        const latencies: number[] = [];
        for (let i = 0; i < SEQUENTIAL; i++) {
          const t = performance.now();
          await reader.read(ref, (i * 4096) % (ref.size - bytes), bytes);
          latencies.push((performance.now() - t) * 1000);
        }
        latencies.sort((a, b) => a - b);
        const elu = performance.eventLoopUtilization();
        const started = performance.now();
        let next = 0;
        await Promise.all(
          Array.from({ length: IN_FLIGHT }, async () => {
            while (next < CONCURRENT_TOTAL) {
              const i = next++;
              await reader.read(ref, (i * 4096) % (ref.size - bytes), bytes);
            }
          }),
        );
        const seconds = (performance.now() - started) / 1000;
        rows.push({
          bytes,
          path,
          p50Us: Math.round(quantile(latencies, 0.5)),
          p99Us: Math.round(quantile(latencies, 0.99)),
          concurrentReadsPerSecond: Math.round(CONCURRENT_TOTAL / seconds),
          mainThreadBusy: Math.round(performance.eventLoopUtilization(elu).utilization * 100) / 100,
        });
      }
    }
    const result = {
      node: process.version,
      threads: pool.threads,
      taskFile,
      emptyRoundTripUs: { p50: Math.round(quantile(pings, 0.5)), p99: Math.round(quantile(pings, 0.99)) },
      rows,
    };
    if (process.argv.includes('--json')) {
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      return;
    }
    process.stdout.write(
      `pool of ${pool.threads} threads (${taskFile}); empty round trip p50 ${result.emptyRoundTripUs.p50} µs, p99 ${result.emptyRoundTripUs.p99} µs\n\n`,
    );
    process.stdout.write(
      '| read | where | p50 µs | p99 µs | reads/s, 32 in flight | main thread busy |\n|---|---|---|---|---|---|\n',
    );
    for (const row of rows) {
      process.stdout.write(
        `| ${row.bytes / 1024} KiB | ${row.path} | ${row.p50Us} | ${row.p99Us} | ${row.concurrentReadsPerSecond} | ${Math.round(row.mainThreadBusy * 100)}% |\n`,
      );
    }
  } finally {
    await pool.close();
    await inline.close();
    await rm(base, { recursive: true, force: true });
  }
}

await main();
