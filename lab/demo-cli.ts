/**
 * `kstyles demo` (npm run demo): the lab with chaos on, about a minute of open-loop load against all
 * three styles with a fault for each, and the report. The load runs as `kstyles load`, a separate
 * process: the demo reaches the styles only as a client would.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseCommand, UsageError } from '../cli/args.ts';
import { STYLES } from '../cli/kit/defaults.ts';
import { outputDirectory } from '../cli/kit/output-dir.ts';
import { KSTYLES_BIN, REPO_ROOT } from '../cli/kit/repo.ts';
import { PortInUseError } from '../services/contract/errors.ts';
import { transferFlag } from '../services/ipc/server-main.ts';
import { NatsServerMissingError } from '../services/microkernel/composition.ts';
import { chooseLaunch } from '../unikernel/runtime/cli.ts';
import { buildLayout } from '../unikernel/runtime/layout.ts';
import { startLabConsole } from './console/lab-console.ts';
import { DEFAULT_DATA_DIR, ensureCorpus } from './corpus-setup.ts';
import { LAB_ID, type Lab, startLab } from './lab.ts';
import { LAB_FLAGS, labPorts } from './up-cli.ts';

const spec = {
  name: 'demo',
  summary: 'the lab, a short load with chaos, and the report',
  usage: 'kstyles demo [--duration D] [--rate R] [--out DIR] [--data DIR] [--transfer grant|copy|shm]',
  flags: {
    ...LAB_FLAGS,
    duration: {
      type: 'string',
      value: 'D',
      default: '60s',
      description: 'length of the load, e.g. 60s or 2m',
    },
    rate: { type: 'string', value: 'R', default: '100', description: 'requests per second, per style' },
    out: { type: 'string', value: 'DIR', default: 'out/demo', description: 'where the report goes' },
    'skip-build': { type: 'boolean', description: "don't build the unikernel's executable; run what exists" },
  },
  details: `Chaos schedule (as fractions of the duration): 15% SIGKILL the microkernel's driver, 35% a poison
request to the monolith, 55% SIGKILL the unikernel, 75% SIGSTOP the microkernel's driver for 3 s.
Writes results.json, report.md and report.html to --out; lab.log holds every service's log.`,
} as const;

/** The demo's chaos schedule, scaled to the run. */
export function demoScenario(durationMs: number): string {
  const at = (share: number) => `${Math.round((durationMs * share) / 1000)}s`;
  return [
    '# kstyles demo: one fault per style, then a hang the heartbeat must catch',
    'window: 8s',
    'faults:',
    `  - { at: ${at(0.15)}, target: microkernel:driver, fault: kill }`,
    `  - { at: ${at(0.35)}, target: monolith, fault: poison }`,
    `  - { at: ${at(0.55)}, target: ${LAB_ID}:unikernel, fault: kill, affects: unikernel }`,
    `  - { at: ${at(0.75)}, target: microkernel:driver, fault: hang, for: 3s }`,
    '',
  ].join('\n');
}

function parseDurationMs(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(text.trim());
  if (!match) throw new UsageError(`kstyles demo: --duration must look like 60s or 2m, got '${text}'`);
  const ms = Number(match[1]) * { ms: 1, s: 1000, m: 60_000 }[match[2] as 'ms' | 's' | 'm'];
  if (ms < 20_000 || ms > 3_600_000)
    throw new UsageError('kstyles demo: --duration must be between 20s and 60m');
  return ms;
}

/**
 * What the unikernel's build measured, as facts for the report's comparison table: of the production
 * build when it exists, else of the chaos build the demo runs (same root filesystem but for the fault code).
 */
async function factsFromImage(): Promise<Record<string, Record<string, unknown>>> {
  const file = [buildLayout('production').imageJson, buildLayout('chaos').imageJson].find((f) =>
    existsSync(f),
  );
  if (!file) return {};
  const image = JSON.parse(await readFile(file, 'utf8')) as {
    rootfs?: { bytes?: number; files?: number };
    docker?: { sizeBytes?: number } | null;
    shell?: { present?: boolean };
    boot?: { unikernel?: { medianMs?: number } | null; monolith?: { medianMs?: number } | null };
  };
  return {
    unikernel: {
      imageBytes: image.docker?.sizeBytes ?? image.rootfs?.bytes,
      fileCount: image.rootfs?.files,
      hasShell: image.shell?.present,
      bootMs: image.boot?.unikernel?.medianMs,
    },
    ...(image.boot?.monolith?.medianMs ? { monolith: { bootMs: image.boot.monolith.medianMs } } : {}),
  };
}

function runChild(command: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, stdio: 'inherit' });
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(spec, argv);
  if (!parsed) return 0;
  const { flags } = parsed;
  const durationMs = parseDurationMs(flags.duration!);
  const rate = Number(flags.rate);
  if (!(rate > 0 && rate <= 5000))
    throw new UsageError(`kstyles demo: --rate must be between 1 and 5000, got '${flags.rate}'`);
  const ports = labPorts('demo', flags);
  const transfer = transferFlag('demo', flags.transfer);
  const out = outputDirectory('demo', '--out', flags.out!);
  const data = path.resolve(flags.data ?? DEFAULT_DATA_DIR);
  const step = (n: number, text: string) => process.stdout.write(`\n[${n}/5] ${text}\n`);

  step(1, 'corpus');
  await ensureCorpus(data, (line) => process.stdout.write(`  ${line}\n`));
  process.stdout.write(`  ${data}\n`);

  step(2, "the unikernel's single executable (chaos build)");
  if (flags['skip-build'] || chooseLaunch('chaos').form === 'single executable') {
    process.stdout.write('  already built (or --skip-build): using what exists\n');
  } else {
    const code = await runChild(process.execPath, [
      '--import',
      'tsx',
      path.join(REPO_ROOT, 'unikernel', 'build', 'build.ts'),
      '--chaos',
      '--no-docker',
      '--no-measure',
    ]);
    if (code !== 0)
      process.stdout.write('  the build failed (see above): the lab runs the unikernel from its sources\n');
  }

  step(
    3,
    `the lab (chaos on, microkernel transfer ${transfer}): nats-server, monolith, microkernel, unikernel`,
  );
  const logFile = path.join(out, 'lab.log');
  const log = createWriteStream(logFile);
  let lab: Lab;
  try {
    lab = await startLab({ data, chaos: true, transfer, ports, stdout: log, stderr: log });
  } catch (err) {
    if (err instanceof PortInUseError || err instanceof NatsServerMissingError)
      throw new UsageError(`kstyles demo: ${err.message}`);
    throw err;
  }
  let stopConsole = async () => {};
  const stopLab = async () => {
    await stopConsole();
    await lab.stop();
    log.end();
  };
  process.once('SIGINT', () => void stopLab().then(() => process.exit(130)));
  const waiting = setInterval(() => {
    const states = lab.supervisor
      .status()
      .children.map((child) => `${child.name} ${child.state}`)
      .join(', ');
    process.stdout.write(`  ${states}\n`);
  }, 3000);
  try {
    await lab.supervisor.whenReady();
  } catch (err) {
    clearInterval(waiting);
    await stopLab();
    throw new Error(`the lab did not come up: ${(err as Error).message}; see ${logFile}`);
  }
  clearInterval(waiting);
  for (const style of STYLES) process.stdout.write(`  ${style.padEnd(12)} ${lab.urls[style]}\n`);
  try {
    const consoleServer = await startLabConsole(lab, ports.console, data);
    stopConsole = consoleServer.close;
    process.stdout.write(`  ${'console'.padEnd(12)} ${consoleServer.url}\n`);
  } catch (err) {
    process.stdout.write(`  console      did not start: ${(err as Error).message}\n`);
  }
  process.stdout.write(`  unikernel runs as: ${lab.unikernelForm}; service logs: ${logFile}\n`);

  step(4, `load: ${rate} req/s per style for ${durationMs / 1000} s, with chaos`);
  const scenarioFile = path.join(out, 'scenario.yaml');
  await writeFile(scenarioFile, demoScenario(durationMs));
  const factsFile = path.join(out, 'facts.json');
  await writeFile(factsFile, `${JSON.stringify(await factsFromImage(), null, 2)}\n`);
  let loadExit: number;
  try {
    loadExit = await runChild(process.execPath, [
      KSTYLES_BIN,
      'load',
      ...STYLES.flatMap((style) => ['--target', `${style}=${lab.urls[style]}`]),
      '--rate',
      String(rate),
      '--duration',
      `${durationMs / 1000}s`,
      '--scenario',
      scenarioFile,
      '--facts',
      factsFile,
      '--corpus',
      data,
      '--out',
      out,
      '--threshold',
      '*:data_loss==0',
    ]);
  } finally {
    step(5, 'stopping the lab');
    await stopLab();
  }
  const report = path.join(out, 'report.html');
  if (!existsSync(report)) {
    process.stderr.write(
      `kstyles demo: the load run ended without a report (exit ${loadExit}); see above.\n`,
    );
    return 1;
  }
  process.stdout.write(
    `\nThe report: ${report}\n  (also report.md and results.json in ${out}; service logs in ${logFile})\n` +
      `Read it for: the monolith's and unikernel's downtime after their crash, the microkernel serving on\n` +
      `through its driver's SIGKILL and SIGSTOP, and the seed's comparison table with measured numbers.\n`,
  );
  // Exit 1 only when bytes were wrong: the faults themselves are the point of the demo.
  return loadExit === 1 ? 1 : 0;
}
