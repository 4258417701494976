/**
 * Helpers of the container tier: the docker CLI, image builds on local or official bases, and polling.
 * Builds use the legacy builder (DOCKER_BUILDKIT=0): it works with both docker clients of this machine, `docker`
 * 28 from the machine image (no buildx) and `docker.io` from apt-get (docs/architecture.md, 'Measured facts
 * about the machine').
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export { REPO_ROOT as REPO } from '../../cli/kit/repo.ts';

import { REPO_ROOT as REPO } from '../../cli/kit/repo.ts';
import { APP_DOCKERFILE, appImageSources } from '../../deploy/app-image.ts';
export const DEPLOY = path.join(REPO, 'deploy');

export const LOCAL_BASES = {
  NODE_BASE: 'kstyles/node-base:local',
  NATS_BASE: 'kstyles/nats-base:local',
  PROMETHEUS_BASE: 'kstyles/prometheus-base:local',
} as const;

export const IMAGES = {
  app: 'kstyles/app:local',
  nats: 'kstyles/nats:local',
  prometheus: 'kstyles/prometheus:local',
  unikernel: 'kstyles-unikernel:latest',
} as const;

export const BUILD_ENV = { DOCKER_BUILDKIT: '0', COMPOSE_DOCKER_CLI_BUILD: '0' } as const;

export type Run = { status: number | null; stdout: string; stderr: string };

export function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const result = spawnSync(command, args, {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    maxBuffer: 64 * 1024 * 1024,
  });
  return {
    status: result.error ? null : result.status,
    stdout: result.stdout ?? '',
    stderr: result.error ? result.error.message : (result.stderr ?? ''),
  };
}

/** Like run, but async: long builds and compose runs must not block the test runner's event loop. */
export function runAsync(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: REPO, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('error', (err) => resolve({ status: null, stdout, stderr: err.message }));
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** runAsync that throws on failure, with the end of the output; resolves to stdout and stderr. */
export async function runChecked(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<string> {
  const result = await runAsync(command, args, env);
  const out = `${result.stdout}${result.stderr}`;
  if (result.status !== 0)
    throw new Error(`${command} ${args.join(' ')} exited ${result.status}:\n${out.slice(-4000)}`);
  return out;
}

/** Why the container tier cannot run here, or undefined when a Docker engine and docker-compose answer. */
function containerTierSkipReason(): string | undefined {
  const version = run('docker', ['version', '--format', '{{.Server.Version}}']);
  if (version.status === null) return 'no docker client on PATH (apt-get install -y docker.io)';
  if (version.status !== 0) {
    const why = version.stderr.trim().split('\n').pop() ?? 'no answer';
    return `no Docker engine answers (${why}); start one, e.g. deploy/ci-docker.sh`;
  }
  const compose = run('docker-compose', ['version', '--short']);
  if (compose.status !== 0) return 'docker-compose is not installed (apt-get install -y docker-compose)';
  return undefined;
}

/** Set by CI (.ci/run): a container tier that cannot run is a failure there, not a skip. */
export const REQUIRE_CONTAINERS_ENV = 'KSTYLES_REQUIRE_CONTAINERS';

/**
 * True when a Docker engine and docker-compose answer. Otherwise registers one stand-in test named
 * `what` that says why: skipped loudly on a developer's machine, failed where CI requires the tier.
 */
export function engineOrStandIn(
  what: string,
  register: (name: string, options: { skip?: string }, fn: () => void) => void,
): boolean {
  const reason = containerTierSkipReason();
  if (!reason) return true;
  if (process.env[REQUIRE_CONTAINERS_ENV] === '1') {
    register(what, {}, () => {
      throw new Error(
        `the container tier is required here (${REQUIRE_CONTAINERS_ENV}=1) but cannot run: ${reason}`,
      );
    });
  } else {
    process.stderr.write(`\n*** SKIPPED: ${what}: ${reason} ***\n\n`);
    register(what, { skip: `SKIPPED: ${reason}` }, () => {});
  }
  return false;
}

export function imageExists(tag: string): boolean {
  return run('docker', ['image', 'inspect', tag]).status === 0;
}

export function imageBytes(tag: string): number {
  return Number(run('docker', ['image', 'inspect', '-f', '{{.Size}}', tag]).stdout.trim());
}

/**
 * Builds the app image from a staged context with only what the image copies: the repository root has no
 * .dockerignore, and sending node_modules and unikernel/dist to the engine costs more than the build.
 */
export async function buildAppImage(bases: Record<string, string>): Promise<void> {
  const context = mkdtempSync(path.join(os.tmpdir(), 'kstyles-app-context-'));
  try {
    for (const entry of appImageSources()) {
      cpSync(path.join(REPO, entry), path.join(context, entry), {
        recursive: true,
        filter: (source) => !source.endsWith('.test.ts') && !source.includes(`${path.sep}node_modules`),
      });
    }
    const args = ['build', '-q', '-t', IMAGES.app, '-f', APP_DOCKERFILE];
    if (bases['NODE_BASE']) args.push('--build-arg', `NODE_BASE=${bases['NODE_BASE']}`);
    await runChecked('docker', [...args, context], BUILD_ENV);
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
}

/** The unikernel's root filesystem (npm run build:unikernel without its own image build and measurements). */
export async function ensureUnikernelRootfs(): Promise<void> {
  if (existsSync(path.join(REPO, 'unikernel/dist/rootfs/app/kstyles-unikernel'))) return;
  await runChecked(process.execPath, [
    '--import',
    'tsx',
    'unikernel/build/build.ts',
    '--no-docker',
    '--no-measure',
  ]);
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** GETs url until it answers 200 (or the bound passes); returns when, in ms since the epoch. */
export async function waitFor200(url: string, boundMs: number, pollMs = 25): Promise<number> {
  const until = Date.now() + boundMs;
  let last = '';
  while (Date.now() < until) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return Date.now();
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(pollMs);
  }
  throw new Error(`${url} did not answer 200 within ${boundMs} ms (last: ${last})`);
}

export type ContainerState = { id: string; pid: number; restarts: number; running: boolean; health: string };

export function containerOf(project: string, service: string): string {
  const out = run('docker', [
    'ps',
    '-aq',
    '--filter',
    `label=com.docker.compose.project=${project}`,
    '--filter',
    `label=com.docker.compose.service=${service}`,
  ]).stdout.trim();
  const id = out.split('\n')[0];
  if (!id) throw new Error(`no container of compose service ${service} in project ${project}`);
  return id;
}

export function inspect(id: string): ContainerState {
  const out = run('docker', [
    'inspect',
    '-f',
    '{{.State.Pid}} {{.RestartCount}} {{.State.Running}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}',
    id,
  ]).stdout.trim();
  const [pid, restarts, running, health] = out.split(' ');
  return {
    id,
    pid: Number(pid),
    restarts: Number(restarts),
    running: running === 'true',
    health: health ?? '',
  };
}
