/**
 * How a cold microkernel's health checks fare under load: a real `kstyles microkernel`, an open-loop
 * load of every corpus file from its first second, and the gateway's /healthz polled every 250 ms on a
 * new connection each time and on a kept one (the supervisor's own HttpHealthChecks), side by side:
 *   npx tsx services/microkernel/testing/measure-health.ts [--rate 200] [--seconds 20]
 * Prints, per second of the load: the requests sent, the slowest of them and how many failed, and each
 * poll's time in ms on either connection (a second without a figure had no poll answered in it); then the
 * supervisor's events. Run it inside a cgroup with a CPU quota to see the same on a starved machine.
 * services/microkernel/README.md keeps the figures ('A busy server is not a hung one').
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { generateCorpus } from '../../corpus/corpus.ts';
import { HttpHealthChecks } from '../../supervisor/health.ts';
import { openLoopLoad } from './load.ts';
import { eventLine, startProcessKernel } from './process-kernel.ts';

const { values } = parseArgs({
  options: { rate: { type: 'string', default: '200' }, seconds: { type: 'string', default: '20' } },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
if (!(rate > 0) || !(seconds > 0)) throw new Error('--rate and --seconds take positive numbers');
const POLL_MS = 250;
const POLL_TIMEOUT_MS = 20_000;

/** Polls until the load ends; each poll as [ms since the start when it began, ms it took]. */
async function poll(check: () => Promise<boolean>, start: number): Promise<Array<[number, number]>> {
  const polls: Array<[number, number]> = [];
  while (Date.now() - start < seconds * 1000) {
    const began = Date.now();
    await check();
    polls.push([began - start, Date.now() - began]);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return polls;
}

const dir = await mkdtemp(path.join(tmpdir(), 'kstyles-measure-health-'));
const kept = new HttpHealthChecks();
// As the supervisor checked before it kept its connection.
const fresh = new HttpHealthChecks({ keepAlive: false });
try {
  const manifest = await generateCorpus(path.join(dir, 'data'), { seed: 7, count: 40 });
  const files = manifest.files.filter((f) => !f.poison);
  const kernel = await startProcessKernel({
    data: path.join(dir, 'data'),
    args: ['--transfer', 'grant', '--deadline-ms', '10000'],
  });
  try {
    const url = `${kernel.url}/healthz`;
    const start = Date.now();
    const [results, onNew, onKept] = await Promise.all([
      openLoopLoad(kernel.url, files, { rate, durationMs: seconds * 1000 }),
      poll(() => fresh.check(url, POLL_TIMEOUT_MS), start),
      poll(() => kept.check(url, POLL_TIMEOUT_MS), start),
    ]);
    console.log(`${rate} req/s of ${files.length} files; /healthz every ${POLL_MS} ms (ms per poll)`);
    console.log('second  sent  slowest  failed | new connection | kept connection');
    const inSecond = (polls: Array<[number, number]>, s: number) =>
      polls
        .filter(([at]) => at >= s * 1000 && at < (s + 1) * 1000)
        .map(([, ms]) => ms)
        .join(',');
    for (let s = 0; s < seconds; s++) {
      const sent = results.filter(
        (r) => r.startedAt - start >= s * 1000 && r.startedAt - start < (s + 1) * 1000,
      );
      const slowest = Math.max(0, ...sent.map((r) => r.ms));
      console.log(
        `${String(s).padStart(6)}  ${String(sent.length).padStart(4)}  ${String(slowest).padStart(7)}  ${String(sent.filter((r) => !r.ok).length).padStart(6)} | ${inSecond(onNew, s).padEnd(14)} | ${inSecond(onKept, s)}`,
      );
    }
    for (const e of kernel.events.filter((x) => x.type !== 'started')) console.log(eventLine(e, start));
  } finally {
    await kernel.stop();
  }
} finally {
  kept.close();
  fresh.close();
  await rm(dir, { recursive: true, force: true });
}
