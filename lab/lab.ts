/**
 * The local lab: every style on loopback, like the compose stack but with no Docker. A supervisor with
 * id `lab` (the same supervisor the microkernel uses inside) runs nats-server, the monolith, the
 * microkernel and the unikernel as its children: for the monolith and the unikernel it plays the part of
 * a compose restart policy; the microkernel brings its own supervisor, a supervision tree as in OTP.
 */
import { rmSync } from 'node:fs';
import { DEFAULT_PORTS, STYLES, type Style } from '../cli/kit/defaults.ts';
import { KSTYLES_BIN as KSTYLES } from '../cli/kit/repo.ts';
import { assertPortFree } from '../services/contract/http-server.ts';
import { mallocEnv } from '../services/contract/malloc-env.ts';
import { DEFAULT_TRANSFER, type TransferMode } from '../services/ipc/headers.ts';
import {
  findNatsServer,
  NATS_INSTALL_HINT,
  NatsServerMissingError,
} from '../services/microkernel/composition.ts';
import {
  generateKeyPairs,
  MICROKERNEL_ROLES,
  NATS_KEY_ENV,
  natsServerEnv,
  writeRunNatsConfig,
} from '../services/microkernel/nats-config.ts';
import type { ControlClientOptions } from '../services/supervisor/control-client.ts';
import {
  removeRuntimeState,
  runtimeNatsOf,
  writeRuntimeState,
} from '../services/supervisor/runtime-state.ts';
import type { ChildSpec, SupervisorSpec } from '../services/supervisor/spec.ts';
import { STARTED_PATH, Supervisor } from '../services/supervisor/supervisor.ts';
import { chooseLaunch } from '../unikernel/runtime/cli.ts';
import { type LabTraces, tracesEnv } from './traces.ts';

/** The lab's ports: the same as the compose stack's (docs/architecture.md, 'The styles'). */
export const LAB_PORTS = {
  monolith: DEFAULT_PORTS.monolith,
  microkernel: DEFAULT_PORTS.microkernel,
  unikernel: DEFAULT_PORTS.unikernel,
  nats: DEFAULT_PORTS.nats,
  natsMonitor: DEFAULT_PORTS.natsMonitor,
  labMetrics: DEFAULT_PORTS.labMetrics,
  console: DEFAULT_PORTS.console,
  supervisorMetrics: DEFAULT_PORTS.supervisorMetrics,
  fsMetrics: DEFAULT_PORTS.fsMetrics,
  driverMetrics: DEFAULT_PORTS.driverMetrics,
} as const;
export type LabPorts = { [K in keyof typeof LAB_PORTS]: number };

export const LAB_ID = 'lab';

export type LabOptions = {
  data: string;
  chaos: boolean;
  /** How the microkernel's chunk bytes reach its gateway (default grant). */
  transfer?: TransferMode;
  ports: LabPorts;
  /** Absent: the styles do not trace. */
  traces?: LabTraces;
  /** Where the children's log lines go (default: this process's stdout/stderr). */
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
};

export type Lab = {
  supervisor: Supervisor;
  /** The microkernel's transfer mode. */
  transfer: TransferMode;
  urls: Record<Style, string>;
  natsUrl: string;
  /** The console's NATS user on the lab's NATS: the supervisors' control API and events only. */
  consoleNats: ControlClientOptions;
  unikernelForm: string;
  traces?: LabTraces;
  stop(): Promise<void>;
};

const FLAG_OF_PORT: Record<keyof LabPorts, string> = {
  monolith: '--monolith-port',
  microkernel: '--microkernel-port',
  unikernel: '--unikernel-port',
  nats: '--nats-port',
  natsMonitor: '--nats-monitor-port',
  labMetrics: '--metrics-port',
  console: '--console-port',
  supervisorMetrics: '--supervisor-metrics-port',
  fsMetrics: '--fs-metrics-port',
  driverMetrics: '--driver-metrics-port',
};

/** Phase 1: a nats-server exists, and every port the lab needs is free. */
async function checkPrerequisites(ports: LabPorts): Promise<string> {
  // The binary first: a missing one is not fixed by freeing a port.
  const natsBinary = findNatsServer();
  if (!natsBinary) throw new NatsServerMissingError(`nats-server not found: ${NATS_INSTALL_HINT}`);
  for (const [name, port] of Object.entries(ports) as Array<[keyof LabPorts, number]>) {
    await assertPortFree(port, name, {
      flag: FLAG_OF_PORT[name],
      holder: "another 'kstyles up'? see 'kstyles ps'",
    });
  }
  return natsBinary;
}

type NatsSetup = { tempDir: string; configFile: string; users: ReturnType<typeof generateKeyPairs> };

/** Phase 2: fresh nkey pairs for this run and the config file, in a private temp folder. */
function writeNatsSetup(ports: LabPorts): NatsSetup {
  const users = generateKeyPairs();
  const { dir, file } = writeRunNatsConfig({
    host: '127.0.0.1',
    port: ports.nats,
    monitorPort: ports.natsMonitor,
    users,
    serverName: 'kstyles-lab',
  });
  return { tempDir: dir, configFile: file, users };
}

const transferOf = (options: LabOptions): TransferMode => options.transfer ?? DEFAULT_TRANSFER;

/** Phase 3: the lab's supervision tree as data. */
function labSpec(
  options: LabOptions,
  nats: NatsSetup & { binary: string; url: string },
  urls: Record<Style, string>,
  unikernel: ReturnType<typeof chooseLaunch>,
): SupervisorSpec {
  const chaos = options.chaos ? ['--chaos'] : [];
  const http = (style: Style): ChildSpec['health'] => ({ kind: 'http', url: `${urls[style]}/healthz` });
  const natsSeeds = Object.fromEntries(
    MICROKERNEL_ROLES.map((role) => [NATS_KEY_ENV.seed(role), nats.users[role].seed]),
  );
  return {
    id: LAB_ID,
    strategy: 'one_for_one',
    // The demo kills things on purpose; the lab gives up only on a real crash loop.
    intensity: { maxRestarts: 20, periodMs: 60_000 },
    heartbeat: { intervalMs: 1000, timeoutMs: 800, misses: 5, startTimeoutMs: 60_000 },
    nats: { servers: nats.url, seed: nats.users.supervisor.seed },
    metricsPort: options.ports.labMetrics,
    info: { urls, chaos: options.chaos, data: options.data, transfer: transferOf(options) },
    children: [
      {
        name: 'nats',
        command: nats.binary,
        args: ['-c', nats.configFile],
        env: natsServerEnv(),
        shutdownMs: 3000,
        health: { kind: 'http', url: `http://127.0.0.1:${options.ports.natsMonitor}/healthz` },
      },
      {
        name: 'monolith',
        command: process.execPath,
        args: [
          KSTYLES,
          'monolith',
          '--port',
          String(options.ports.monolith),
          '--data',
          options.data,
          ...chaos,
        ],
        env: { ...mallocEnv(), ...tracesEnv(options.traces, 'monolith') },
        health: http('monolith'),
      },
      {
        name: 'microkernel',
        command: process.execPath,
        args: [
          KSTYLES,
          'microkernel',
          '--port',
          String(options.ports.microkernel),
          '--data',
          options.data,
          '--nats',
          nats.url,
          '--transfer',
          transferOf(options),
          '--supervisor-metrics-port',
          String(options.ports.supervisorMetrics),
          '--fs-metrics-port',
          String(options.ports.fsMetrics),
          '--driver-metrics-port',
          String(options.ports.driverMetrics),
          ...chaos,
        ],
        env: { ...mallocEnv(), ...natsSeeds, ...tracesEnv(options.traces, 'microkernel') },
        shutdownMs: 10_000,
        // The lab watches the microkernel's supervisor, not its gateway: the gateway's health is that
        // supervisor's business, and a gateway busy with a backlog (after a driver kill, under load)
        // answers /healthz late; killing the whole microkernel for it refused every connection. Its
        // /started, not its /metrics: the microkernel is ready once its gateway is, not once its
        // supervisor listens (a lab said it was up while the file server was still starting).
        health: {
          kind: 'http',
          url: `http://127.0.0.1:${options.ports.supervisorMetrics}${STARTED_PATH}`,
        },
      },
      {
        name: 'unikernel',
        command: unikernel.command,
        args: [
          ...unikernel.args,
          '--port',
          String(options.ports.unikernel),
          '--data',
          options.data,
          '--host',
          '127.0.0.1',
          ...chaos,
        ],
        // As in the image: the program ignores the caller's NODE_OPTIONS.
        env: { ...mallocEnv(), NODE_OPTIONS: '', ...tracesEnv(options.traces, 'unikernel') },
        health: http('unikernel'),
      },
    ],
  };
}

export async function startLab(options: LabOptions): Promise<Lab> {
  const natsBinary = await checkPrerequisites(options.ports);
  const natsSetup = writeNatsSetup(options.ports);
  const { tempDir } = natsSetup;
  const natsUrl = `nats://127.0.0.1:${options.ports.nats}`;
  const urls = Object.fromEntries(
    STYLES.map((style) => [style, `http://127.0.0.1:${options.ports[style]}`]),
  ) as Record<Style, string>;
  const unikernel = chooseLaunch(options.chaos ? 'chaos' : 'production');
  const spec = labSpec(options, { ...natsSetup, binary: natsBinary, url: natsUrl }, urls, unikernel);
  const supervisor = new Supervisor(spec, {
    ...(options.stdout ? { stdout: options.stdout } : {}),
    ...(options.stderr ? { stderr: options.stderr } : {}),
  });
  const cleanUp = () => {
    removeRuntimeState(LAB_ID);
    rmSync(tempDir, { recursive: true, force: true });
  };
  process.once('exit', cleanUp);
  await supervisor.start();
  writeRuntimeState({
    id: LAB_ID,
    pid: process.pid,
    startedAt: new Date().toISOString(),
    nats: runtimeNatsOf(spec.nats!),
    ...(supervisor.metricsUrl ? { metricsUrl: supervisor.metricsUrl } : {}),
    info: {
      urls,
      chaos: options.chaos,
      data: options.data,
      transfer: transferOf(options),
      unikernel: unikernel.form,
      ...(options.traces ? { traces: options.traces } : {}),
    },
  });
  return {
    supervisor,
    transfer: transferOf(options),
    urls,
    natsUrl,
    consoleNats: { servers: natsUrl, seed: natsSetup.users.console.seed, role: 'console' },
    unikernelForm: unikernel.form,
    ...(options.traces ? { traces: options.traces } : {}),
    stop: async () => {
      await supervisor.stop();
      cleanUp();
    },
  };
}
