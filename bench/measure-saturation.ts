/**
 * Where a target's maximum comes from: one target under the benchmark's open-loop load at rising rates,
 * and for each rate its latency, the cores its processes used (each one's and all together), the
 * generator's cores and the target's CPU per request. A maximum reached with cores to spare is lost to
 * scheduling (processes waiting for a core) or to a pause; one reached at a process's single core, or
 * at the machine's, is CPU per request.
 *   npx tsx bench/measure-saturation.ts --target microkernel --size 64k --rates 600,800 [--seconds 5]
 * Starts the target as `kstyles bench` does (bench/targets.ts, the allocator settings included) on the
 * bench's corpus, warms it up for 3 s at the first rate, then one window per rate. The figures it gave
 * are in services/microkernel/README.md ('Why 64 KiB stays below half the monolith').
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { formatMicros } from '../load/units.ts';
import { PROC_TICKS_PER_SECOND, readProcStat } from '../services/contract/proc-stat.ts';
import { benchLoad } from './load-run.ts';
import { describeProcess, processTree } from './procs.ts';
import { prepareCorpus } from './run-bench.ts';
import { startTarget, TARGETS } from './targets.ts';
import { SIZE_KEYS, type SizeKey, TARGET_NAMES, type TargetName } from './types.ts';

const USAGE =
  'usage: npx tsx bench/measure-saturation.ts --target NAME --size 4k|64k|1m --rates R1,R2,… [--seconds N]';
const { values } = parseArgs({
  options: {
    target: { type: 'string' },
    size: { type: 'string', default: '64k' },
    rates: { type: 'string' },
    seconds: { type: 'string', default: '5' },
  },
});
const target = values.target as TargetName;
const size = values.size as SizeKey;
const rates = (values.rates ?? '').split(',').map(Number);
const windowMs = Number(values.seconds) * 1000;
if (
  !TARGET_NAMES.includes(target) ||
  !SIZE_KEYS.includes(size) ||
  !rates.every((r) => r > 0) ||
  !(windowMs > 0)
) {
  process.stderr.write(`${USAGE}\n  targets: ${TARGET_NAMES.join(', ')}\n`);
  process.exit(2);
}

/** CPU microseconds of each process of the tree so far. */
function cpuByProcess(pids: readonly number[]): Map<number, number> {
  return new Map(
    pids.map((pid) => [pid, ((readProcStat(pid)?.cpuTicks ?? 0) * 1e6) / PROC_TICKS_PER_SECOND]),
  );
}
const ownCpuMicros = () => {
  const used = process.cpuUsage();
  return used.user + used.system;
};

const workDir = await mkdtemp(path.join(os.tmpdir(), 'kstyles-saturation-'));
const { dataDir, manifestDir } = await prepareCorpus(workDir);
const running = await startTarget(TARGETS[target], dataDir, workDir);
const load = (rate: number, durationMs: number) =>
  benchLoad({
    name: target,
    url: running.url,
    corpusDir: manifestDir[size],
    rate,
    durationMs,
    timeoutMs: 5000,
    connections: 32,
  });
try {
  await load(rates[0]!, 3000);
  for (const rate of rates) {
    const pids = processTree(running.child.pid!);
    const before = cpuByProcess(pids);
    const ownBefore = ownCpuMicros();
    const startedAt = performance.now();
    const result = (await load(rate, windowMs)).targets[0]!;
    const wallMicros = (performance.now() - startedAt) * 1000;
    const generatorCores = (ownCpuMicros() - ownBefore) / wallMicros;
    const used = [...cpuByProcess(pids)].map(([pid, cpu]) => ({ pid, cpu: cpu - (before.get(pid) ?? 0) }));
    const total = used.reduce((sum, p) => sum + p.cpu, 0);
    const busiest = used
      .filter((p) => p.cpu / wallMicros >= 0.02)
      .map((p) => `${describeProcess(p.pid)} ${(p.cpu / wallMicros).toFixed(2)}`)
      .join(', ');
    console.log(
      `${target} ${size} at ${rate} req/s: ${result.outcomes.ok}/${result.sent} ok, p50 ${formatMicros(result.latency.p50)}, p99 ${formatMicros(result.latency.p99)}, send-lag p99 ${formatMicros(result.sendLag.p99)}; ` +
        `target ${(total / wallMicros).toFixed(2)} cores (${busiest}), ${formatMicros(total / result.sent)} of CPU per request; generator ${generatorCores.toFixed(2)} cores`,
    );
  }
} finally {
  await running.child.stop();
  await rm(workDir, { recursive: true, force: true });
}
