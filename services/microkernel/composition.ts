/**
 * The microkernel's composition: which processes run, in which order, with which NATS user, and how
 * the supervisor watches each. Pure data (a SupervisorSpec), built here and run by cli.ts.
 *
 * Start order = dependency order: nats (when we run our own) → driver → fs → gateway. Each server's
 * heartbeat is its service-API PING (`$SRV.PING.kstyles-driver|kstyles-fs`); the gateway's is
 * GET /healthz; nats-server's is its monitoring /healthz.
 */

import { existsSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../cli/kit/repo.ts';
import { ProcessError, ProcessErrorCode } from '../contract/errors.ts';
import { reachableUrl } from '../contract/http-server.ts';
import { mallocEnv } from '../contract/malloc-env.ts';
import { CRASH_AT_START_ENV } from '../driver/chaos-env.ts';
import type { NatsCredentials } from '../ipc/connect.ts';
import { DEFAULT_TRANSFER, type TransferMode } from '../ipc/headers.ts';
import { SERVICE_NAMES } from '../ipc/subjects.ts';
import type { ChildSpec, SupervisorSpec } from '../supervisor/spec.ts';
import { type NatsRole, natsServerEnv } from './nats-config.ts';
import { SERVER_SOURCES, type ServerBundles, type ServerName } from './server-bundles.ts';

/** Child names: `kstyles chaos microkernel:<name> <kind>` and `kstyles ps` use them. */
export const CHILD_NAMES = { nats: 'nats', driver: 'driver', fs: 'fs', gateway: 'gateway' } as const;

/**
 * `kstyles microkernel` flags that put every metrics port of the tree on a free port, for a second
 * microkernel beside a running lab (the benchmark, the tests).
 */
export const ANY_FREE_METRICS_PORTS = [
  '--supervisor-metrics-port',
  '0',
  '--fs-metrics-port',
  '0',
  '--driver-metrics-port',
  '0',
] as const;

export type OwnNats = {
  binary: string;
  configFile: string;
  port: number;
  monitorPort: number;
};

export type CompositionOptions = {
  id: string;
  data: string;
  httpPort: number;
  httpHost: string;
  chaos: boolean;
  /** The NATS URL every process uses. */
  natsUrl: string;
  /** Present when the microkernel runs its own nats-server as its first child. */
  ownNats?: OwnNats;
  /** Per role; absent = connect without credentials (an external NATS without auth). */
  credentials?: Partial<Record<NatsRole, NatsCredentials>>;
  metricsPorts: { supervisor: number; fs: number; driver: number };
  /** Address of the supervisor's, the file server's and the driver's /metrics (default 127.0.0.1). */
  metricsHost?: string;
  heartbeat: { intervalMs: number; timeoutMs: number; misses: number };
  intensity: { maxRestarts: number; periodMs: number };
  deadlineMs?: number;
  /** How chunk bytes reach the gateway (services/ipc/headers.ts, TRANSFER_MODES); default grant. */
  transfer?: TransferMode;
  /** With `shm` transfers: the run's segment directory, given to the driver and the gateway. */
  shmDir?: string;
  /** A warm spare of each server (supervisor/warm-spare.ts): restarts skip node's boot. Default false. */
  spares?: boolean;
  /** The nice value the spares boot at (supervisor/spare-priority.ts); default 19. */
  spareNice?: number;
  /** More environment for the driver, fs and gateway (an absolute KSTYLES_TRACES_FILE). */
  serverEnv?: Record<string, string>;
  /** The servers bundled (server-bundles.ts): run these instead of the sources through tsx. */
  bundles?: ServerBundles;
};

/** `node --import tsx <file>`: the way every server runs, from any working directory. */
function tsxCommand(file: string): { command: string; args: string[] } {
  return {
    command: process.execPath,
    args: ['--import', import.meta.resolve('tsx'), path.join(REPO_ROOT, file)],
  };
}

function natsEnv(options: CompositionOptions, role: NatsRole): Record<string, string> {
  const creds = options.credentials?.[role];
  return {
    NATS_URL: options.natsUrl,
    ...(creds?.seed ? { KSTYLES_NATS_SEED: creds.seed } : {}),
    KSTYLES_CHAOS: options.chaos ? '1' : '0',
  };
}

function server(options: CompositionOptions, name: ServerName, role: NatsRole, args: string[]): ChildSpec {
  const bundle = options.bundles?.[name];
  const { command, args: base } = bundle
    ? { command: process.execPath, args: [bundle] }
    : tsxCommand(SERVER_SOURCES[name]);
  return {
    name,
    command,
    args: [...base, ...args],
    env: { ...mallocEnv(), ...natsEnv(options, role), ...options.serverEnv },
    cwd: REPO_ROOT,
    restart: 'permanent',
    shutdownMs: 5000,
    spare: options.spares ?? false,
    ...(options.spareNice !== undefined ? { spareNice: options.spareNice } : {}),
  };
}

const metricsHostArgs = (options: CompositionOptions) =>
  options.metricsHost ? ['--metrics-host', options.metricsHost] : [];

const shmDirArgs = (options: CompositionOptions) => (options.shmDir ? ['--shm-dir', options.shmDir] : []);

export function microkernelSpec(options: CompositionOptions): SupervisorSpec {
  const children: ChildSpec[] = [];
  if (options.ownNats) {
    children.push({
      name: CHILD_NAMES.nats,
      command: options.ownNats.binary,
      args: ['-c', options.ownNats.configFile],
      env: natsServerEnv(),
      restart: 'permanent',
      shutdownMs: 3000,
      health: { kind: 'http', url: `http://127.0.0.1:${options.ownNats.monitorPort}/healthz` },
    });
  }
  children.push(
    {
      ...server(options, CHILD_NAMES.driver, 'driver', [
        '--metrics-port',
        String(options.metricsPorts.driver),
        ...metricsHostArgs(options),
        ...shmDirArgs(options),
      ]),
      health: { kind: 'nats-ping', service: SERVICE_NAMES.driver },
      // The crashloop fault (the control API's `crashloop`): only a chaos driver obeys it.
      ...(options.chaos ? { crashAtStartEnv: CRASH_AT_START_ENV } : {}),
    },
    {
      ...server(options, CHILD_NAMES.fs, 'fs', [
        '--data',
        options.data,
        ...(options.transfer ? ['--transfer', options.transfer] : []),
        '--metrics-port',
        String(options.metricsPorts.fs),
        ...metricsHostArgs(options),
      ]),
      health: { kind: 'nats-ping', service: SERVICE_NAMES.fs },
    },
    {
      ...server(options, CHILD_NAMES.gateway, 'gateway', [
        ...(options.deadlineMs !== undefined ? ['--deadline-ms', String(options.deadlineMs)] : []),
        ...shmDirArgs(options),
      ]),
      // The supervisor holds the HTTP socket: a gateway restart refuses no connection.
      socket: { host: options.httpHost, port: options.httpPort },
      // /healthz shares the event loop with the requests, as each server's PING shares its NATS
      // connection with its replies: an overloaded server answers late, which the supervisor's hang
      // window takes for life, and its busy window for work, not for a hang.
      health: { kind: 'http', url: reachableUrl(options.httpHost, options.httpPort, '/healthz') },
    },
  );
  const supervisorCreds = options.credentials?.supervisor;
  return {
    id: options.id,
    strategy: 'one_for_one',
    intensity: options.intensity,
    heartbeat: options.heartbeat,
    nats: {
      servers: options.natsUrl,
      ...supervisorCreds,
    },
    metricsPort: options.metricsPorts.supervisor,
    ...(options.metricsHost ? { metricsHost: options.metricsHost } : {}),
    // In its status, so `kstyles ps --json` and the lab console say which transfer runs.
    info: { transfer: options.transfer ?? DEFAULT_TRANSFER, spares: options.spares ?? false },
    children,
  };
}

export const NATS_INSTALL_HINT =
  'install it with `apt-get install -y nats-server` (Debian/Ubuntu) or from https://github.com/nats-io/nats-server/releases, ' +
  'or point NATS_SERVER_BIN at the binary';

/** No nats-server binary to start: the message says where it was looked for and how to get one. */
export class NatsServerMissingError extends ProcessError {
  override readonly name = 'NatsServerMissingError';
  readonly code = ProcessErrorCode.NATS_SERVER_MISSING;
}

/** NATS_SERVER_BIN, then PATH, then /usr/sbin/nats-server; undefined when none exists. */
export function findNatsServer(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.NATS_SERVER_BIN) return existsSync(env.NATS_SERVER_BIN) ? env.NATS_SERVER_BIN : undefined;
  for (const dir of (env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, 'nats-server');
    if (existsSync(candidate)) return candidate;
  }
  return existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : undefined;
}
