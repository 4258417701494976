/** `kstyles bench [--quick] [--json] [--out DIR] [--only LIST]`: the side-by-side benchmark. */
import { intFlag, parseCommand, UsageError } from '../cli/args.ts';
import { outputDirectory } from '../cli/kit/output-dir.ts';
import { killAllNow, stopAll } from './procs.ts';
import { profileTarget } from './profile.ts';
import { renderTerminal, writeBenchReports } from './report.ts';
import { type BenchProgress, runBench } from './run-bench.ts';
import { SIZES, type SizeKey, TARGET_NAMES, type TargetName } from './types.ts';

const SPEC = {
  name: 'bench',
  summary: 'the side-by-side benchmark of the three styles and their reference points',
  usage: 'kstyles bench [--quick] [--rounds N] [--json] [--out DIR] [--only floor,monolith,…]',
  flags: {
    quick: {
      type: 'boolean',
      env: 'KSTYLES_BENCH_QUICK',
      description:
        'shorter windows, fewer sizes, the same 3 rounds (under 5 minutes; it lists what it gives up)',
    },
    rounds: {
      type: 'string',
      value: 'N',
      default: '3',
      description: 'measure every figure N times, interleaved (below 3: a development run without a spread)',
    },
    json: { type: 'boolean', description: 'print results.json to stdout (progress goes to stderr)' },
    out: {
      type: 'string',
      value: 'DIR',
      env: 'KSTYLES_BENCH_OUT',
      default: 'out/bench',
      description: 'where results.json, report.md and report.html go',
    },
    only: {
      type: 'string',
      value: 'LIST',
      description: `measure only these targets (${TARGET_NAMES.join(', ')})`,
    },
    profile: {
      type: 'string',
      value: 'TARGET',
      description:
        'instead: CPU-profile every node process of TARGET under --rate, list the top self-time functions and keep the profiles in --out',
    },
    rate: { type: 'string', value: 'R', default: '500', description: 'with --profile: requests per second' },
    seconds: { type: 'string', value: 'N', default: '15', description: 'with --profile: how long to load' },
    size: { type: 'string', value: 'SIZE', default: '4k', description: 'with --profile: 4k, 64k or 1m' },
  },
  details: `Starts every target on a loopback port and measures them through the load generator's
open-loop engine in rounds, interleaved (A B C A B C …): maximum sustainable rate (p99 < 50 ms, no
errors) and latency at a common rate for 4 KiB, 64 KiB and 1 MiB files; cold start; recovery from a
SIGKILL under load; RSS under load. Every figure is the median of its rounds with min–max; a ratio
whose rounds disagree, or a round that breaks a sanity rule, is measured again. References: a bare
node:http server (the floor), nginx, a NATS round trip; above every table, the instrument's own
calibration against nginx. The microkernel runs twice: --transfer grant and --transfer copy.
It prints its estimated duration first (the full run about 32 minutes on 2 cores; --quick under 5)
and the elapsed and remaining time at every step.
With --profile TARGET it instead profiles one target under load (the inspector's CPU profiler in
every node process of it, as node --cpu-prof would) and prints
its top self-time functions (also written to OUT/profile-TARGET.md).`,
} as const;

function createProgress(out: NodeJS.WriteStream): BenchProgress {
  const tty = !!out.isTTY;
  let liveShown = false;
  let lastPlainLive = 0;
  const clear = () => {
    if (tty && liveShown) out.write('\r\x1b[2K');
    liveShown = false;
  };
  return {
    step(text) {
      clear();
      out.write(`${text}\n`);
    },
    live(text) {
      if (tty) {
        const width = (out.columns ?? 120) - 1;
        out.write(`\r\x1b[2K${text.length > width ? text.slice(0, width) : text}`);
        liveShown = true;
      } else if (Date.now() - lastPlainLive > 10_000) {
        lastPlainLive = Date.now();
        out.write(`    … ${text}\n`);
      }
    },
    info(text) {
      clear();
      out.write(`    ${text}\n`);
    },
  };
}

function parseOnly(raw: string | undefined): TargetName[] | undefined {
  if (!raw) return undefined;
  const names = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of names) {
    if (!(TARGET_NAMES as readonly string[]).includes(n)) {
      throw new UsageError(
        `kstyles bench: --only: unknown target '${n}'; choose from ${TARGET_NAMES.join(', ')}`,
      );
    }
  }
  return names as TargetName[];
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(SPEC, argv);
  if (!parsed) return 0;
  const { flags } = parsed;
  if (flags.profile) {
    const [target] = parseOnly(flags.profile) ?? [];
    const size = flags.size as SizeKey;
    if (!(size in SIZES))
      throw new UsageError(`kstyles bench: --size must be one of ${Object.keys(SIZES).join(', ')}`);
    try {
      const text = await profileTarget({
        target: target!,
        rate: intFlag('bench', 'rate', flags.rate, 1, 100_000),
        durationMs: intFlag('bench', 'seconds', flags.seconds, 1, 3600) * 1000,
        size,
        outDir: flags.out!,
        log: (line) => process.stderr.write(`${line}\n`),
      });
      process.stdout.write(text);
      return 0;
    } finally {
      await stopAll();
    }
  }
  const only = parseOnly(flags.only);
  const out = outputDirectory('bench', '--out', flags.out!);
  const log = flags.json ? process.stderr : process.stdout;
  const progress = createProgress(log);
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) {
      killAllNow();
      process.exit(130);
    }
    log.write('\nkstyles bench: stopping after the current step (Ctrl-C again to quit at once)…\n');
    controller.abort();
  };
  // A SIGTERM (a service manager, `kill`, a CI timeout) would end the process without its 'exit'
  // handler and leave every target and its nats-server running: stop them, then end as the signal would.
  const onSigterm = () => {
    log.write('\nkstyles bench: SIGTERM: stopping its targets…\n');
    controller.abort();
    void stopAll().finally(() => process.exit(143));
  };
  process.on('SIGINT', onSigint);
  process.once('SIGTERM', onSigterm);
  process.on('exit', killAllNow);
  try {
    log.write(
      `kstyles bench${flags.quick ? ' --quick' : ''}: ${only ? only.join(', ') : TARGET_NAMES.join(', ')}. Output: ${flags.out}\n`,
    );
    const bench = await runBench({
      quick: flags.quick,
      rounds: intFlag('bench', 'rounds', flags.rounds, 1, 9),
      progress,
      signal: controller.signal,
      ...(only ? { only } : {}),
    });
    const files = await writeBenchReports(bench, out);
    if (flags.json) process.stdout.write(`${JSON.stringify(bench.results, null, 2)}\n`);
    else process.stdout.write(renderTerminal(bench.results));
    log.write(`wrote ${files.join(', ')} and the load reports of the runs\n`);
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
    await stopAll();
  }
}
