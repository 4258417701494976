/**
 * The container tier: builds the images from the project's Dockerfiles (on the local bases of
 * deploy/offline-bases.sh unless KSTYLES_BASES=official), brings up deploy/docker-compose.yml through
 * docker-compose (v1.29 or v2; test/containers/compose.ts, which explains a failed start), and checks
 *   - the shared HTTP contract suite against all three styles in their containers;
 *   - resilience: the microkernel's driver SIGKILLed through the supervisor's control API (restarted,
 *     no failed requests), the monolith crashed by the poison request and the unikernel's process
 *     SIGKILLed by host PID (both restarted by the restart policy; downtime measured);
 *   - that Prometheus scraped every style;
 *   - the lab console (profile console): the page, its container buttons disabled without the Docker
 *     socket, a crash loop through the microkernel's supervisor as the console's NATS user;
 * and writes each image's size and each style's container start → first 200 to
 * deploy/container-figures.json. Without a Docker engine it skips, saying why.
 *
 * It takes minutes (vfs storage driver): run it with a longer per-file timeout than the unit tiers',
 * e.g. `npm run test:containers -- --test-timeout=1500000` (deploy/ci-docker.sh does).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { STYLES, type Style } from '../../cli/kit/defaults.ts';
import { grafanaAdminEnv } from '../../deploy/nats/nats-keys.ts';
import { measureSecurity } from '../../load/security-facts.ts';
import { SHELL_PATHS } from '../../services/contract/security-metrics.ts';
import { httpContract } from '../../services/contract/testing/contract-suite.ts';
import { testCorpus } from '../../services/contract/testing/test-corpus.ts';
import { encodeFilePath } from '../../services/corpus/corpus.ts';
import { generateKeyPairs, keyPairsEnv } from '../../services/microkernel/nats-config.ts';
import { SUPERVISOR_SEED_ENV, SupervisorControlClient } from '../../services/supervisor/control-client.ts';
import { freePort } from '../../services/supervisor/testing/nats-server.ts';
import { ComposeProject } from './compose.ts';
import {
  BUILD_ENV,
  buildAppImage,
  containerOf,
  DEPLOY,
  engineOrStandIn,
  ensureUnikernelRootfs,
  IMAGES,
  imageBytes,
  imageExists,
  inspect,
  LOCAL_BASES,
  REPO,
  run,
  runChecked,
  sleep,
  waitFor200,
} from './docker.ts';

/** The corpus the shared contract suite expects (services/contract/testing/test-corpus.ts). */
const CORPUS = { seed: '7', count: '40' } as const;
const PROJECT = `kstyles-ct-${process.pid}`;
const FIGURES_FILE = path.join(DEPLOY, 'container-figures.json');
/** The Dockerfiles' own defaults (deploy/compose.test.ts checks that they are official images). */
const OFFICIAL_BASES = Object.fromEntries(
  ['app', 'nats', 'prometheus'].flatMap((name) => {
    const text = readFileSync(path.join(DEPLOY, `docker/${name}.Dockerfile`), 'utf8');
    const arg = /^ARG (\w+_BASE)=(\S+)$/m.exec(text);
    return arg ? [[arg[1]!, arg[2]!]] : [];
  }),
);

type Stack = {
  project: ComposeProject;
  urls: Record<Style, string>;
  console: string;
  prometheus: string;
  nats: string;
  /** The supervisor's nkey seed: the control API's credentials. */
  supervisorSeed: string;
  /** The id of a compose service's container. */
  containerOf(service: string): string;
  down(): Promise<void>;
};

type Figures = {
  measuredAt: string;
  bases: string;
  buildSeconds: Record<string, number>;
  imageBytes: Record<string, number>;
  stackUpSeconds?: number;
  startToFirst200Ms: Partial<Record<Style, number>>;
  crashToServingMs: Partial<Record<Style, number>>;
  microkernelDriverRestart?: { failedRequests: number; requests: number; recoveredMs: number };
};

const figures: Figures = {
  measuredAt: new Date().toISOString(),
  bases: process.env['KSTYLES_BASES'] === 'official' ? 'official' : 'local',
  buildSeconds: {},
  imageBytes: {},
  startToFirst200Ms: {},
  crashToServingMs: {},
};

async function timed<T>(what: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await work();
  figures.buildSeconds[what] = Math.round((performance.now() - started) / 100) / 10;
  return result;
}

/** `keysEnv`: compose v1 interpolates the whole file for a build too, so the deployment's secrets must be set. */
async function buildImages(keysEnv: Record<string, string>): Promise<Record<string, string>> {
  // Official mode names the registry images explicitly: deploy/.env (written by offline-bases.sh) would
  // otherwise point compose at the local ones.
  let bases: Record<string, string> = { ...OFFICIAL_BASES };
  if (figures.bases === 'local') {
    if (!Object.values(LOCAL_BASES).every(imageExists)) {
      await timed('offline-bases', () => runChecked('bash', [path.join(DEPLOY, 'offline-bases.sh')]));
    }
    bases = { ...LOCAL_BASES };
  }
  await timed('unikernel rootfs', ensureUnikernelRootfs);
  await timed('app image', () => buildAppImage(bases));
  await timed('nats, prometheus, unikernel images', () =>
    runChecked(
      'docker-compose',
      [
        '-p',
        PROJECT,
        '-f',
        path.join(DEPLOY, 'docker-compose.yml'),
        'build',
        'nats',
        'prometheus',
        'unikernel',
      ],
      { ...BUILD_ENV, ...bases, ...keysEnv },
    ),
  );
  for (const [name, tag] of Object.entries(IMAGES)) figures.imageBytes[name] = imageBytes(tag);
  return bases;
}

async function startStack(): Promise<Stack> {
  // A deployment's secrets, as deploy/nats/nats-keys.ts makes them for deploy/.env: the NATS keys, and
  // Grafana's admin password (Grafana is a profile this tier does not start, but compose v1 interpolates
  // every service, and the variable has no default).
  const natsKeys = generateKeyPairs();
  const secrets = { ...keyPairsEnv(natsKeys), ...grafanaAdminEnv() };
  const bases = await buildImages(secrets);
  const ports = {
    KSTYLES_MONOLITH_PORT: await freePort(),
    KSTYLES_MICROKERNEL_PORT: await freePort(),
    KSTYLES_UNIKERNEL_PORT: await freePort(),
    KSTYLES_PROMETHEUS_PORT: await freePort(),
    KSTYLES_NATS_PORT: await freePort(),
    KSTYLES_NATS_MONITOR_PORT: await freePort(),
    KSTYLES_CONSOLE_PORT: await freePort(),
  };
  const environment: Record<string, string> = {
    ...bases,
    ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
    KSTYLES_CORPUS_SEED: CORPUS.seed,
    KSTYLES_CORPUS_COUNT: CORPUS.count,
    ...secrets,
  };
  const project = new ComposeProject(PROJECT, path.join(DEPLOY, 'docker-compose.yml'), environment);
  const started = performance.now();
  try {
    await project.up(240_000);
  } catch (err) {
    project.down();
    throw err;
  }
  const urls = {
    monolith: `http://127.0.0.1:${ports.KSTYLES_MONOLITH_PORT}`,
    microkernel: `http://127.0.0.1:${ports.KSTYLES_MICROKERNEL_PORT}`,
    unikernel: `http://127.0.0.1:${ports.KSTYLES_UNIKERNEL_PORT}`,
  };
  for (const style of STYLES) await waitFor200(`${urls[style]}/readyz`, 120_000, 200);
  figures.stackUpSeconds = Math.round((performance.now() - started) / 100) / 10;
  return {
    project,
    urls,
    console: `http://127.0.0.1:${ports.KSTYLES_CONSOLE_PORT}`,
    prometheus: `http://127.0.0.1:${ports.KSTYLES_PROMETHEUS_PORT}`,
    nats: `nats://127.0.0.1:${ports.KSTYLES_NATS_PORT}`,
    supervisorSeed: natsKeys.supervisor.seed,
    containerOf: (service) => project.compose(['ps', '-q', service]).stdout.trim(),
    down: async () => {
      project.down();
    },
  };
}

function printFigures(): void {
  writeFileSync(FIGURES_FILE, `${JSON.stringify(figures, null, 2)}\n`);
  const mb = (bytes: number | undefined) => (bytes ? `${(bytes / 1e6).toFixed(1)} MB` : '-');
  const ms = (value: number | undefined) => (value === undefined ? '-' : `${value} ms`);
  const lines = [
    `container figures (${figures.bases} bases) → ${path.relative(REPO, FIGURES_FILE)}`,
    '| style | image | image size | container start → first 200 | crash → serving again |',
    '|---|---|---|---|---|',
    ...STYLES.map((style) => {
      const image = style === 'unikernel' ? 'unikernel' : 'app';
      const driver = figures.microkernelDriverRestart;
      const recovery =
        style === 'microkernel' && driver
          ? `driver only: back in ${driver.recoveredMs} ms, ${driver.failedRequests} failed requests`
          : ms(figures.crashToServingMs[style]);
      return `| ${style} | ${IMAGES[image]} | ${mb(figures.imageBytes[image])} | ${ms(figures.startToFirst200Ms[style])} | ${recovery} |`;
    }),
    `| (nats) | ${IMAGES.nats} | ${mb(figures.imageBytes['nats'])} | | |`,
    `| (prometheus) | ${IMAGES.prometheus} | ${mb(figures.imageBytes['prometheus'])} | | |`,
    `build seconds: ${JSON.stringify(figures.buildSeconds)}; stack up: ${figures.stackUpSeconds ?? '-'} s`,
    figures.microkernelDriverRestart
      ? `microkernel driver SIGKILL: ${figures.microkernelDriverRestart.failedRequests} failed of ${figures.microkernelDriverRestart.requests} requests, driver ready again after ${figures.microkernelDriverRestart.recoveredMs} ms`
      : '',
  ];
  process.stdout.write(`\n${lines.join('\n')}\n`);
}

if (engineOrStandIn('container tier (deploy/docker-compose.yml in Docker)', it)) {
  let stack: Stack | undefined;
  let stackError: unknown;
  const ready = async (): Promise<Stack> => {
    if (!stack) throw new Error(`the compose stack did not come up: ${String(stackError)}`);
    return stack;
  };

  before(
    async () => {
      try {
        stack = await startStack();
      } catch (err) {
        stackError = err;
        process.stderr.write(`${String(err)}\n`);
      }
    },
    { timeout: 1_200_000 },
  );

  after(
    async () => {
      printFigures();
      await stack?.down();
    },
    { timeout: 120_000 },
  );

  for (const style of STYLES) {
    httpContract(`${style} in its container`, style, async (corpus) => ({
      baseUrl: (await ready()).urls[style],
      corpus,
      stop: async () => {},
    }));
  }

  describe('the Security row, measured in containers', () => {
    it('each parser measures its container as the report shows it, matching what the engine exports', async () => {
      const { urls, nats, supervisorSeed, containerOf } = await ready();
      const measured = await measureSecurity(
        STYLES.map((style) => ({ name: style, url: urls[style] })),
        { timeoutMs: 10_000, natsUrl: nats, env: { [SUPERVISOR_SEED_ENV]: supervisorSeed } },
      );
      for (const style of STYLES) {
        const { hostile, security } = measured[style]!;
        assert.ok(security, style);
        assert.equal(hostile?.leaked, 0, style);
        assert.deepEqual(
          security.sources,
          ['metrics'],
          `${style}: behind the engine's port, /proc is not ours`,
        );
        assert.equal(security.uid, style === 'unikernel' ? 65532 : 1000, style);
        assert.deepEqual(security.capabilities, [], `${style}: cap_drop ALL`);
        assert.equal(security.noNewPrivs, true, `${style}: no-new-privileges`);
        assert.deepEqual(
          security.writable?.filter((w) => w.writable).map((w) => w.place),
          ['tmp'],
          `${style}: read-only root, code and data; tmpfs /tmp`,
        );
        assert.deepEqual(security.credentials, style === 'microkernel' ? ['KSTYLES_NATS_SEED'] : [], style);
        // The image as the engine exports the container's filesystem: every entry but directories.
        const listing = execFileSync('sh', ['-c', `docker export ${containerOf(style)} | tar -tvf -`], {
          encoding: 'utf8',
          maxBuffer: 256 * 1024 * 1024,
        })
          .split('\n')
          .filter(Boolean);
        const entries = listing.filter((line) => !line.startsWith('d'));
        const files = security.image?.files ?? 0;
        assert.equal(
          security.image?.name,
          style === 'unikernel' ? 'kstyles-unikernel' : 'kstyles/app',
          style,
        );
        assert.ok(
          Math.abs(files - entries.length) <= 8,
          `${style}: counted ${files}, exported ${entries.length}`,
        );
        // `tar -tv` lines end with the path (without its leading /), a symbolic link's with ` -> target`.
        const shellInImage = SHELL_PATHS.some((shell) =>
          listing.some((line) => new RegExp(` ${shell.slice(1)}( -> .*)?$`).test(line)),
        );
        assert.equal(
          (security.shells ?? []).length > 0,
          shellInImage,
          `${style}: a shell iff the image has one`,
        );
      }
      const microkernel = measured['microkernel']!.security!;
      assert.ok(microkernel.isolation, `isolation measured: ${microkernel.notes?.join('; ')}`);
      for (const role of microkernel.isolation.roles) assert.deepEqual(role.unexpectedAllowed, [], role.role);
      assert.equal(microkernel.openDataFiles, undefined, 'the gateway has no data root');
      assert.ok((measured['monolith']!.security!.openDataFiles ?? 0) >= 1, 'the monolith reads data itself');
      assert.equal(measured['unikernel']!.security!.code?.bundled, true);
    });
  });

  describe('resilience in containers', () => {
    it('microkernel: a driver SIGKILLed through the supervisor control API is restarted with no failed request', async () => {
      const { urls, nats, supervisorSeed } = await ready();
      const corpus = await testCorpus();
      const small = corpus.manifest.files.filter((f) => !f.poison && f.size > 0 && f.size < 64 * 1024);
      assert.ok(small.length > 0);
      const control = await SupervisorControlClient.connect({
        servers: nats,
        seed: supervisorSeed,
        timeoutMs: 5000,
      });
      try {
        const before = await control.status('microkernel');
        const driverBefore = before.children.find((c) => c.name === 'driver');
        assert.ok(driverBefore?.pid, 'the supervisor reports a running driver');

        let stop = false;
        let requests = 0;
        const failures: string[] = [];
        const client = async (worker: number) => {
          for (let i = worker; !stop; i++) {
            const file = small[i % small.length]!;
            requests++;
            try {
              const res = await fetch(`${urls.microkernel}/files/${encodeFilePath(file.path)}`, {
                signal: AbortSignal.timeout(10_000),
              });
              const body = Buffer.from(await res.arrayBuffer());
              if (res.status !== 200 || body.length !== file.size)
                failures.push(`${file.path}: HTTP ${res.status}`);
            } catch (err) {
              failures.push(`${file.path}: ${(err as Error).message}`);
            }
            await sleep(20);
          }
        };
        const clients = [0, 1, 2, 3].map(client);
        await sleep(500);
        const killedAt = Date.now();
        const killed = await control.kill('microkernel', 'driver');
        assert.equal(killed.pid, driverBefore.pid);

        let recoveredMs: number | undefined;
        const until = Date.now() + 60_000;
        while (Date.now() < until) {
          const driver = (await control.status('microkernel')).children.find((c) => c.name === 'driver');
          if (
            driver &&
            driver.pid !== driverBefore.pid &&
            driver.state === 'up' &&
            driver.readyForMs !== null
          ) {
            recoveredMs = Date.now() - killedAt;
            break;
          }
          await sleep(100);
        }
        await sleep(1000);
        stop = true;
        await Promise.all(clients);
        const after = (await control.status('microkernel')).children.find((c) => c.name === 'driver')!;
        figures.microkernelDriverRestart = {
          failedRequests: failures.length,
          requests,
          recoveredMs: recoveredMs ?? -1,
        };
        assert.ok(recoveredMs !== undefined, 'the supervisor restarted the driver within 60 s');
        assert.equal(after.restarts, driverBefore.restarts + 1, 'one restart counted');
        assert.ok(requests > 20, `the load kept going (${requests} requests)`);
        assert.deepEqual(failures.slice(0, 5), [], `${failures.length} of ${requests} requests failed`);
      } finally {
        await control.close();
      }
    });

    it('monolith: the poison request crashes the container and the restart policy brings it back', async () => {
      const { urls } = await ready();
      const id = containerOf(PROJECT, 'monolith');
      const before = inspect(id);
      const crashedAt = Date.now();
      const poison = await fetch(`${urls.monolith}/files/chaos/poison.bin`, {
        signal: AbortSignal.timeout(5000),
      }).then(
        (res) => `HTTP ${res.status}`,
        (err: Error) => `failed (${err.message})`,
      );
      const servingAt = await waitFor200(`${urls.monolith}/healthz`, 60_000);
      figures.crashToServingMs.monolith = servingAt - crashedAt;
      const afterCrash = inspect(id);
      assert.equal(
        afterCrash.restarts,
        before.restarts + 1,
        `the container was restarted (poison: ${poison})`,
      );
      assert.notEqual(afterCrash.pid, before.pid);
    });

    it('unikernel: SIGKILL of its host PID (not docker kill) makes the restart policy reboot it', async () => {
      const { urls } = await ready();
      const id = containerOf(PROJECT, 'unikernel');
      const before = inspect(id);
      assert.ok(before.pid > 0);
      const killedAt = Date.now();
      process.kill(before.pid, 'SIGKILL');
      await sleep(50);
      const servingAt = await waitFor200(`${urls.unikernel}/healthz`, 60_000);
      figures.crashToServingMs.unikernel = servingAt - killedAt;
      const afterKill = inspect(id);
      assert.equal(afterKill.restarts, before.restarts + 1, 'the container was restarted');
      assert.notEqual(afterKill.pid, before.pid);
    });
  });

  describe('Prometheus in the stack', () => {
    type Vector = { metric: Record<string, string>; value: [number, string] }[];
    const query = async (expr: string): Promise<Vector> => {
      const { prometheus } = await ready();
      const res = await fetch(`${prometheus}/api/v1/query?query=${encodeURIComponent(expr)}`);
      const body = (await res.json()) as { status: string; data: { result: Vector }; error?: string };
      assert.equal(body.status, 'success', body.error);
      return body.data.result;
    };

    it('has scraped every style, and the microkernel file and driver servers', async () => {
      const until = Date.now() + 30_000;
      let up: Vector = [];
      for (;;) {
        up = await query('up == 1');
        const jobs = new Set(up.map((s) => `${s.metric['job']}/${s.metric['kstyles_component']}`));
        const wanted = [
          'microkernel-supervisor/supervisor',
          'monolith/kernel',
          'microkernel/gateway',
          'unikernel/kernel',
          'microkernel-servers/fs',
          'microkernel-servers/driver',
        ];
        if (wanted.every((job) => jobs.has(job))) break;
        assert.ok(
          Date.now() < until,
          `targets up after 30 s: ${[...jobs].join(', ')}; wanted ${wanted.join(', ')}`,
        );
        await sleep(1000);
      }
      // Over a window: the crash tests restarted two styles, whose new processes start their counters afresh.
      const served = await query(
        'sum by (style) (max_over_time(kstyles_http_request_duration_seconds_count{route="files"}[30m]))',
      );
      assert.deepEqual(served.map((s) => s.metric['style']).sort(), [...STYLES].sort());
    });

    it('has scraped the supervisor: the driver restart counted, every service up', async () => {
      const until = Date.now() + 30_000;
      for (;;) {
        const restarts = await query(
          'max_over_time(kstyles_supervisor_restarts_total{service="driver"}[30m])',
        );
        const total = restarts.reduce((sum, s) => sum + Number(s.value[1]), 0);
        if (total >= 1) break;
        assert.ok(Date.now() < until, 'kstyles_supervisor_restarts_total{service="driver"} ≥ 1 within 30 s');
        await sleep(1000);
      }
      const up = await query('max_over_time(kstyles_supervisor_service_up[30m])');
      assert.deepEqual(up.map((s) => s.metric['service']).sort(), ['driver', 'fs', 'gateway']);
    });
  });

  describe('the lab console in compose (profile console)', () => {
    it('serves the page, disables container kills without the Docker socket, and crash-loops the driver through the supervisor', async () => {
      const { project, console: url, nats, supervisorSeed } = await ready();
      const up = project.compose(['--profile', 'console', 'up', '-d', '--no-deps', 'console']);
      assert.equal(up.status, 0, `${up.stdout}${up.stderr}`);
      const control = await SupervisorControlClient.connect({
        servers: nats,
        seed: supervisorSeed,
        timeoutMs: 5000,
      });
      try {
        await waitFor200(`${url}/healthz`, 120_000, 200);
        // The first page may come before the console has read the supervisor's status.
        let html = '';
        const until = Date.now() + 30_000;
        while (!/<tr data-child="driver"><th scope="row">driver<\/th><td class="pid">\d+/.test(html)) {
          assert.ok(Date.now() < until, `the page shows the microkernel's driver with its PID:\n${html}`);
          await sleep(500);
          html = await (await fetch(url)).text();
        }
        for (const target of ['docker:monolith', 'docker:unikernel', 'docker:microkernel', 'docker:nats']) {
          assert.match(
            html,
            new RegExp(`data-target="${target}" data-kind="kill"[^>]* disabled title="[^"]*Docker socket`),
            target,
          );
        }
        const before = (await control.status('microkernel')).children.find((c) => c.name === 'driver')!;
        const res = await fetch(`${url}/fault`, {
          method: 'POST',
          headers: { accept: 'application/json' },
          body: new URLSearchParams({ target: 'microkernel:driver', kind: 'crashloop', times: '1' }),
        });
        const fault = (await res.json()) as { ok: boolean; message: string };
        assert.ok(fault.ok, fault.message);
        let after = before;
        const back = Date.now() + 60_000;
        while (!(after.restarts === before.restarts + 2 && after.state === 'up')) {
          assert.ok(
            Date.now() < back,
            `the driver back after the kill and one failed start: ${JSON.stringify(after)}`,
          );
          await sleep(250);
          after = (await control.status('microkernel')).children.find((c) => c.name === 'driver')!;
        }
        assert.equal(after.lastExit?.code, 70, 'the armed start exited at once');
      } finally {
        await control.close();
        project.compose(['--profile', 'console', 'rm', '-f', '-s', '-v', 'console']);
      }
    });
  });

  describe('start-up figures', () => {
    it('measures container start → first 200 for each style and prints the table', async () => {
      const { urls } = await ready();
      const corpus = await testCorpus();
      const file = corpus.manifest.files.find((f) => !f.poison && f.size > 0 && f.size < 4096)!;
      for (const style of STYLES) {
        const id = containerOf(PROJECT, style);
        const stopped = run('docker', ['stop', '-t', '10', id]);
        assert.equal(stopped.status, 0, stopped.stderr);
        const startedAt = Date.now();
        const startResult = run('docker', ['start', id]);
        assert.equal(startResult.status, 0, startResult.stderr);
        const servingAt = await waitFor200(`${urls[style]}/files/${encodeFilePath(file.path)}`, 180_000);
        figures.startToFirst200Ms[style] = servingAt - startedAt;
      }
      for (const style of STYLES) assert.ok((figures.startToFirst200Ms[style] ?? 0) > 0, style);
    });
  });
}
