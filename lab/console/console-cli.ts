/**
 * `kstyles console`: the lab console without a lab, beside a running deployment (docker compose): the
 * three styles by HTTP, the supervisors' control API and events by NATS as the console's own NATS user,
 * container faults through the Docker engine when its socket is given and answers.
 */
import { parseCommand, UsageError } from '../../cli/args.ts';
import { requireDataDir } from '../../cli/kit/data-dir.ts';
import { DEFAULT_NATS_URL, STYLES } from '../../cli/kit/defaults.ts';
import { dataFlagSpec, hostFlagSpec } from '../../cli/kit/flags.ts';
import { parseTargets } from '../../load/cli.ts';
import { DockerFaultDriver } from '../../load/fault-drivers.ts';
import { PortInUseError } from '../../services/contract/errors.ts';
import { NATS_KEY_ENV } from '../../services/microkernel/nats-config.ts';
import { CONSOLE_DEFAULT_PORT, startConsole } from './console-server.ts';
import { deploymentFaultMenu } from './fault-menu.ts';

const SEED_ENV = NATS_KEY_ENV.seed('console');

const COMMAND = {
  name: 'console',
  summary: 'the lab console beside a running deployment (no lab of its own)',
  usage:
    'kstyles console --target monolith=URL --target microkernel=URL --target unikernel=URL --data DIR [--nats URL] [--supervisor ID …] [--docker-socket PATH] [--port P] [--host H]',
  flags: {
    target: {
      type: 'string',
      multiple: true,
      value: 'NAME=URL',
      description: 'each style by HTTP: monolith, microkernel and unikernel',
    },
    data: dataFlagSpec("the corpus the styles serve (the live load's request mix and poison file)"),
    nats: {
      type: 'string',
      env: 'NATS_URL',
      value: 'URL',
      default: DEFAULT_NATS_URL,
      description: `the supervisors' NATS (the console's nkey seed from ${SEED_ENV})`,
    },
    supervisor: {
      type: 'string',
      multiple: true,
      value: 'ID',
      description: 'a supervisor whose tree the page shows (default microkernel)',
    },
    'docker-socket': {
      type: 'string',
      env: 'KSTYLES_CONSOLE_DOCKER_SOCKET',
      value: 'PATH',
      description: "the Docker engine's socket: container kills (off without it)",
    },
    port: {
      type: 'string',
      env: 'KSTYLES_CONSOLE_PORT',
      value: 'P',
      default: String(CONSOLE_DEFAULT_PORT),
      description: 'HTTP port of the page',
    },
    host: hostFlagSpec('HTTP address (0.0.0.0 in a container)'),
  },
  details: `What it can do: the microkernel's faults (kill, term, hang, slow, crash loop of its servers)
through its supervisor's control API, poison requests by HTTP, the live load and its measured
recovery. Container kills (monolith, unikernel, the microkernel's container, NATS) need the Docker
engine: without --docker-socket, or when the socket does not answer, their buttons are disabled and
say why. In compose: docker compose -f deploy/docker-compose.yml --profile console up -d console
(deploy/README.md).`,
} as const;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(COMMAND, argv);
  if (!parsed) return 0;
  const { flags } = parsed;
  const name = COMMAND.name;
  const targets = parseTargets(flags.target, name);
  const names = targets.map((t) => t.name).sort();
  if (names.join() !== [...STYLES].sort().join()) {
    throw new UsageError(
      `kstyles ${name}: give each style once, --target ${STYLES.map((s) => `${s}=URL`).join(' --target ')}; got ${names.join(', ') || 'none'}.`,
    );
  }
  const urls = Object.fromEntries(targets.map((t) => [t.name, t.url])) as Record<
    (typeof STYLES)[number],
    string
  >;
  const data = requireDataDir(name, flags.data);
  const port = Number(flags.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(
      `kstyles ${name}: --port must be a port number (0 = any free one), got '${flags.port}'.`,
    );
  }
  const socket = flags['docker-socket'];
  const dockerUnavailable = socket
    ? await new DockerFaultDriver(socket).unavailable()
    : 'compose does not mount the Docker socket (opt in: deploy/docker-compose.console-docker.yml; it is root on the host)';
  const seed = process.env[SEED_ENV];
  let server: Awaited<ReturnType<typeof startConsole>>;
  try {
    server = await startConsole({
      port,
      host: flags.host ?? '127.0.0.1',
      urls,
      corpusDir: data,
      nats: { servers: flags.nats ?? DEFAULT_NATS_URL, ...(seed ? { seed } : {}), role: 'console' },
      supervisorIds: flags.supervisor.length > 0 ? flags.supervisor : ['microkernel'],
      menu: deploymentFaultMenu(dockerUnavailable),
      ...(socket && !dockerUnavailable ? { dockerSocket: socket } : {}),
    });
  } catch (err) {
    if (err instanceof PortInUseError) throw new UsageError(`kstyles ${name}: ${err.message}`);
    throw err;
  }
  process.stdout.write(
    `kstyles console: ${server.url} (styles ${STYLES.map((s) => urls[s]).join(', ')}; container kills ${dockerUnavailable ? `off: ${dockerUnavailable}` : `through ${socket}`})\n`,
  );
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await stopped;
  await server.close();
  return 0;
}
