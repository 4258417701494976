/**
 * The local lab: every style on loopback, like the compose stack but with no Docker. A supervisor with
 * id `lab` (the same supervisor the microkernel uses inside) runs nats-server, the monolith, the
 * microkernel and the unikernel as its children: for the monolith and the unikernel it plays the part of
 * a compose restart policy; the microkernel brings its own supervisor, a supervision tree as in OTP.
 */
import { rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { DEFAULT_PORTS, STYLES, type Style } from '../cli/kit/defaults.ts';
import { KSTYLES_BIN as KSTYLES } from '../cli/kit/repo.ts';
import { ProcessError, ProcessErrorCode } from '../services/contract/errors.ts';
import { findNatsServer, NATS_INSTALL_HINT } from '../services/microkernel/composition.ts';
import {
  generateKeyPairs,
  NATS_KEY_ENV,
  NATS_ROLES,
  writeRunNatsConfig,
} from '../services/microkernel/nats-config.ts';
import {
  removeRuntimeState,
  runtimeNatsOf,
  writeRuntimeState,
} from '../services/supervisor/runtime-state.ts';
import type { ChildSpec, SupervisorSpec } from '../services/supervisor/spec.ts';
import { Supervisor } from '../services/supervisor/supervisor.ts';
import { chooseLaunch } from '../unikernel/runtime/cli.ts';

/** The lab's ports: the same as the compose stack's (docs/architecture.md, 'The styles'). */
export const LAB_PORTS = {
  monolith: DEFAULT_PORTS.monolith,
  microkernel: DEFAULT_PORTS.microkernel,
  unikernel: DEFAULT_PORTS.unikernel,
  nats: DEFAULT_PORTS.nats,
  natsMonitor: DEFAULT_PORTS.natsMonitor,
  labMetrics: DEFAULT_PORTS.labMetrics,
} as const;
export type LabPorts = { [K in keyof typeof LAB_PORTS]: number };

export const LAB_ID = 'lab';

export type LabOptions = {
  data: string;
  chaos: boolean;
  ports: LabPorts;
  /** Where the children's log lines go (default: this process's stdout/stderr). */
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
};

export type Lab = {
  supervisor: Supervisor;
  urls: Record<Style, string>;
  natsUrl: string;
  unikernelForm: string;
  stop(): Promise<void>;
};

/** A port the lab needs is taken: names it and what to do. */
export class PortInUseError extends ProcessError {
  override readonly name = 'PortInUseError';
  readonly code = ProcessErrorCode.PORT_IN_USE;
}

async function assertPortFree(port: number, label: string, flag: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new PortInUseError(
              `port ${port} (${label}) is already in use: stop what holds it (another 'kstyles up'? see 'kstyles ps') or choose another with ${flag}`,
            )
          : err,
      );
    });
    server.listen(port, '127.0.0.1', () => server.close(() => resolve()));
  });
}

const FLAG_OF_PORT: Record<keyof LabPorts, string> = {
  monolith: '--monolith-port',
  microkernel: '--microkernel-port',
  unikernel: '--unikernel-port',
  nats: '--nats-port',
  natsMonitor: '--nats-monitor-port',
  labMetrics: '--metrics-port',
};

export async function startLab(options: LabOptions): Promise<Lab> {
  for (const [name, port] of Object.entries(options.ports) as Array<[keyof LabPorts, number]>) {
    await assertPortFree(port, name, FLAG_OF_PORT[name]);
  }
  const natsBinary = findNatsServer();
  if (!natsBinary) throw new Error(`nats-server not found: ${NATS_INSTALL_HINT}`);

  const users = generateKeyPairs();
  const { dir: tempDir, file: natsConfig } = writeRunNatsConfig({
    host: '127.0.0.1',
    port: options.ports.nats,
    monitorPort: options.ports.natsMonitor,
    users,
    serverName: 'kstyles-lab',
  });
  const natsUrl = `nats://127.0.0.1:${options.ports.nats}`;
  const urls = Object.fromEntries(
    STYLES.map((style) => [style, `http://127.0.0.1:${options.ports[style]}`]),
  ) as Record<Style, string>;
  const chaos = options.chaos ? ['--chaos'] : [];
  const http = (style: Style): ChildSpec['health'] => ({ kind: 'http', url: `${urls[style]}/healthz` });
  const unikernel = chooseLaunch(options.chaos ? 'chaos' : 'production');
  const natsSeeds = Object.fromEntries(NATS_ROLES.map((role) => [NATS_KEY_ENV.seed(role), users[role].seed]));

  const spec: SupervisorSpec = {
    id: LAB_ID,
    strategy: 'one_for_one',
    // The demo kills things on purpose; the lab gives up only on a real crash loop.
    intensity: { maxRestarts: 20, periodMs: 60_000 },
    heartbeat: { intervalMs: 1000, timeoutMs: 800, misses: 5, startTimeoutMs: 60_000 },
    nats: { servers: natsUrl, seed: users.supervisor.seed },
    metricsPort: options.ports.labMetrics,
    info: { urls, chaos: options.chaos, data: options.data },
    children: [
      {
        name: 'nats',
        command: natsBinary,
        args: ['-c', natsConfig],
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
          natsUrl,
          ...chaos,
        ],
        env: natsSeeds,
        shutdownMs: 10_000,
        health: http('microkernel'),
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
        env: { NODE_OPTIONS: '' },
        health: http('unikernel'),
      },
    ],
  };
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
    info: { urls, chaos: options.chaos, data: options.data, unikernel: unikernel.form },
  });
  return {
    supervisor,
    urls,
    natsUrl,
    unikernelForm: unikernel.form,
    stop: async () => {
      await supervisor.stop();
      cleanUp();
    },
  };
}
