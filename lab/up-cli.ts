import path from 'node:path';
import { intFlag, parseCommand, UsageError } from '../cli/args.ts';
import { STYLES } from '../cli/kit/defaults.ts';
import { PortInUseError } from '../services/contract/errors.ts';
import { TRANSFER_FLAG, transferFlag } from '../services/ipc/server-main.ts';
import { NatsServerMissingError } from '../services/microkernel/composition.ts';
import { startLabConsole } from './console/lab-console.ts';
import { DEFAULT_DATA_DIR, ensureCorpus } from './corpus-setup.ts';
import { LAB_ID, LAB_PORTS, type LabPorts, startLab } from './lab.ts';
import { DEFAULT_TRACES_DIR, DEFAULT_TRACES_RATIO, type LabTraces } from './traces.ts';

const portFlags = {
  'monolith-port': {
    type: 'string',
    value: 'P',
    default: String(LAB_PORTS.monolith),
    description: 'monolith HTTP port',
  },
  'microkernel-port': {
    type: 'string',
    value: 'P',
    default: String(LAB_PORTS.microkernel),
    description: 'microkernel gateway HTTP port',
  },
  'unikernel-port': {
    type: 'string',
    value: 'P',
    default: String(LAB_PORTS.unikernel),
    description: 'unikernel HTTP port',
  },
  'nats-port': {
    type: 'string',
    value: 'P',
    env: 'KSTYLES_NATS_PORT',
    default: String(LAB_PORTS.nats),
    description: 'NATS client port',
  },
  'nats-monitor-port': {
    type: 'string',
    value: 'P',
    default: String(LAB_PORTS.natsMonitor),
    description: 'NATS monitoring port',
  },
  'metrics-port': {
    type: 'string',
    value: 'P',
    default: String(LAB_PORTS.labMetrics),
    description: "the lab supervisor's /metrics",
  },
  'console-port': {
    type: 'string',
    value: 'P',
    env: 'KSTYLES_CONSOLE_PORT',
    default: String(LAB_PORTS.console),
    description: 'the lab console (live charts, process trees, fault buttons)',
  },
  'supervisor-metrics-port': {
    type: 'string',
    value: 'P',
    default: String(LAB_PORTS.supervisorMetrics),
    description: "the microkernel supervisor's /metrics",
  },
  'fs-metrics-port': {
    type: 'string',
    value: 'P',
    default: String(LAB_PORTS.fsMetrics),
    description: "the microkernel file server's /metrics",
  },
  'driver-metrics-port': {
    type: 'string',
    value: 'P',
    default: String(LAB_PORTS.driverMetrics),
    description: "the microkernel driver's /metrics",
  },
} as const;

export const LAB_FLAGS = {
  data: {
    type: 'string',
    value: 'DIR',
    env: 'KSTYLES_DATA',
    description: `corpus folder, written on first use (default ${path.relative(process.cwd(), DEFAULT_DATA_DIR) || DEFAULT_DATA_DIR})`,
  },
  chaos: {
    type: 'boolean',
    env: 'KSTYLES_CHAOS',
    description: 'enable the fault hooks (poison, slow) in every style',
  },
  ...TRANSFER_FLAG,
  ...portFlags,
} as const;

/** Only `kstyles up` traces: the demo's numbers are taken with tracing off. */
const TRACES_FLAGS = {
  'traces-dir': {
    type: 'string',
    value: 'DIR',
    env: 'KSTYLES_LAB_TRACES_DIR',
    description: `where each style appends its traces, <style>.jsonl (default ${path.relative(process.cwd(), DEFAULT_TRACES_DIR) || DEFAULT_TRACES_DIR})`,
  },
  'traces-ratio': {
    type: 'string',
    value: 'R|off',
    env: 'KSTYLES_LAB_TRACES_RATIO',
    default: String(DEFAULT_TRACES_RATIO),
    description:
      'share of requests each style traces (0..1; a request with a sampled traceparent always is); off: no tracing',
  },
} as const;

const spec = {
  name: 'up',
  summary: 'run the whole local lab on loopback',
  usage: 'kstyles up [--data DIR] [--chaos] [--transfer grant|copy|shm] [--<style>-port P …]',
  flags: { ...LAB_FLAGS, ...TRACES_FLAGS },
  details: `Starts nats-server, the monolith, the microkernel and the unikernel under one supervisor (id '${LAB_ID}'),
which restarts the monolith and the unikernel like a compose restart policy; the microkernel brings its
own supervisor (id 'microkernel'). Stays in the foreground until Ctrl-C, then stops everything.
While it runs: 'kstyles ps', 'kstyles chaos ${LAB_ID}:monolith kill', 'kstyles chaos microkernel:driver hang',
'kstyles load --target monolith=http://127.0.0.1:8081 …'.`,
} as const;

/** The lab's traces from parsed flags: off, or a directory and a sampling ratio. */
export function labTraces(
  command: string,
  flags: { 'traces-dir'?: string | undefined; 'traces-ratio'?: string | undefined },
): LabTraces | undefined {
  const raw = flags['traces-ratio'] ?? String(DEFAULT_TRACES_RATIO);
  if (raw === 'off') return undefined;
  const ratio = Number(raw);
  if (raw.trim() === '' || !(ratio >= 0 && ratio <= 1)) {
    throw new UsageError(
      `kstyles ${command}: --traces-ratio must be a number from 0 to 1 (e.g. 0.01) or off, not '${raw}'.`,
    );
  }
  return { dir: path.resolve(flags['traces-dir'] ?? DEFAULT_TRACES_DIR), ratio };
}

/** Reads the lab's ports from parsed flags, naming any bad one. */
export function labPorts(
  command: string,
  flags: Record<keyof typeof portFlags, string | undefined>,
): LabPorts {
  const port = (flag: keyof typeof portFlags) => intFlag(command, flag, flags[flag], 1, 65535);
  return {
    monolith: port('monolith-port'),
    microkernel: port('microkernel-port'),
    unikernel: port('unikernel-port'),
    nats: port('nats-port'),
    natsMonitor: port('nats-monitor-port'),
    labMetrics: port('metrics-port'),
    console: port('console-port'),
    supervisorMetrics: port('supervisor-metrics-port'),
    fsMetrics: port('fs-metrics-port'),
    driverMetrics: port('driver-metrics-port'),
  };
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(spec, argv);
  if (!parsed) return 0;
  const { flags } = parsed;
  const ports = labPorts('up', flags);
  const traces = labTraces('up', flags);
  const transfer = transferFlag('up', flags.transfer);
  const data = path.resolve(flags.data ?? DEFAULT_DATA_DIR);
  const say = (line: string) => process.stdout.write(`kstyles up: ${line}\n`);
  try {
    await ensureCorpus(data, say);
  } catch (err) {
    throw new UsageError(`kstyles up: ${(err as Error).message}`);
  }
  let lab: Awaited<ReturnType<typeof startLab>>;
  try {
    lab = await startLab({ data, chaos: flags.chaos, transfer, ports, ...(traces ? { traces } : {}) });
  } catch (err) {
    if (err instanceof PortInUseError || err instanceof NatsServerMissingError)
      throw new UsageError(`kstyles up: ${err.message}`);
    throw err;
  }
  let stopping = false;
  let consoleStop = async () => {};
  const stop = () => {
    if (stopping) return;
    stopping = true;
    say('stopping every service…');
    void consoleStop().then(() => lab.stop());
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  lab.supervisor.whenReady().then(
    async () => {
      let consoleLine: string;
      try {
        const server = await startLabConsole(lab, ports.console, data);
        consoleStop = server.close;
        consoleLine = `  ${'console'.padEnd(12)} ${server.url}`;
      } catch (err) {
        consoleLine = `  console      did not start: ${(err as Error).message}`;
      }
      const lines = [
        `the lab is up (chaos ${flags.chaos ? 'on' : 'off'}, microkernel transfer ${lab.transfer}, data ${data}):`,
        ...STYLES.map((style) => `  ${style.padEnd(12)} ${lab.urls[style]}/files/docs/hello%20world.txt`),
        consoleLine,
        traces
          ? `  ${'traces'.padEnd(12)} ${traces.dir}/<style>.jsonl (${traces.ratio} of requests; the console draws the newest; Jaeger loads the files)`
          : `  ${'traces'.padEnd(12)} off`,
        `  ${'nats'.padEnd(12)} ${lab.natsUrl} (monitoring http://127.0.0.1:${ports.natsMonitor}/varz)`,
        `  unikernel runs as: ${lab.unikernelForm}${lab.unikernelForm === 'single executable' ? '' : " (build the executable with 'npm run build:unikernel')"}`,
        'try:  kstyles ps',
        '      kstyles chaos microkernel:driver kill     (the microkernel serves on)',
        `      kstyles chaos ${LAB_ID}:monolith kill            (the monolith is down until restarted)`,
        `      kstyles load --target monolith=${lab.urls.monolith} --target microkernel=${lab.urls.microkernel} --target unikernel=${lab.urls.unikernel} --rate 100 --duration 30s --corpus ${data}`,
        'Ctrl-C stops the lab.',
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    },
    () => {},
  );
  const outcome = await lab.supervisor.done;
  if (!stopping) {
    await consoleStop();
    await lab.stop();
  }
  if (outcome === 'gave_up') {
    process.stderr.write(
      'kstyles up: a service kept crashing and the lab supervisor gave up; see the log above.\n',
    );
    return 1;
  }
  return 0;
}
