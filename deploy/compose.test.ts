/**
 * Static checks of the compose deployment: what compose v1 would reject, what a FROM-scratch image cannot
 * run, what the README promises (ports on loopback, profiles), and that Prometheus scrapes every style.
 * The stack itself runs in the container tier (test/containers).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { parseScenario } from '../load/scenario.ts';
import { DEFAULT_TRANSFER } from '../services/ipc/headers.ts';
import { generateKeyPairs, keyPairsEnv, NATS_KEY_ENV } from '../services/microkernel/nats-config.ts';
import { GRAFANA_ADMIN_PASSWORD_ENV, grafanaAdminEnv } from './nats/nats-keys.ts';

const DEPLOY = fileURLToPath(new URL('.', import.meta.url));
const COMPOSE_FILE = path.join(DEPLOY, 'docker-compose.yml');
const CONSOLE_DOCKER_FILE = path.join(DEPLOY, 'docker-compose.console-docker.yml');

type Healthcheck = { test?: string[] | string; start_interval?: string };
type Service = {
  image?: string;
  environment?: Record<string, string>;
  pid?: string;
  cap_add?: string[];
  build?: { context: string; dockerfile?: string; args?: Record<string, string> };
  command?: string[];
  ports?: string[];
  profiles?: string[];
  healthcheck?: Healthcheck;
  restart?: string;
  read_only?: boolean;
  user?: string;
  tmpfs?: string[];
  cap_drop?: string[];
  depends_on?: Record<string, { condition: string }>;
  volumes?: string[];
  expose?: string[];
};
type ComposeFile = { name?: string; version?: string; services: Record<string, Service> };

const compose = parse(readFileSync(COMPOSE_FILE, 'utf8'), { merge: true }) as ComposeFile;
const services = compose.services;
const ONE_SHOT = new Set(['corpus', 'load']);

function findKey(value: unknown, key: string, at = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((item, i) => findKey(item, key, `${at}[${i}]`));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => [
    ...(k === key ? [`${at}.${k}`] : []),
    ...findKey(v, key, `${at}.${k}`),
  ]);
}

describe('deploy/docker-compose.yml', () => {
  it('stays inside what docker-compose 1.29 accepts (no top-level name, no start_interval)', () => {
    assert.equal(compose.name, undefined, 'compose v1 rejects a top-level name:');
    assert.deepEqual(findKey(compose, 'start_interval'), [], 'compose v1 rejects healthcheck.start_interval');
  });

  it('has the services of the stack, Grafana, Jaeger, the load generator and the console behind profiles', () => {
    for (const name of [
      'nats',
      'corpus',
      'monolith',
      'microkernel',
      'unikernel',
      'prometheus',
      'grafana',
      'jaeger',
      'load',
      'console',
    ]) {
      assert.ok(services[name], `service ${name} is missing`);
    }
    const profiled: Record<string, string> = {
      grafana: 'grafana',
      jaeger: 'traces',
      load: 'load',
      console: 'console',
    };
    for (const [name, service] of Object.entries(services)) {
      assert.deepEqual(service.profiles, profiled[name] ? [profiled[name]] : undefined, name);
    }
  });

  it('leaves tracing off unless KSTYLES_OTLP_ENDPOINT names a collector, for every style', () => {
    for (const name of ['monolith', 'microkernel', 'unikernel']) {
      const env = services[name]?.environment ?? {};
      // An empty OTEL_EXPORTER_OTLP_ENDPOINT counts as unset (services/telemetry/setup.ts): no SDK loads.
      assert.equal(env['OTEL_EXPORTER_OTLP_ENDPOINT'], '$' + '{KSTYLES_OTLP_ENDPOINT:-}', name);
      assert.equal(env['OTEL_TRACES_SAMPLER'], '$' + '{OTEL_TRACES_SAMPLER:-parentbased_traceidratio}', name);
      assert.match(env['OTEL_TRACES_SAMPLER_ARG'] ?? '', /^\$\{OTEL_TRACES_SAMPLER_ARG:-0?\.\d+\}$/, name);
    }
    // The microkernel keeps its NATS seeds beside the tracing variables.
    assert.ok(services['microkernel']?.environment?.['KSTYLES_NATS_DRIVER_SEED']);
    // What the README tells people to set with --profile traces reaches Jaeger's OTLP/HTTP port.
    assert.ok(services['jaeger']?.expose?.includes('4318'));
    assert.match(
      readFileSync(path.join(DEPLOY, 'README.md'), 'utf8'),
      /KSTYLES_OTLP_ENDPOINT=http:\/\/jaeger:4318/,
    );
  });

  it('runs Jaeger from its official image, hardened, as its non-root user', () => {
    const jaeger = services['jaeger']!;
    assert.match(jaeger.image ?? '', /^\$\{JAEGER_IMAGE:-jaegertracing\/jaeger:2\.\d+\.\d+\}$/);
    assert.equal(jaeger.read_only, true);
    assert.deepEqual(jaeger.cap_drop, ['ALL']);
    assert.match(jaeger.user ?? '', /^[1-9]\d*:\d+$/);
  });

  it('gives every long-running service an exec-form healthcheck and a restart policy', () => {
    for (const [name, service] of Object.entries(services)) {
      if (ONE_SHOT.has(name)) {
        assert.equal(service.restart, 'no', `${name} runs once`);
        continue;
      }
      const test = service.healthcheck?.test;
      assert.ok(Array.isArray(test), `${name}: healthcheck.test must be a list (exec form)`);
      assert.equal(
        test[0],
        'CMD',
        `${name}: exec form is ["CMD", ...]; CMD-SHELL needs a shell the images lack`,
      );
      assert.ok(String(test[1]).startsWith('/'), `${name}: absolute program path`);
      assert.equal(service.restart, 'unless-stopped', name);
    }
  });

  it('publishes the documented ports on 127.0.0.1 only', () => {
    // "127.0.0.1:${KSTYLES_<SERVICE>_PORT:-P}:P": movable host port, fixed container port.
    const mapping = (service: string, port: number) =>
      '127.0.0.1:$' + `{KSTYLES_${service.toUpperCase()}_PORT:-${port}}:${port}`;
    const expected: Record<string, string> = {
      monolith: mapping('monolith', 8081),
      microkernel: mapping('microkernel', 8082),
      unikernel: mapping('unikernel', 8083),
      prometheus: mapping('prometheus', 9090),
      grafana: mapping('grafana', 3000),
      console: mapping('console', 8084),
      jaeger: mapping('jaeger', 16686),
    };
    for (const [name, mapping] of Object.entries(expected)) {
      assert.ok(services[name]?.ports?.includes(mapping), `${name} publishes ${mapping}`);
    }
    for (const [name, service] of Object.entries(services)) {
      for (const port of service.ports ?? []) assert.match(port, /^127\.0\.0\.1:/, `${name}: ${port}`);
    }
  });

  it('runs the unikernel read-only, as non-root, with a tmpfs /tmp, from its own Dockerfile', () => {
    const unikernel = services['unikernel']!;
    assert.equal(unikernel.read_only, true);
    assert.match(unikernel.user ?? '', /^[1-9]\d*(:\d+)?$/, 'a numeric non-root user');
    assert.ok(unikernel.tmpfs?.includes('/tmp'));
    assert.equal(unikernel.healthcheck?.test?.[1], '/app/kstyles-unikernel');
    const build = unikernel.build!;
    assert.ok(existsSync(path.resolve(DEPLOY, build.context, build.dockerfile ?? 'Dockerfile')));
  });

  it('turns chaos on for the monolith (the poison demo) and waits for the corpus', () => {
    assert.ok(services['monolith']?.command?.includes('--chaos'));
    for (const name of ['monolith', 'microkernel', 'unikernel']) {
      assert.equal(services[name]?.depends_on?.['corpus']?.condition, 'service_completed_successfully', name);
    }
    assert.equal(services['microkernel']?.depends_on?.['nats']?.condition, 'service_healthy');
  });

  it("runs the microkernel's transfer from KSTYLES_TRANSFER, grant unless told otherwise", () => {
    const environment = (services['microkernel'] as Service & { environment?: Record<string, string> })
      .environment;
    const match = /^\$\{KSTYLES_TRANSFER:-(\w+)\}$/.exec(environment?.['KSTYLES_TRANSFER'] ?? '');
    assert.ok(match, JSON.stringify(environment));
    assert.equal(match[1], DEFAULT_TRANSFER);
  });

  it('builds from Dockerfiles whose base images are build arguments defaulting to official images', () => {
    const officialDefault: Record<string, RegExp> = {
      NODE_BASE: /^node:\d+-slim$/,
      NATS_BASE: /^nats:2[.\d]*-(alpine|scratch)$/,
      PROMETHEUS_BASE: /^prom\/prometheus:/,
      GRAFANA_BASE: /^grafana\/grafana:/,
    };
    for (const [name, service] of Object.entries(services)) {
      if (!service.build || name === 'unikernel') continue;
      const dockerfile = path.resolve(
        DEPLOY,
        service.build.context,
        service.build.dockerfile ?? 'Dockerfile',
      );
      assert.ok(existsSync(dockerfile), `${name}: ${dockerfile}`);
      const text = readFileSync(dockerfile, 'utf8');
      const arg = /^ARG (\w+_BASE)=(\S+)$/m.exec(text);
      assert.ok(arg, `${name}: the base image is an ARG with a default`);
      assert.match(arg[2]!, officialDefault[arg[1]!]!, `${name}: default base ${arg[2]}`);
      assert.match(text, new RegExp(`^FROM \\$\\{${arg[1]}\\}`, 'm'));
      assert.match(
        service.build.args?.[arg[1]!] ?? '',
        new RegExp(`^\\$\\{${arg[1]}:-`),
        `${name}: compose passes ${arg[1]}`,
      );
      assert.doesNotMatch(
        text,
        /^RUN [^[]/m,
        `${name}: RUN must be exec form (the local bases have no shell)`,
      );
    }
  });

  it('gives the load generator a scenario that parses and names only its own targets', () => {
    const command = services['load']?.command ?? [];
    const scenarioArg = command[command.indexOf('--scenario') + 1] ?? '';
    const file = /^\/scenarios\/\$\{KSTYLES_LOAD_SCENARIO:-([\w.-]+)\}$/.exec(scenarioArg)?.[1];
    assert.ok(file, `--scenario ${scenarioArg}`);
    assert.ok(services['load']?.volumes?.includes('./scenarios:/scenarios:ro'));
    const scenario = parseScenario(readFileSync(path.join(DEPLOY, 'scenarios', file), 'utf8'), file);
    const targets = command.flatMap((arg, i) =>
      command[i - 1] === '--target' ? [arg.split('=')[0] ?? ''] : [],
    );
    assert.deepEqual(targets, ['monolith', 'microkernel', 'unikernel']);
    assert.ok(scenario.faults.length > 0);
    for (const fault of scenario.faults) {
      assert.ok(targets.includes(fault.target.split(':')[0] ?? ''), `${fault.target} is a load target`);
      assert.equal(
        fault.kind,
        'poison',
        'the load container can inject poison only (no NATS credentials, no host PIDs)',
      );
    }
  });

  it('runs the console beside the stack: the styles by HTTP, NATS as its own user, no Docker socket', () => {
    const consoleService = services['console']!;
    const command = consoleService.command ?? [];
    const after = (flag: string) => command.flatMap((arg, i) => (command[i - 1] === flag ? [arg] : []));
    assert.equal(consoleService.image, services['monolith']?.image, 'the app image');
    assert.equal(command[0], 'console');
    assert.deepEqual(after('--target'), [
      'monolith=http://monolith:8081',
      'microkernel=http://microkernel:8082',
      'unikernel=http://unikernel:8083',
    ]);
    assert.deepEqual(after('--nats'), ['nats://nats:4222']);
    assert.deepEqual(after('--supervisor'), ['microkernel']);
    assert.deepEqual(after('--data'), ['/data/corpus']);
    assert.ok(consoleService.volumes?.includes('corpus:/data:ro'));
    // Its own NATS user, and no other role's seed: it can reach the control API and events only.
    assert.deepEqual(Object.keys(consoleService.environment ?? {}), [NATS_KEY_ENV.seed('console')]);
    assert.ok(services['nats']?.environment?.[NATS_KEY_ENV.publicKey('console')], 'nats knows its key');
    assert.equal(consoleService.read_only, true);
    assert.deepEqual(consoleService.cap_drop, ['ALL']);
    assert.equal(consoleService.user, undefined, "the image's non-root user");
    const docker = (consoleService.volumes ?? []).filter((v) => v.includes('docker.sock'));
    assert.deepEqual(docker, [], 'compose does not mount the Docker socket by default');
    assert.equal(consoleService.pid, undefined);
    for (const style of ['monolith', 'microkernel', 'unikernel'])
      assert.equal(consoleService.depends_on?.[style]?.condition, 'service_healthy', style);
  });

  it('opts the console into the Docker engine only through its override file', () => {
    const override = parse(readFileSync(CONSOLE_DOCKER_FILE, 'utf8')) as ComposeFile;
    assert.deepEqual(Object.keys(override.services), ['console']);
    const consoleService = override.services['console']!;
    assert.ok(consoleService.volumes?.includes('/var/run/docker.sock:/var/run/docker.sock'));
    assert.equal(consoleService.environment?.['KSTYLES_CONSOLE_DOCKER_SOCKET'], '/var/run/docker.sock');
    // Container kills signal host PIDs (a docker kill would be a manual stop): the host's PID
    // namespace and CAP_KILL, as root in the container, and no other capability.
    assert.equal(consoleService.pid, 'host');
    assert.deepEqual(consoleService.cap_add, ['KILL']);
    assert.equal(consoleService.user, '0:0');
  });

  it('is accepted by docker-compose 1.29 (docker-compose config), when it is installed', (t) => {
    const probe = spawnSync('docker-compose', ['version', '--short'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      t.skip('docker-compose is not installed (apt-get install -y docker-compose)');
      return;
    }
    // `config` insists that build contexts exist; the unikernel's is a build output (git-ignored), absent
    // from a clean clone until `npm run build:unikernel`.
    mkdirSync(path.join(DEPLOY, '..', 'unikernel', 'dist'), { recursive: true });
    const config = (env: NodeJS.ProcessEnv) =>
      spawnSync(
        'docker-compose',
        [
          '-f',
          COMPOSE_FILE,
          '-f',
          CONSOLE_DOCKER_FILE,
          '--profile',
          'grafana',
          '--profile',
          'load',
          '--profile',
          'console',
          '--profile',
          'traces',
          'config',
          '-q',
        ],
        {
          encoding: 'utf8',
          env,
        },
      );
    const withoutKeys = { ...process.env };
    for (const name of Object.keys(withoutKeys))
      if (/^KSTYLES_NATS_\w+_(NKEY|SEED)$/.test(name) || name === GRAFANA_ADMIN_PASSWORD_ENV)
        delete withoutKeys[name];
    const withKeys = config({ ...withoutKeys, ...keyPairsEnv(generateKeyPairs()), ...grafanaAdminEnv() });
    assert.equal(withKeys.status, 0, withKeys.stderr);
    if (!existsSync(path.join(DEPLOY, '.env'))) {
      // Without deploy/.env and without the variables, compose stops and says how to make the keys.
      const refused = config(withoutKeys);
      assert.notEqual(refused.status, 0);
      assert.match(
        refused.stderr,
        /(KSTYLES_NATS_\w+_(NKEY|SEED)|KSTYLES_GRAFANA_ADMIN_PASSWORD).*deploy\/nats\/nats-keys\.ts/s,
      );
    }
  });
});

describe('deploy/prometheus/prometheus.yml', () => {
  type ScrapeConfig = { job_name: string; static_configs: { targets: string[] }[] };
  const config = parse(readFileSync(path.join(DEPLOY, 'prometheus/prometheus.yml'), 'utf8')) as {
    scrape_configs: ScrapeConfig[];
  };
  const targets = config.scrape_configs.flatMap((job) => job.static_configs.flatMap((s) => s.targets));

  it('scrapes every style, the microkernel supervisor and servers, and the load generator', () => {
    for (const target of ['monolith:8081', 'microkernel:8082', 'unikernel:8083', 'load:9464']) {
      assert.ok(targets.includes(target), `scrapes ${target}`);
    }
    assert.ok(config.scrape_configs.some((job) => job.job_name === 'microkernel-supervisor'));
    assert.ok(config.scrape_configs.some((job) => job.job_name === 'microkernel-servers'));
  });

  it('scrapes only hosts that are compose services', () => {
    for (const target of targets) {
      const host = target.split(':')[0]!;
      assert.ok(host === 'localhost' || services[host], `${target}: no compose service '${host}'`);
    }
  });

  it('passes promtool check config, when promtool is installed', (t) => {
    const result = spawnSync(
      'promtool',
      ['check', 'config', path.join(DEPLOY, 'prometheus/prometheus.yml')],
      {
        encoding: 'utf8',
      },
    );
    if (result.error) {
      t.skip('promtool is not installed (apt-get install -y prometheus)');
      return;
    }
    assert.equal(result.status, 0, result.stderr + result.stdout);
  });
});
