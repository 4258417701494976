/**
 * `kstyles microkernel`: the microkernel style on one machine. A supervisor (this process, supervisor
 * id `microkernel`) starts nats-server with generated per-server users (unless --nats names one), then
 * the driver, file server and gateway as separate processes, restarts them when they crash or hang,
 * and stops them in reverse order on SIGTERM/SIGINT.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { intFlag, type ParsedFlags, parseCommand, portFlag, UsageError } from '../../cli/args.ts';
import { requireDataDir } from '../../cli/kit/data-dir.ts';
import { DEFAULT_PORTS } from '../../cli/kit/defaults.ts';
import {
  chaosFlagSpec,
  dataFlagSpec,
  hostFlagSpec,
  metricsHostFlagSpec,
  metricsPortFlagSpec,
  portFlagSpec,
} from '../../cli/kit/flags.ts';
import { PortInUseError } from '../contract/errors.ts';
import { DEFAULT_DEADLINE_MS } from '../contract/file-service.ts';
import { assertPortFree, freePort, reachableUrl } from '../contract/http-server.ts';
import { TRANSFER_FLAG, transferFlag } from '../ipc/server-main.ts';
import { makeShmDir, removeOrphanShmDirs } from '../ipc/shm.ts';
import { exitWhenOrphaned } from '../supervisor/child-identity.ts';
import { removeRuntimeState, runtimeNatsOf, writeRuntimeState } from '../supervisor/runtime-state.ts';
import { DEFAULT_SPARE_NICE } from '../supervisor/spare-priority.ts';
import type { SupervisorSpec } from '../supervisor/spec.ts';
import { Supervisor } from '../supervisor/supervisor.ts';
import { absoluteTracesFileEnv, tracingPlan } from '../telemetry/setup.ts';
import {
  CHILD_NAMES,
  type CompositionOptions,
  findNatsServer,
  microkernelSpec,
  NATS_INSTALL_HINT,
} from './composition.ts';
import { NATS_ISOLATION_PROBE, probeNatsIsolation } from './isolation-probe.ts';
import {
  generateKeyPairs,
  NATS_KEY_ENV,
  NATS_ROLES,
  renderNatsConfig,
  usersFromEnv,
  writeRunNatsConfig,
} from './nats-config.ts';
import { bundlesAtStart, prebuiltBundles } from './server-bundles.ts';

const COMMAND = {
  name: 'microkernel',
  summary: 'serve the contract from NATS servers under a supervisor',
  usage:
    'kstyles microkernel --port P --data DIR [--transfer grant|copy|shm] [--nats URL] [--chaos] [--host H]',
  flags: {
    port: portFlagSpec(DEFAULT_PORTS.microkernel, 'HTTP port of the gateway (0 = any free port)'),
    host: hostFlagSpec('HTTP address'),
    data: dataFlagSpec('data root (see kstyles corpus)'),
    nats: {
      type: 'string',
      env: 'NATS_URL',
      value: 'URL',
      description: 'use this NATS server instead of starting one (nkey seeds from KSTYLES_NATS_<ROLE>_SEED)',
    },
    chaos: chaosFlagSpec("enable the driver's fault hooks"),
    ...TRANSFER_FLAG,
    spares: {
      type: 'string',
      env: 'KSTYLES_SPARES',
      value: 'on|off',
      default: 'on',
      description:
        'keep a warm spare of each server, booted and waiting, which a restart activates instead of starting a process (one more node process per server)',
    },
    'spare-nice': {
      type: 'string',
      env: 'KSTYLES_SPARE_NICE',
      value: 'N',
      default: String(DEFAULT_SPARE_NICE),
      description:
        'the nice value (0-19) a spare boots at, so its boot yields the cores to the servers; a restart raises it first (where the supervisor may: CAP_SYS_NICE, else spares boot at normal priority)',
    },
    id: {
      type: 'string',
      env: 'KSTYLES_SUPERVISOR_ID',
      value: 'ID',
      default: 'microkernel',
      description: 'supervisor id (control API kstyles.sup.ctl.<ID>.*, runtime state <ID>.json)',
    },
    'nats-port': {
      type: 'string',
      env: 'KSTYLES_NATS_PORT',
      value: 'P',
      default: '0',
      description: 'client port of the nats-server it starts (0 = any free port)',
    },
    'supervisor-metrics-port': metricsPortFlagSpec(
      'KSTYLES_SUPERVISOR_METRICS_PORT',
      DEFAULT_PORTS.supervisorMetrics,
      'supervisor /metrics port',
    ),
    'fs-metrics-port': metricsPortFlagSpec(
      'KSTYLES_FS_METRICS_PORT',
      DEFAULT_PORTS.fsMetrics,
      'file server /metrics port',
    ),
    'driver-metrics-port': metricsPortFlagSpec(
      'KSTYLES_DRIVER_METRICS_PORT',
      DEFAULT_PORTS.driverMetrics,
      'driver /metrics port',
    ),
    'heartbeat-ms': {
      type: 'string',
      env: 'KSTYLES_HEARTBEAT_MS',
      value: 'MS',
      default: '1000',
      description:
        'health check interval; a server that answers no check for 3 intervals (9 while it keeps a core busy) is killed as hung and restarted',
    },
    'max-restarts': {
      type: 'string',
      env: 'KSTYLES_MAX_RESTARTS',
      value: 'N',
      default: '5',
      description:
        'restart intensity: more than N restarts within the period and the supervisor gives up (exit 1)',
    },
    'restart-period-ms': {
      type: 'string',
      env: 'KSTYLES_RESTART_PERIOD_MS',
      value: 'MS',
      default: '10000',
      description: 'restart intensity period',
    },
    'deadline-ms': {
      type: 'string',
      env: 'KSTYLES_DEADLINE_MS',
      value: 'MS',
      default: String(DEFAULT_DEADLINE_MS),
      description: 'request deadline at the gateway, carried to every hop (past it: 504)',
    },
    'metrics-host': metricsHostFlagSpec(
      "address of every /metrics port but the gateway's (0.0.0.0 in a container)",
    ),
    'print-nats-config': {
      type: 'boolean',
      description: 'print a static nats-server config (public keys from $KSTYLES_NATS_<ROLE>_NKEY) and exit',
    },
  },
  details: `Without --nats it starts nats-server (NATS_SERVER_BIN, PATH or /usr/sbin/nats-server) on a free
loopback port with one generated user per server. Once ready it prints the URL and the runtime state
file through which 'kstyles ps' and 'kstyles chaos microkernel:driver kill' reach the supervisor.
Metrics: gateway <URL>/metrics; fs, driver and supervisor on their --*-metrics-port.`,
} as const;

/** An on|off flag's value, or a UsageError naming the flag. */
function onOffFlag(command: string, flag: string, value: string | undefined): boolean {
  if (value === 'on' || value === undefined) return true;
  if (value === 'off') return false;
  throw new UsageError(`kstyles ${command}: --${flag} must be on or off, not '${value}'.`);
}

/** A port chosen once, so a restarted server comes back on the same one. */
const fixedPort = async (port: number) => (port === 0 ? freePort() : port);

/**
 * With --nats: each role's seed from KSTYLES_NATS_<ROLE>_SEED (a role without one connects without),
 * taken out of `env`. The servers inherit this process's environment: left there, every role's seed would
 * sit in the gateway's, so a compromised request parser would hold the driver's and the supervisor's
 * keys too. Each server gets its own seed alone (KSTYLES_NATS_SEED, composition.ts).
 */
export function takeCredentialsFromEnv(env: NodeJS.ProcessEnv): CompositionOptions['credentials'] {
  const creds: NonNullable<CompositionOptions['credentials']> = {};
  // The console's too, for the isolation probe (a deployment's .env has them all); no server inherits any.
  for (const role of NATS_ROLES) {
    const seed = env[NATS_KEY_ENV.seed(role)];
    if (seed) creds[role] = { seed };
    delete env[NATS_KEY_ENV.seed(role)];
  }
  return creds;
}

/** The composition the flags ask for, before NATS is chosen. */
async function compositionOptions(
  flags: ParsedFlags<typeof COMMAND.flags>,
  data: string,
): Promise<Omit<CompositionOptions, 'natsUrl'>> {
  const name = COMMAND.name;
  const heartbeatMs = intFlag(name, 'heartbeat-ms', flags['heartbeat-ms'], 20, 60_000);
  return {
    id: flags.id ?? 'microkernel',
    data,
    httpHost: flags.host ?? '127.0.0.1',
    httpPort: await fixedPort(portFlag(name, flags.port)),
    chaos: flags.chaos,
    transfer: transferFlag(name, flags.transfer),
    spares: onOffFlag(name, 'spares', flags.spares),
    spareNice: intFlag(name, 'spare-nice', flags['spare-nice'], 0, 19),
    metricsHost: flags['metrics-host'] ?? '127.0.0.1',
    metricsPorts: {
      supervisor: await fixedPort(
        intFlag(name, 'supervisor-metrics-port', flags['supervisor-metrics-port'], 0, 65535),
      ),
      fs: await fixedPort(intFlag(name, 'fs-metrics-port', flags['fs-metrics-port'], 0, 65535)),
      driver: await fixedPort(intFlag(name, 'driver-metrics-port', flags['driver-metrics-port'], 0, 65535)),
    },
    heartbeat: { intervalMs: heartbeatMs, timeoutMs: Math.max(10, Math.floor(heartbeatMs / 2)), misses: 3 },
    serverEnv: absoluteTracesFileEnv(),
    deadlineMs: intFlag(name, 'deadline-ms', flags['deadline-ms'], 1, 600_000),
    intensity: {
      maxRestarts: intFlag(name, 'max-restarts', flags['max-restarts'], 0, 10_000),
      periodMs: intFlag(name, 'restart-period-ms', flags['restart-period-ms'], 1, 86_400_000),
    },
  };
}

const PORT_HOLDER = "another 'kstyles microkernel'? see 'kstyles ps'";

/**
 * The ports this run was given are free now, each named with its flag. Found taken by a server instead,
 * a metrics port would be a restart loop until the supervisor gave up, naming no flag of this command.
 */
async function assertPortsFree(
  name: string,
  options: Omit<CompositionOptions, 'natsUrl'>,
  natsPort?: number,
) {
  const ports: Array<readonly [port: number, label: string, flag: string, host: string | undefined]> = [
    [options.httpPort, 'gateway', '--port', options.httpHost],
    [options.metricsPorts.supervisor, 'supervisor metrics', '--supervisor-metrics-port', options.metricsHost],
    [options.metricsPorts.fs, 'file server metrics', '--fs-metrics-port', options.metricsHost],
    [options.metricsPorts.driver, 'driver metrics', '--driver-metrics-port', options.metricsHost],
    ...(natsPort === undefined ? [] : [[natsPort, 'nats', '--nats-port', '127.0.0.1'] as const]),
  ];
  try {
    for (const [port, label, flag, host] of ports)
      await assertPortFree(port, label, { flag, holder: PORT_HOLDER, host });
  } catch (err) {
    if (err instanceof PortInUseError) throw new UsageError(`kstyles ${name}: ${err.message}`);
    throw err;
  }
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(COMMAND, argv);
  if (!parsed) return 0;
  const { flags } = parsed;
  if (flags['print-nats-config']) {
    process.stdout.write(
      renderNatsConfig({
        host: '0.0.0.0',
        port: DEFAULT_PORTS.nats,
        monitorPort: DEFAULT_PORTS.natsMonitor,
        users: usersFromEnv(),
        serverName: 'kstyles-nats',
      }),
    );
    return 0;
  }
  const name = COMMAND.name;
  const data = requireDataDir(name, flags.data);
  // A tracing variable the servers cannot use stops here, once, not in a restart loop of every server.
  tracingPlan({ style: 'microkernel' });
  const options = await compositionOptions(flags, data);

  let tempDir: string | undefined;
  let composition: CompositionOptions;
  if (flags.nats) {
    await assertPortsFree(name, options);
    composition = { ...options, natsUrl: flags.nats, credentials: takeCredentialsFromEnv(process.env) };
  } else {
    const binary = findNatsServer();
    if (!binary)
      throw new UsageError(
        `kstyles ${name}: nats-server not found: ${NATS_INSTALL_HINT}, or use an existing server with --nats URL.`,
      );
    const users = generateKeyPairs();
    const port = await fixedPort(intFlag(name, 'nats-port', flags['nats-port'], 0, 65535));
    await assertPortsFree(name, options, port);
    const monitorPort = await freePort();
    const written = writeRunNatsConfig({
      host: '127.0.0.1',
      port,
      monitorPort,
      users,
      serverName: `kstyles-${options.id}`,
      ...(options.deadlineMs !== undefined ? { responsesExpireMs: options.deadlineMs } : {}),
    });
    tempDir = written.dir;
    const configFile = written.file;
    composition = {
      ...options,
      natsUrl: `nats://127.0.0.1:${port}`,
      credentials: users,
      ownNats: { binary, configFile, port, monitorPort },
    };
  }

  // Compiled once (here, or ahead into the image), so no restart of a server compiles its TypeScript again.
  const prebuilt = prebuiltBundles();
  const bundleDir = prebuilt
    ? undefined
    : mkdtempSync(path.join(os.tmpdir(), 'kstyles-microkernel-servers-'));
  const built = prebuilt ? { bundles: prebuilt } : await bundlesAtStart(bundleDir!);
  if (built.bundles) composition = { ...composition, bundles: built.bundles };
  else
    process.stderr.write(
      `kstyles ${name}: the servers run from their sources through tsx: ${built.reason}\n`,
    );
  // Shared-memory transfers: a segment directory for this run; those of runs killed before they could
  // remove theirs go now (services/ipc/shm.ts).
  let shmDir: string | undefined;
  if (composition.transfer === 'shm') {
    removeOrphanShmDirs();
    shmDir = await makeShmDir();
    composition = { ...composition, shmDir };
  }
  const tempDirs = [bundleDir, tempDir, shmDir].filter((dir): dir is string => dir !== undefined);
  return superviseUntilDone(composition, data, tempDirs);
}

/** The /metrics URLs of the gateway, the servers and the supervisor. */
function metricsUrls(composition: CompositionOptions, url: string) {
  return {
    gateway: `${url}/metrics`,
    fs: reachableUrl('127.0.0.1', composition.metricsPorts.fs, '/metrics'),
    driver: reachableUrl('127.0.0.1', composition.metricsPorts.driver, '/metrics'),
    supervisor: reachableUrl('127.0.0.1', composition.metricsPorts.supervisor, '/metrics'),
  };
}

/** Runs the supervision tree in the foreground; resolves with the exit code once it has stopped. */
async function superviseUntilDone(
  composition: CompositionOptions,
  data: string,
  tempDirs: string[],
): Promise<number> {
  const spec = microkernelSpec(composition);
  // The isolation probe needs every role's credentials, which only this process holds: its supervisor
  // runs it when asked over the control API (`kstyles.sup.ctl.<id>.probe`, name nats-isolation).
  const supervisor = new Supervisor(spec, {
    probes: {
      [NATS_ISOLATION_PROBE]: () => probeNatsIsolation(composition.natsUrl, composition.credentials ?? {}),
    },
  });
  const cleanUp = () => {
    removeRuntimeState(spec.id);
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  };
  const stop = () => void supervisor.stop();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  exitWhenOrphaned();
  process.once('exit', cleanUp);

  const url = reachableUrl(composition.httpHost, composition.httpPort);
  const metrics = metricsUrls(composition, url);
  await supervisor.start();
  const stateFile = recordRuntimeState(spec, supervisor, composition, { url, data, metrics });
  supervisor.whenReady().then(
    () =>
      process.stdout.write(
        [
          `microkernel ready: ${url}  (data ${data}, transfer ${composition.transfer}, servers ${composition.bundles ? 'bundled' : 'from sources'}, chaos ${composition.chaos ? 'on' : 'off'}, supervisor pid ${process.pid})`,
          `  NATS      ${composition.natsUrl}${composition.ownNats ? ` (monitoring http://127.0.0.1:${composition.ownNats.monitorPort}/varz)` : ''}`,
          `  metrics   gateway ${metrics.gateway}  fs ${metrics.fs}  driver ${metrics.driver}  supervisor ${metrics.supervisor}`,
          `  control   'kstyles ps', 'kstyles chaos ${spec.id}:${CHILD_NAMES.driver} kill' (state: ${stateFile})`,
          '',
        ].join('\n'),
      ),
    () => {},
  );

  const outcome = await supervisor.done;
  cleanUp();
  // A NATS connection still waiting for its first server must not keep the process alive.
  setTimeout(() => process.exit(process.exitCode ?? 0), 1000).unref();
  if (outcome === 'gave_up') {
    process.stderr.write(
      `kstyles ${COMMAND.name}: the supervisor gave up after more than ${spec.intensity?.maxRestarts} restarts within ` +
        `${spec.intensity?.periodMs} ms; every server is stopped. Exit 1 so an outer restarter can take over.\n`,
    );
    return 1;
  }
  return 0;
}

/** Says where this supervisor's control API is (for `kstyles ps` and `kstyles chaos`); returns the file. */
function recordRuntimeState(
  spec: SupervisorSpec,
  supervisor: Supervisor,
  composition: CompositionOptions,
  shown: { url: string; data: string; metrics: Record<string, string> },
): string {
  return writeRuntimeState({
    id: spec.id,
    pid: process.pid,
    startedAt: new Date().toISOString(),
    ...(spec.nats ? { nats: runtimeNatsOf(spec.nats) } : {}),
    ...(supervisor.metricsUrl ? { metricsUrl: supervisor.metricsUrl } : {}),
    info: {
      style: 'microkernel',
      url: shown.url,
      data: shown.data,
      chaos: composition.chaos,
      transfer: composition.transfer,
      children: spec.children.map((c) => c.name),
      metrics: shown.metrics,
      ...(composition.ownNats ? { natsMonitor: `http://127.0.0.1:${composition.ownNats.monitorPort}` } : {}),
    },
  });
}
