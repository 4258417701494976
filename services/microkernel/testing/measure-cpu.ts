/**
 * CPU time per request of each microkernel process (gateway, file server, driver, nats-server) for one
 * file size and transfer mode: process CPU time (user + system, /proc/<pid>/stat, every thread) over a
 * run of N GETs, less what the process spends idle (heartbeats, timers) over the same wall time, ÷ N.
 * A figure a busy machine barely moves, unlike latency:
 *   npx tsx services/microkernel/testing/measure-cpu.ts [--transfer grant,copy] [--rounds 3]
 *       [--files bench/4k.bin,bench/64k.bin,bench/1m.bin] [--concurrency 4] [--scale 1] [--profile DIR]
 *       [--monolith]
 * Each transfer runs a real `kstyles microkernel` on a temporary corpus (seed 7); per file, a warm-up,
 * then `rounds` measured runs (median printed, min–max beside it). services/microkernel/README.md keeps
 * the figures ('CPU per request'). Then minor page faults per request, all processes together (each a
 * first touch of fresh memory; 'Page faults' in that README), and their resident memory summed after
 * the file's last round (MiB): what the allocator kept.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { KSTYLES_BIN, REPO_ROOT } from '../../../cli/kit/repo.ts';
import { formatSpread, spreadOf } from '../../../cli/kit/spread.ts';
import { freePort } from '../../contract/http-server.ts';
import { mallocEnv } from '../../contract/malloc-env.ts';
import { PROC_TICKS_PER_SECOND, readProcStat, readRssBytes } from '../../contract/proc-stat.ts';
import { encodeFilePath, generateCorpus, type ManifestFile } from '../../corpus/corpus.ts';
import { TRANSFER_MODES } from '../../ipc/headers.ts';
import { transferFlag } from '../../ipc/server-main.ts';
import { startProcessKernel } from './process-kernel.ts';

const { values } = parseArgs({
  options: {
    transfer: { type: 'string', default: TRANSFER_MODES.join(',') },
    files: { type: 'string', default: 'bench/4k.bin,bench/64k.bin,bench/1m.bin' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '4' },
    /** Multiplies the requests per run (4 KiB: 2000, 64 KiB: 1000, 1 MiB: 200 at scale 1). */
    scale: { type: 'string', default: '1' },
    /** Measures `kstyles monolith` on the same files first, for reference (its one process: the total). */
    monolith: { type: 'boolean', default: false },
    /** Writes a CPU profile of every node process here (bench/cpu-profile-preload.mjs). */
    profile: { type: 'string' },
  },
});
const transfers = values.transfer.split(',').map((t) => transferFlag('measure-cpu', t));
const rounds = Number(values.rounds);
const concurrency = Number(values.concurrency);
const scale = Number(values.scale);
const PROCESSES = ['gateway', 'fs', 'driver', 'nats'] as const;
type ProcessName = (typeof PROCESSES)[number];

/** User + system CPU seconds of a process and all its threads so far, and its minor page faults. */
function usage(pid: number): { cpuSeconds: number; faults: number } {
  const stat = readProcStat(pid);
  if (!stat) throw new Error(`process ${pid} is gone: its CPU time cannot be read`);
  return { cpuSeconds: stat.cpuTicks / PROC_TICKS_PER_SECOND, faults: stat.minorFaults };
}

function requestsFor(file: ManifestFile): number {
  const base = file.size <= 8 * 1024 ? 2000 : file.size <= 128 * 1024 ? 1000 : 200;
  return Math.max(50, Math.round(base * scale));
}

/** Sends `count` GETs of `file`, `concurrency` at a time, and checks every length; resolves wall seconds. */
async function run(pool: Pool, file: ManifestFile, count: number): Promise<number> {
  const started = process.hrtime.bigint();
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      const { statusCode, body } = await pool.request({
        path: `/files/${encodeFilePath(file.path)}`,
        method: 'GET',
      });
      let bytes = 0;
      for await (const chunk of body) bytes += (chunk as Buffer).byteLength;
      if (statusCode !== 200 || bytes !== file.size) {
        throw new Error(`${file.path}: status ${statusCode}, ${bytes} of ${file.size} bytes`);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return Number(process.hrtime.bigint() - started) / 1e9;
}

const median = (xs: number[]) => spreadOf(xs)!.median;

const dir = await mkdtemp(path.join(tmpdir(), 'kstyles-measure-cpu-'));
try {
  const manifest = await generateCorpus(path.join(dir, 'data'), { seed: 7, count: 40 });
  const files = values.files.split(',').map((p) => {
    const file = manifest.files.find((f) => f.path === p);
    if (!file) throw new Error(`no ${p} in the corpus`);
    return file;
  });
  console.log(
    `load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}; ` +
      `${concurrency} requests in flight; µs of CPU per request (median of ${rounds}, min–max), idle CPU subtracted`,
  );
  console.log(
    `${'transfer'.padEnd(8)} ${'file'.padEnd(14)} ${PROCESSES.map((p) => p.padStart(18)).join('')} ${'total'.padStart(8)} ${'faults'.padStart(7)} ${'RSS MiB'.padStart(8)} ${'req/s'.padStart(7)}`,
  );
  const row = (
    label: string,
    file: ManifestFile,
    perRound: Array<Record<string, number>>,
    names: readonly string[],
    rssMiB: number,
  ) => {
    const cell = (key: string) =>
      formatSpread(
        perRound.map((r) => r[key]!),
        0,
      );
    console.log(
      `${label.padEnd(8)} ${file.path.padEnd(14)} ${PROCESSES.map((p) => (names.includes(p) ? cell(p) : '').padStart(18)).join('')} ${median(
        perRound.map((r) => r['total']!),
      )
        .toFixed(0)
        .padStart(8)} ${median(perRound.map((r) => r['faults']!))
        .toFixed(0)
        .padStart(7)} ${rssMiB.toFixed(0).padStart(8)} ${median(perRound.map((r) => r['rps']!))
        .toFixed(0)
        .padStart(7)}`,
    );
  };
  /** Measures every file against `url`, the CPU of `pids` (named); one row per file. */
  const measureTarget = async (label: string, url: string, pids: Record<string, number>) => {
    const names = Object.keys(pids);
    /** Each process's CPU seconds, and the faults of all of them, from one read of each stat. */
    const sample = () => {
      const each = names.map((n) => [n, usage(pids[n]!)] as const);
      return {
        cpu: Object.fromEntries(each.map(([n, u]) => [n, u.cpuSeconds])),
        faults: each.reduce((sum, [, u]) => sum + u.faults, 0),
      };
    };
    const pool = new Pool(url, { connections: concurrency });
    // What each process spends with no request (heartbeats, NATS pings), per second.
    const idleBefore = sample();
    const idleStarted = process.hrtime.bigint();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const idleSeconds = Number(process.hrtime.bigint() - idleStarted) / 1e9;
    const idleAfter = sample();
    const idleFaultsPerSecond = (idleAfter.faults - idleBefore.faults) / idleSeconds;
    const idlePerSecond = Object.fromEntries(
      names.map((n) => [n, (idleAfter.cpu[n]! - idleBefore.cpu[n]!) / idleSeconds]),
    );
    for (const file of files) {
      const count = requestsFor(file);
      await run(pool, file, Math.ceil(count / 2)); // warm-up: JIT, page cache, fd caches
      const perRound: Array<Record<string, number>> = [];
      for (let round = 0; round < rounds; round++) {
        const before = sample();
        const wall = await run(pool, file, count);
        const after = sample();
        const faulted = Math.max(0, after.faults - before.faults - idleFaultsPerSecond * wall) / count;
        const us = Object.fromEntries(
          names.map((n) => [
            n,
            (Math.max(0, after.cpu[n]! - before.cpu[n]! - idlePerSecond[n]! * wall) / count) * 1e6,
          ]),
        );
        perRound.push({
          ...us,
          total: names.reduce((sum, n) => sum + us[n]!, 0),
          faults: faulted,
          rps: count / wall,
        });
      }
      const rss = names.reduce((sum, n) => sum + (readRssBytes(pids[n]!) ?? 0), 0);
      row(label, file, perRound, names, rss / (1024 * 1024));
    }
    await pool.close();
  };
  if (values.monolith) {
    const monolith = spawn(
      process.execPath,
      [KSTYLES_BIN, 'monolith', '--port', String(await freePort()), '--data', path.join(dir, 'data')],
      // With the allocator settings the microkernel's servers get from their supervisor (as in the lab).
      { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...mallocEnv() } },
    );
    try {
      let output = '';
      const url = await new Promise<string>((resolve, reject) => {
        monolith.stdout.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          const found = /"url":"([^"]+)"/.exec(output)?.[1];
          if (found) resolve(found);
        });
        monolith.once('exit', () => reject(new Error(`the monolith exited: ${output}`)));
      });
      // The monolith's one process does the work of all four columns: its CPU stands in the total.
      await measureTarget('monolith', url, { gateway: monolith.pid! });
    } finally {
      const exited = new Promise((resolve) => monolith.once('exit', resolve));
      monolith.kill('SIGTERM');
      await exited;
    }
  }
  for (const transfer of transfers) {
    if (values.profile) mkdirSync(path.resolve(values.profile, transfer), { recursive: true });
    const kernel = await startProcessKernel({
      data: path.join(dir, 'data'),
      args: ['--transfer', transfer, '--heartbeat-ms', '1000'],
      ...(values.profile
        ? {
            env: {
              NODE_OPTIONS: `--import=${path.join(REPO_ROOT, 'bench', 'cpu-profile-preload.mjs')}`,
              KSTYLES_BENCH_PROFILE_DIR: path.resolve(values.profile, transfer),
            },
          }
        : {}),
    });
    try {
      const status = await kernel.status();
      const pids = Object.fromEntries(
        PROCESSES.map((p) => [p, status.children.find((c) => c.name === p)!.pid!]),
      ) as Record<ProcessName, number>;
      await measureTarget(transfer, kernel.url, pids);
    } finally {
      await kernel.stop();
    }
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
