/**
 * The process life of a microkernel server (driver, fs, gateway): flags and environment, a bounded
 * first connection to NATS (a clear message and exit 1 past it), a JSON "ready" log line, and a
 * graceful stop on SIGTERM/SIGINT (stop taking requests, answer those in progress, close, exit 0).
 * Started as a supervisor's warm spare, it first waits, booted, for its activation (warm-spare.ts).
 */

import { statSync } from 'node:fs';
import type { NatsConnection } from '@nats-io/nats-core';
import type { Registry } from 'prom-client';
import {
  type CommandSpec,
  type FlagSpec,
  intFlag,
  type ParsedFlags,
  parseCommand,
  UsageError,
} from '../../cli/args.ts';
import { DEFAULT_NATS_URL } from '../../cli/kit/defaults.ts';
import { metricsHostFlagSpec, metricsPortFlagSpec } from '../../cli/kit/flags.ts';
import { ProcessError } from '../contract/errors.ts';
import { logLine } from '../contract/http-server.ts';
import { type MetricsEndpoint, serveMetricsEndpoint } from '../contract/metrics-server.ts';
import { exitWhenOrphaned } from '../supervisor/child-identity.ts';
import { awaitActivation, isWarmSpare } from '../supervisor/warm-spare.ts';
import { startTracing, TRACING_OFF, type Tracing } from '../telemetry/setup.ts';
import { connectNats, inboxPrefixOf, NATS_CLIENT_DEFAULTS, NatsUnreachableError } from './connect.ts';
import { DEFAULT_TRANSFER, TRANSFER_MODES, type TransferMode } from './headers.ts';
import { ShmSegments } from './shm.ts';

const SERVER_EXIT_CODES = { stopped: 0, failed: 1, usage: 2 } as const;

/** The --transfer flag (KSTYLES_TRANSFER) of the file server and the microkernel command. */
export const TRANSFER_FLAG = {
  transfer: {
    type: 'string',
    env: 'KSTYLES_TRANSFER',
    value: TRANSFER_MODES.join('|'),
    default: DEFAULT_TRANSFER,
    description:
      "how a chunk's bytes reach the gateway: straight from the driver (grant), through the file server (copy), or straight from the driver in shared memory (shm)",
  },
} as const;

/** The --transfer value, or a UsageError naming the flag and its choices. */
export function transferFlag(command: string, value: string | undefined): TransferMode {
  const mode = value ?? DEFAULT_TRANSFER;
  if ((TRANSFER_MODES as readonly string[]).includes(mode)) return mode as TransferMode;
  const choices = `${TRANSFER_MODES.slice(0, -1).join(', ')} or ${TRANSFER_MODES.at(-1)}`;
  throw new UsageError(`kstyles ${command}: --transfer must be ${choices}, not '${mode}'.`);
}

/** The --shm-dir flag of the driver and the gateway: the run's shared-memory segments (services/ipc/shm.ts). */
export const SHM_DIR_FLAG = {
  'shm-dir': {
    type: 'string',
    env: 'KSTYLES_SHM_DIR',
    value: 'DIR',
    description:
      'large granted payloads travel in shared-memory segments in this directory (the driver and the gateway must be given the same one)',
  },
} as const;

/** The segments --shm-dir names (undefined without it), or a UsageError when it is no directory. */
export function shmSegmentsFlag(command: string, dir: string | undefined): ShmSegments | undefined {
  if (dir === undefined) return undefined;
  let isDirectory = false;
  try {
    isDirectory = statSync(dir).isDirectory();
  } catch {
    // Reported below with the flag's name.
  }
  if (!isDirectory)
    throw new UsageError(
      `kstyles ${command}: --shm-dir ${dir} is not a directory: create it, or leave the flag out.`,
    );
  return new ShmSegments(dir);
}

/** Flags every server takes; each also reads an environment variable. */
/** The /metrics flags of a server; `portEnv` names the environment variable of its port. */
export function metricsFlags(portEnv: string) {
  return {
    'metrics-port': metricsPortFlagSpec(
      portEnv,
      undefined,
      'serve GET /metrics on this port (0 = any free port; absent = none)',
    ),
    'metrics-host': metricsHostFlagSpec('address of the metrics port'),
  } as const;
}

/** Serves /metrics as the metricsFlags ask: nothing when --metrics-port is absent. */
export async function serveMetricsFromFlags(
  command: string,
  registry: Registry,
  flags: { 'metrics-port'?: string | undefined; 'metrics-host'?: string | undefined },
): Promise<MetricsEndpoint | undefined> {
  const port = flags['metrics-port'];
  if (port === undefined) return undefined;
  const host = flags['metrics-host'];
  return serveMetricsEndpoint(
    registry,
    intFlag(command, 'metrics-port', port, 0, 65535),
    host ? { host } : {},
  );
}

export const NATS_FLAGS = {
  nats: {
    type: 'string',
    env: 'NATS_URL',
    value: 'URL',
    default: DEFAULT_NATS_URL,
    description: 'NATS server URL (comma-separated for several)',
  },
  'nats-seed': {
    type: 'string',
    env: 'KSTYLES_NATS_SEED',
    value: 'SEED',
    description: "the server's NATS nkey user seed (SU…); prefer the environment: a flag shows in ps",
  },
  'nats-connect-timeout-ms': {
    type: 'string',
    env: 'KSTYLES_NATS_CONNECT_TIMEOUT_MS',
    value: 'MS',
    default: String(NATS_CLIENT_DEFAULTS.firstConnectTimeoutMs),
    description: 'give up (exit 1) when NATS cannot be reached within this time',
  },
} as const satisfies Record<string, FlagSpec>;

export type RunningServer = {
  /** Facts for the "ready" log line (service id, ports, ...). */
  facts: Record<string, unknown>;
  /** Graceful stop of what the server started (not the NATS connection). */
  stop(): Promise<void>;
};

/**
 * Opens one more connection to the same NATS as the same user, named `kstyles-<server>-<purpose>`;
 * runServerMain closes it at the stop and ends the process when it is lost for good, as it does the
 * first.
 */
export type OpenConnection = (purpose: string) => Promise<NatsConnection>;

export type ServerMain<F extends Record<string, FlagSpec>> = {
  command: CommandSpec<F & typeof NATS_FLAGS>;
  /**
   * The purposes start() passes to openConnection. A warm spare opens these connections too before it
   * waits: a connection took 23-32 ms of an activated driver's 34-48 ms to ready.
   */
  connections?: readonly string[];
  /** Runs before connecting (e.g. validating flags, chaos at start). */
  prepare?(flags: ParsedFlags<F & typeof NATS_FLAGS>): Promise<void> | void;
  start(
    nc: NatsConnection,
    flags: ParsedFlags<F & typeof NATS_FLAGS>,
    openConnection: OpenConnection,
  ): Promise<RunningServer>;
};

function fail(message: string, code: number): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

/** Runs a server process to its end; never returns. */
export async function runServerMain<F extends Record<string, FlagSpec>>(
  main: ServerMain<F>,
  argv: string[] = process.argv.slice(2),
): Promise<never> {
  const name = main.command.name;
  const connections: NatsConnection[] = [];
  let server: RunningServer | undefined;
  let tracing: Tracing = TRACING_OFF;
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) fail(`${name}: second ${signal}, exiting at once`, SERVER_EXIT_CODES.failed);
    stopping = true;
    logLine({ level: 'info', service: name, msg: `${signal}: stopping gracefully`, pid: process.pid });
    await server?.stop().catch(() => {});
    await tracing.shutdown().catch(() => {});
    await Promise.all(connections.map((c) => c.close().catch(() => {})));
    process.exit(SERVER_EXIT_CODES.stopped);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  try {
    const parsed = parseCommand(main.command, argv);
    if (!parsed) process.exit(SERVER_EXIT_CODES.stopped);
    const flags = parsed.flags;
    const common = flags as unknown as ParsedFlags<typeof NATS_FLAGS>;
    const servers = (common.nats ?? '').split(',').filter(Boolean);
    const seed = common['nats-seed'];
    const firstConnectTimeoutMs = intFlag(
      name,
      'nats-connect-timeout-ms',
      common['nats-connect-timeout-ms'],
      1,
      3_600_000,
    );
    const connect = async (connectionName: string) => {
      const connection = await connectNats({
        servers,
        name: connectionName,
        inboxPrefix: inboxPrefixOf(name),
        ...(seed !== undefined ? { seed } : {}),
        firstConnectTimeoutMs,
      });
      connections.push(connection);
      void connection.closed().then((err) => {
        if (!stopping)
          fail(
            `${name}: NATS connection ${connectionName} closed for good${err ? `: ${err.message}` : ''}`,
            1,
          );
      });
      void watchConnection(connection, name, connectionName);
      return connection;
    };
    const nameOf = (purpose?: string) => `kstyles-${name}${purpose ? `-${purpose}` : ''}`;
    // A warm spare connects before it waits: a first connection (the client's code compiled on first
    // use, the nkey signature) took ~110 ms of a restart on this code, a part of the boot the spare
    // is there to take off the restart. It subscribes to nothing until it is activated.
    const spare = isWarmSpare();
    const early = spare ? await connect(nameOf()) : undefined;
    const opened = new Map<string, NatsConnection>();
    if (spare)
      for (const purpose of main.connections ?? []) opened.set(purpose, await connect(nameOf(purpose)));
    await awaitActivation();
    exitWhenOrphaned();
    await main.prepare?.(flags);
    // `service.name` microkernel-<server>; the SDK loads only when the environment names an exporter.
    tracing = await startTracing({ style: 'microkernel', component: name });
    const connection = early ?? (await connect(nameOf()));
    const openConnection: OpenConnection = async (purpose) => {
      const ready = opened.get(purpose);
      opened.delete(purpose);
      return ready ?? connect(nameOf(purpose));
    };
    server = await main.start(connection, flags, openConnection);
    logLine({
      level: 'info',
      service: name,
      msg: 'ready',
      pid: process.pid,
      nats: connection.getServer(),
      ...server.facts,
      ...(tracing.summary ? { tracing: tracing.summary } : {}),
    });
    if (stopping) await server.stop();
  } catch (err) {
    if (err instanceof UsageError) fail(err.message, err.exitCode);
    if (err instanceof NatsUnreachableError) fail(err.message, SERVER_EXIT_CODES.failed);
    if (err instanceof ProcessError) fail(err.message, err.exitCode);
    fail(`${name}: ${err instanceof Error ? err.message : String(err)}`, SERVER_EXIT_CODES.failed);
  }
  // Runs until a signal or a lost connection ends the process.
  return new Promise<never>(() => {});
}

async function watchConnection(nc: NatsConnection, name: string, connectionName: string): Promise<void> {
  for await (const status of nc.status()) {
    if (status.type === 'disconnect' || status.type === 'reconnect') {
      logLine({
        level: 'warn',
        service: name,
        msg: `NATS ${status.type}`,
        connection: connectionName,
        server: nc.getServer(),
      });
    }
  }
}
