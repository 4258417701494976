/**
 * The single-purpose program: `kstyles-unikernel [--port P] [--data DIR] [--host H] [--chaos]` serves the
 * contract; `kstyles-unikernel healthcheck [--port P] [--host H]` exits 0 when /healthz answers 200 (a
 * single executable ignores node's `-e`, so the image's HEALTHCHECK needs a subcommand);
 * `kstyles-unikernel version` prints the Node version it runs on (for a single executable: the embedded one).
 *
 * One source, three ways to run it: as TypeScript under tsx, as the esbuild bundle under node, or as the
 * single executable. The build replaces `process.env.KSTYLES_BUILD_*` with constants, so the production
 * bundle contains neither the chaos switch nor the TypeScript branch.
 */

import { get } from 'node:http';
import { dirname, join } from 'node:path';
import { isSea } from 'node:sea';
import { fileURLToPath } from 'node:url';
import { intFlag, parseCommand, portFlag, UsageError } from '../../cli/args.ts';
import { requireDataDir } from '../../cli/kit/data-dir.ts';
import { DEFAULT_PORTS } from '../../cli/kit/defaults.ts';
import { chaosFlagSpec, dataFlagSpec, hostFlagSpec, portFlagSpec } from '../../cli/kit/flags.ts';
import type { BundleInventory } from '../../services/contract/code-inventory.ts';
import { ProcessError } from '../../services/contract/errors.ts';
import { logLine } from '../../services/contract/http-server.ts';
import { readChaosEnv } from '../../services/driver/chaos-env.ts';
import { exitWhenOrphaned } from '../../services/supervisor/child-identity.ts';
import { startTracing } from '../../services/telemetry/setup.ts';
import { slowToggle } from './faults.ts';
import { POOL_WORKER_FILE } from './names.ts';
import { DEFAULT_INLINE_MAX_BYTES } from './pool.ts';
import { STYLE, startUnikernel } from './server.ts';

/** How long SIGTERM waits for in-flight requests before cutting them. */
const GRACE_MS = 10_000;

/** 'false' in the production build, 'true' in the chaos build; absent under tsx (development: allowed). */
const CHAOS_BUILT_IN = process.env.KSTYLES_BUILD_CHAOS !== 'false';
const BUNDLED = process.env.KSTYLES_BUILD_BUNDLED === 'true';

/**
 * What the bundle holds, from the build's esbuild metafile (replaced by a constant at build time): the
 * modules and npm packages inside the one script V8 sees. Absent under tsx, where V8 sees every module.
 */
function bundleInventory(): BundleInventory | undefined {
  const text = process.env.KSTYLES_BUILD_BUNDLE_INVENTORY;
  return BUNDLED && text ? (JSON.parse(text) as BundleInventory) : undefined;
}

const serveSpec = {
  name: 'unikernel',
  summary: 'serve the contract from the single-purpose executable',
  usage:
    'kstyles-unikernel [--port P] --data DIR [--host H] [--chaos] | kstyles-unikernel healthcheck | kstyles-unikernel version',
  flags: {
    port: portFlagSpec(DEFAULT_PORTS.unikernel, 'TCP port (0 = any free port)'),
    data: dataFlagSpec('data root to serve (a corpus)'),
    host: hostFlagSpec('address to listen on'),
    chaos: chaosFlagSpec('enable the driver fault hooks (chaos build only)'),
    threads: {
      type: 'string',
      value: 'N',
      env: 'KSTYLES_POOL_THREADS',
      description: 'worker threads (default: the cores)',
    },
    'inline-max-bytes': {
      type: 'string',
      value: 'N',
      env: 'KSTYLES_INLINE_MAX_BYTES',
      default: String(DEFAULT_INLINE_MAX_BYTES),
      description: 'reads up to N bytes stay on the main thread; 0 sends all to the pool',
    },
  },
  // The condition is spelled out (not CHAOS_BUILT_IN) so esbuild folds it and drops the chaos text.
  details:
    process.env.KSTYLES_BUILD_CHAOS !== 'false'
      ? 'Chaos: KSTYLES_CHAOS_LATENCY_MS, KSTYLES_CHAOS_ERROR_RATE; reading chaos/poison.bin crashes the whole\n' +
        'process. SIGTERM closes gracefully and exits 0.'
      : 'This production build has no fault injection. SIGTERM closes gracefully and exits 0.',
} as const;

const healthSpec = {
  name: 'unikernel healthcheck',
  summary: 'exit 0 when /healthz answers 200, 1 otherwise',
  usage: 'kstyles-unikernel healthcheck [--port P] [--host H]',
  flags: {
    port: {
      type: 'string',
      value: 'P',
      env: 'KSTYLES_PORT',
      default: String(DEFAULT_PORTS.unikernel),
      description: 'TCP port',
    },
    host: { type: 'string', value: 'H', default: '127.0.0.1', description: 'address to ask' },
  },
} as const;

function runMode(): 'single executable' | 'bundle' | 'typescript' {
  if (!BUNDLED) return 'typescript';
  return isSea() ? 'single executable' : 'bundle';
}

/** Where the pool's tasks live: beside the executable or bundle once built, else the TypeScript source. */
function taskLocation(): { taskFile: string } {
  if (BUNDLED) return { taskFile: join(isSea() ? dirname(process.execPath) : __dirname, POOL_WORKER_FILE) };
  return { taskFile: fileURLToPath(new URL('./read-task.dev.mjs', import.meta.url)) };
}

async function healthcheck(argv: string[]): Promise<number> {
  const parsed = parseCommand(healthSpec, argv);
  if (!parsed) return 0;
  const port = portFlag('unikernel healthcheck', parsed.flags.port);
  return new Promise((resolve) => {
    const req = get({ host: parsed.flags.host, port, path: '/healthz', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? 0 : 1);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => {
      process.stderr.write(
        `healthcheck: ${parsed.flags.host}:${port}/healthz did not answer: ${err.message}\n`,
      );
      resolve(1);
    });
  });
}

async function serve(argv: string[]): Promise<number> {
  const parsed = parseCommand(serveSpec, argv);
  if (!parsed) return 0;
  const { flags } = parsed;
  const port = portFlag('unikernel', flags.port);
  const data = requireDataDir('unikernel', flags.data);
  if (flags.chaos && !CHAOS_BUILT_IN) {
    throw new UsageError(
      'kstyles unikernel: this is the production build, which has no fault injection; build the chaos one with `npm run build:unikernel -- --chaos`.',
    );
  }
  const threads =
    flags.threads === undefined ? undefined : intFlag('unikernel', 'threads', flags.threads, 1, 256);
  const inlineMaxBytes = intFlag('unikernel', 'inline-max-bytes', flags['inline-max-bytes'], 0, 2 ** 30);
  const ignoredNodeOptions = process.env.NODE_OPTIONS;
  // The runtime applied NODE_OPTIONS before this code ran (Node 20 SEAs honour it); clear it so nothing
  // started from here inherits it, and say so. The image sets it empty.
  if (ignoredNodeOptions) delete process.env.NODE_OPTIONS;
  const chaosEnv =
    process.env.KSTYLES_BUILD_CHAOS !== 'false' ? readChaosEnv('unikernel', flags.chaos) : undefined;
  const slowFaultMs = chaosEnv?.slowMs ?? 0;
  const started = performance.now();
  // Before the pool starts: its workers register their own tracing from the same environment.
  const tracing = await startTracing({ style: STYLE });
  let running: Awaited<ReturnType<typeof startUnikernel>>;
  try {
    running = await startUnikernel({
      root: data,
      port,
      host: flags.host ?? '127.0.0.1',
      ...taskLocation(),
      ...(threads === undefined ? {} : { threads }),
      inlineMaxBytes,
      bundle: bundleInventory(),
      ...(chaosEnv
        ? { chaos: { enabled: flags.chaos, latencyMs: chaosEnv.latencyMs, errorRate: chaosEnv.errorRate } }
        : {}),
    });
  } catch (err) {
    throw new UsageError(`kstyles unikernel: ${(err as Error).message}`);
  }
  // Signal handlers before the start line: whoever reads it may signal at once.
  const stopped = new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: NodeJS.Signals) => {
      if (stopping) {
        logLine({ level: 'warn', msg: 'second stop signal: exiting at once', signal });
        process.exit(1);
      }
      stopping = true;
      logLine({ level: 'info', msg: 'unikernel stopping', signal });
      const finished = await running.close(GRACE_MS);
      await tracing.shutdown();
      logLine({ level: 'info', msg: 'unikernel stopped', graceful: finished });
      resolve(0);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    exitWhenOrphaned();
  });
  // SIGUSR2's default action would kill the process: the chaos build toggles 'slow', the production
  // build says it has nothing to toggle.
  process.on(
    'SIGUSR2',
    process.env.KSTYLES_BUILD_CHAOS !== 'false'
      ? slowToggle(running.reader, running.registry, slowFaultMs)
      : () =>
          logLine({ level: 'warn', msg: 'SIGUSR2 ignored: this production build has no fault injection' }),
  );
  logLine({
    level: 'info',
    msg: 'unikernel listening',
    style: STYLE,
    run: runMode(),
    build: !BUNDLED ? 'development' : CHAOS_BUILT_IN ? 'chaos' : 'production',
    chaos: flags.chaos,
    host: flags.host,
    port: running.port,
    pid: process.pid,
    poolThreads: running.reader.threads,
    inlineMaxBytes: running.reader.inlineMaxBytes,
    startMs: Math.round(performance.now() - started),
    ...(tracing.summary ? { tracing: tracing.summary } : {}),
    ...(ignoredNodeOptions
      ? { warning: 'NODE_OPTIONS was set; it has been cleared (the image sets it empty)' }
      : {}),
  });
  return stopped;
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'version') {
    process.stdout.write(`${process.version}\n`);
    return 0;
  }
  return argv[0] === 'healthcheck' ? healthcheck(argv.slice(1)) : serve(argv);
}

// No top-level await: the bundle is CommonJS (what node's single-executable support runs).
main(process.argv.slice(2)).then(
  (code) => {
    // Exit explicitly: as PID 1 nothing else would end the process if a handle lingered.
    process.exit(code);
  },
  (err: unknown) => {
    if (err instanceof ProcessError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(err.exitCode);
    }
    process.stderr.write(
      `kstyles-unikernel: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
