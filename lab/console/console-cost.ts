/**
 * What the console costs the process that runs it (the lab's: supervisor, console and live load share
 * one event loop), measured: a scratch lab and its console in this process, the live load at the page's
 * rate, and windows with the page closed and with N pages open in Chromium, interleaved (the order
 * rotates each repeat). Per window: the live load's send lag p99 (how late requests left: the
 * generator falling behind), this process's event-loop delay p99 and CPU time per second, and the
 * Server-Sent Events bytes per second. Prints a table of medians (min–max) and the load average.
 *
 *   npm run measure:console-cost -- [--rate 100] [--warmup 120] [--window 10] [--repeats 3] [--pages 1,4] [--json FILE]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser, Page } from 'playwright-core';
import { intFlag, parseCommand, UsageError } from '../../cli/args.ts';
import { formatSpread } from '../../cli/kit/spread.ts';
import { PROC_TICKS_PER_SECOND, readAllProcStats } from '../../services/contract/proc-stat.ts';
import { launchChromium } from './browser.ts';
import { startScratchLab } from './lab-console.ts';
import { MAX_RATE } from './live-load.ts';

const COMMAND = {
  name: 'console-cost',
  summary:
    "the console's cost to the lab process: send lag, event-loop delay, CPU, bytes, pages closed vs open",
  usage:
    'npx tsx lab/console/console-cost.ts [--rate R] [--window S] [--repeats K] [--pages 1,4] [--json FILE]',
  flags: {
    rate: { type: 'string', value: 'R', default: '100', description: 'live load per style, req/s' },
    window: { type: 'string', value: 'S', default: '10', description: 'seconds measured per window' },
    repeats: { type: 'string', value: 'K', default: '3', description: 'windows per condition' },
    warmup: {
      type: 'string',
      value: 'S',
      default: '120',
      description: 'seconds of load before the first window (120 fills the charts: full-size pushes)',
    },
    pages: {
      type: 'string',
      value: 'N,M',
      default: '1,4',
      description: 'numbers of open pages to compare with none',
    },
    json: { type: 'string', value: 'FILE', description: 'also write every window as JSON' },
  },
} as const;

/** The event-loop monitor's sampling interval; its percentiles include one interval, subtracted. */
const LOOP_RESOLUTION_MS = 10;
/** Time for pages to load and the first pushes to settle before a window starts. */
const SETTLE_MS = 2000;

/** CPU time (clock ticks) of each process of the browser: every process under this process's Chromium child. */
function browserTicks(): Map<number, number> {
  const procs = new Map(readAllProcStats().map((p) => [p.pid, p]));
  const inBrowser = (pid: number): boolean => {
    for (let p = procs.get(pid); p; p = procs.get(p.ppid)) {
      if (p.ppid === process.pid) return /chrom/i.test(p.name);
    }
    return false;
  };
  const ticks = new Map<number, number>();
  for (const [pid, p] of procs) if (inBrowser(pid)) ticks.set(pid, p.cpuTicks);
  return ticks;
}

/**
 * The browser's CPU time (ms) between two snapshots, over the processes alive at the end (a page
 * closed before the window took its time with it). On two cores the pages' rendering competes with
 * the generator too, though in other processes.
 */
function browserCpuMsBetween(before: Map<number, number>, after: Map<number, number>): number {
  let ticks = 0;
  for (const [pid, t] of after) ticks += t - (before.get(pid) ?? 0);
  return (ticks * 1000) / PROC_TICKS_PER_SECOND;
}

type Window = {
  condition: string;
  pages: number;
  repeat: number;
  sendLagP99Ms: number;
  sendLagMaxMs: number;
  eventLoopP99Ms: number;
  cpuMsPerS: number;
  browserCpuMsPerS: number;
  /** Building and writing the pushes, on the event loop. */
  pushMsPerS: number;
  sseBytesPerS: number;
  requests: number;
};

async function openPages(browser: Browser, url: string, n: number): Promise<Page[]> {
  const pages: Page[] = [];
  for (let i = 0; i < n; i++) {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(url);
    // A page counts as open once the pushed state has drawn its charts.
    await page.locator('#chart-unikernel canvas').waitFor({ timeout: 30_000 });
    pages.push(page);
  }
  return pages;
}

function table(windows: Window[], conditions: string[]): string {
  const cell = formatSpread;
  const rows = conditions.map((condition) => {
    const of = windows.filter((w) => w.condition === condition);
    const pick = (key: keyof Window) => of.map((w) => w[key] as number);
    return `| ${condition} | ${cell(pick('sendLagP99Ms'), 2)} | ${cell(pick('eventLoopP99Ms'), 2)} | ${cell(pick('cpuMsPerS'), 0)} | ${cell(pick('pushMsPerS'), 2)} | ${cell(pick('browserCpuMsPerS'), 0)} | ${cell(
      pick('sseBytesPerS').map((b) => b / 1024),
      1,
    )} |`;
  });
  return [
    '| pages | send lag p99, ms | event-loop delay p99, ms | lab process CPU, ms/s | pushes, ms/s | browser CPU, ms/s | SSE KiB/s |',
    '|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const parsed = parseCommand(COMMAND, argv);
  if (!parsed) return 0;
  const { flags } = parsed;
  const rate = intFlag(COMMAND.name, 'rate', flags.rate, 1, MAX_RATE);
  const windowS = intFlag(COMMAND.name, 'window', flags.window, 1, 600);
  const repeats = intFlag(COMMAND.name, 'repeats', flags.repeats, 1, 100);
  const warmupS = intFlag(COMMAND.name, 'warmup', flags.warmup, 0, 3600);
  const pageCounts = (flags.pages ?? '').split(',').map((n) => intFlag(COMMAND.name, 'pages', n, 1, 16));
  const conditions = ['closed', ...pageCounts.map((n) => `${n} open`)];
  const pagesOf = (condition: string) => (condition === 'closed' ? 0 : Number.parseInt(condition, 10));
  const say = (line: string) => process.stderr.write(`console-cost: ${line}\n`);

  const loadBefore = os.loadavg();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kstyles-console-cost-'));
  const browser = await launchChromium();
  const windows: Window[] = [];
  try {
    const scratch = await startScratchLab(path.join(dir, 'data'));
    try {
      const { server } = scratch;
      const res = await fetch(new URL('/load', server.url), {
        method: 'POST',
        headers: { accept: 'application/json' },
        body: new URLSearchParams({ action: 'start', rate: String(rate) }),
      });
      if (!res.ok) throw new Error(`starting the live load failed: ${await res.text()}`);
      say(`live load at ${rate} req/s per style; ${warmupS} s of warm-up`);
      await sleep(warmupS * 1000);
      const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
      loop.enable();
      for (let repeat = 0; repeat < repeats; repeat++) {
        // Rotated, so that no condition always follows the same one.
        const order = conditions.map((_, i) => conditions[(i + repeat) % conditions.length]!);
        for (const condition of order) {
          const pages = await openPages(browser, server.url, pagesOf(condition));
          await sleep(SETTLE_MS);
          server.load.takeSendLag();
          loop.reset();
          const cpu = process.cpuUsage();
          const browserBefore = browserTicks();
          const before = server.pushed();
          const started = performance.now();
          await sleep(windowS * 1000);
          const seconds = (performance.now() - started) / 1000;
          const lag = server.load.takeSendLag();
          const used = process.cpuUsage(cpu);
          const after = server.pushed();
          const browserUsed = browserCpuMsBetween(browserBefore, browserTicks());
          const window: Window = {
            condition,
            pages: pages.length,
            repeat,
            sendLagP99Ms: lag.p99 / 1000,
            sendLagMaxMs: lag.max / 1000,
            eventLoopP99Ms: Math.max(0, loop.percentile(99) / 1e6 - LOOP_RESOLUTION_MS),
            cpuMsPerS: (used.user + used.system) / 1000 / seconds,
            browserCpuMsPerS: browserUsed / seconds,
            pushMsPerS: (after.busyMs - before.busyMs) / seconds,
            sseBytesPerS: (after.bytes - before.bytes) / seconds,
            requests: lag.count,
          };
          windows.push(window);
          say(
            `repeat ${repeat + 1}/${repeats}, ${condition}: send lag p99 ${window.sendLagP99Ms.toFixed(2)} ms, loop p99 ${window.eventLoopP99Ms.toFixed(2)} ms, CPU ${window.cpuMsPerS.toFixed(0)} ms/s (browser ${window.browserCpuMsPerS.toFixed(0)} ms/s), pushes ${window.pushMsPerS.toFixed(2)} ms/s, SSE ${(window.sseBytesPerS / 1024).toFixed(1)} KiB/s, ${lag.count} requests`,
          );
          for (const page of pages) await page.close();
        }
      }
      loop.disable();
    } finally {
      await scratch.stop();
    }
  } finally {
    await browser.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const loadAfter = os.loadavg();
  const lines = [
    `console cost at ${rate} req/s per style (${3 * rate} req/s in all), after ${warmupS} s of load, ${repeats} interleaved windows of ${windowS} s per condition; median (min–max)`,
    table(windows, conditions),
    `load average before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${loadAfter.map((l) => l.toFixed(2)).join(' ')}; ${os.cpus().length} CPUs; Node ${process.version}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (flags.json) {
    writeFileSync(
      flags.json,
      `${JSON.stringify({ rate, windowS, repeats, loadBefore, loadAfter, windows }, null, 2)}\n`,
    );
  }
  return 0;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  if (!(err instanceof UsageError)) throw err;
  process.stderr.write(`${err.message}\n`);
  process.exitCode = err.exitCode;
}
