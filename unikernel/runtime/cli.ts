/**
 * `kstyles unikernel --port P --data DIR [--chaos] [--host H]`: runs the unikernel in the most built form
 * there is — the single executable (the chaos one with --chaos), else its bundle through node, else the
 * TypeScript entry through tsx — and says which in its first log line. Signals go to the program.
 */

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { join, relative } from 'node:path';
import { parseCommand, portFlag } from '../../cli/args.ts';
import { requireDataDir } from '../../cli/kit/data-dir.ts';
import { DEFAULT_PORTS } from '../../cli/kit/defaults.ts';
import { chaosFlagSpec, dataFlagSpec, hostFlagSpec, portFlagSpec } from '../../cli/kit/flags.ts';
import { logLine } from '../../services/contract/http-server.ts';
import { buildLayout, type Flavor, RUNTIME_DIR } from './layout.ts';

const spec = {
  name: 'unikernel',
  summary: 'serve the contract from the single-purpose executable',
  usage: 'kstyles unikernel --port P --data DIR [--chaos] [--host H]',
  flags: {
    port: portFlagSpec(DEFAULT_PORTS.unikernel, 'TCP port (0 = any free port)'),
    data: dataFlagSpec('data root to serve (a corpus)'),
    chaos: chaosFlagSpec('run the chaos build (fault hooks on)'),
    host: hostFlagSpec('address to listen on'),
  },
  details:
    'Runs unikernel/dist/kstyles-unikernel (npm run build:unikernel) if it exists, else the bundle in\n' +
    'unikernel/dist/bundle through node, else unikernel/runtime/main.ts through tsx. With --chaos the same order\n' +
    'over unikernel/dist/chaos (npm run build:unikernel -- --chaos); the production build has no chaos.\n' +
    'The program also reads KSTYLES_POOL_THREADS, KSTYLES_INLINE_MAX_BYTES and, with chaos,\n' +
    'KSTYLES_CHAOS_LATENCY_MS, KSTYLES_CHAOS_ERROR_RATE and KSTYLES_CHAOS_SLOW_MS (SIGUSR2 toggles slow).',
} as const;

const FORWARDED: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGUSR2'];

export type Launch = { form: 'single executable' | 'bundle' | 'typescript'; command: string; args: string[] };

/** The most built form of the unikernel present on disk, for the production or the chaos flavor. */
export function chooseLaunch(flavor: Flavor, distDir?: string): Launch {
  const layout = buildLayout(flavor, distDir);
  if (existsSync(layout.rootfsExecutable) && existsSync(layout.rootfsWorker)) {
    return { form: 'single executable', command: layout.rootfsExecutable, args: [] };
  }
  if (existsSync(layout.bundle) && existsSync(layout.bundleWorker)) {
    return { form: 'bundle', command: process.execPath, args: [layout.bundle] };
  }
  return {
    form: 'typescript',
    command: process.execPath,
    args: ['--import', 'tsx', join(RUNTIME_DIR, 'main.ts')],
  };
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(spec, argv);
  if (!parsed) return 0;
  const { flags } = parsed;
  const port = portFlag('unikernel', flags.port);
  const data = requireDataDir('unikernel', flags.data);
  const launch = chooseLaunch(flags.chaos ? 'chaos' : 'production');
  const program = launch.args.at(-1) ?? launch.command;
  logLine({
    level: 'info',
    msg: `kstyles unikernel: running the ${launch.form}${flags.chaos ? ' (chaos)' : ''}`,
    form: launch.form,
    program: relative(process.cwd(), program) || program,
  });
  const args = [...launch.args, '--port', String(port), '--data', data, '--host', flags.host ?? '127.0.0.1'];
  if (flags.chaos) args.push('--chaos');
  // The image clears NODE_OPTIONS; so does this launcher, so every form behaves like the image.
  const child = spawn(launch.command, args, { stdio: 'inherit', env: { ...process.env, NODE_OPTIONS: '' } });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  // SIGUSR2 too: it is the 'slow' fault, and its default action would kill this launcher.
  for (const signal of FORWARDED) process.on(signal, forward);
  try {
    return await new Promise<number>((resolveExit, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) =>
        resolveExit(code ?? 128 + (signal ? constants.signals[signal] : 0)),
      );
    });
  } finally {
    for (const signal of FORWARDED) process.off(signal, forward);
  }
}
