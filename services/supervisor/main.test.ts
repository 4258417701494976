import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SupervisorControlClient, SupervisorUnavailableError } from './control-client.ts';
import { isProcessAlive, runtimeStateDir } from './runtime-state.ts';
import type { SupervisorSpec } from './spec.ts';
import type { SupervisorStatus } from './supervisor.ts';
import { freePort, NATS_SERVER_BIN, startNatsServer, type TestNatsServer } from './testing/nats-server.ts';

/** Alive and not a zombie: a killed child of a dead parent is a zombie until init reaps it. */
function isRunning(pid: number): boolean {
  if (!isProcessAlive(pid)) return false;
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

const portRefuses = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const MAIN = path.join(import.meta.dirname, 'main.ts');
const KSTYLES = path.join(ROOT, 'bin', 'kstyles.js');
const FIXTURE = path.join(import.meta.dirname, 'fixtures', 'child.mjs');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'kstyles-sup-main-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

type Run = { code: number; stdout: string; stderr: string };

function kstyles(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [KSTYLES, ...args],
      { cwd: ROOT, env: { ...process.env, NATS_URL: '' } },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** Starts `main.ts --spec FILE` and stops it after the test, pass or fail. */
function startSupervisorProcess(t: { after(fn: () => unknown): void }, spec: unknown, name: string) {
  const file = path.join(tmp, `${name}.json`);
  writeFileSync(file, JSON.stringify(spec));
  const proc = spawn(process.execPath, ['--import', 'tsx', MAIN, '--spec', file], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stdout.resume();
  proc.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  t.after(() => stopProcess(proc, exited));
  return { proc, exited, stderr: () => stderr };
}

async function stopProcess(proc: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 8000);
  await exited;
  clearTimeout(timer);
}

/** The children as the last `kstyles ps` saw them: a wait that times out says what it saw. */
let lastSeen = 'no kstyles ps yet';

async function until<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last seen: ${lastSeen}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function psStatus(id: string): Promise<SupervisorStatus | undefined> {
  const run = await kstyles('ps', '--json', '--id', id);
  const entry = (JSON.parse(run.stdout) as { supervisors: { status?: SupervisorStatus }[] }).supervisors[0];
  lastSeen = JSON.stringify(
    entry?.status?.children.map(({ name, state, restarts, lastExit }) => ({
      name,
      state,
      restarts,
      lastExit,
    })) ?? null,
  );
  return entry?.status;
}

// The timeouts bound a hang, not the speed: a loaded CI line took 22 s of the 50 s this had before.
describe('supervisor process, ps and chaos', { timeout: 150_000 }, () => {
  let nats: TestNatsServer;
  before(async () => {
    nats = await startNatsServer();
  });
  after(() => nats?.stop());

  test('ps and chaos drive a running supervisor; SIGTERM stops it cleanly', async (t) => {
    const id = `proc-${process.pid}`;
    const webPort = await freePort();
    const spec: SupervisorSpec = {
      id,
      nats: { servers: nats.url },
      metricsPort: 0,
      // A hang window of 10 × 200 ms: a restarted child, cold on a loaded CI machine, may be silent for
      // 600 ms and be taken for hung, a second restart the wait below would not recognise.
      heartbeat: { intervalMs: 200, timeoutMs: 100, misses: 10 },
      info: { web: `http://127.0.0.1:${webPort}/` },
      children: [
        {
          name: 'svc',
          command: process.execPath,
          args: [FIXTURE, '--nats', nats.url, '--service', 'svc'],
          health: { kind: 'nats-ping', service: 'svc' },
        },
        {
          name: 'web',
          command: process.execPath,
          args: [FIXTURE, '--http', String(webPort)],
          health: { kind: 'http', url: `http://127.0.0.1:${webPort}/` },
        },
      ],
    };
    const sup = startSupervisorProcess(t, spec, 'ps-chaos');
    const stateFile = path.join(runtimeStateDir(), `${id}.json`);
    await until('the runtime-state file', () => (existsSync(stateFile) ? true : undefined));

    const status = await until('both children up', async () => {
      const s = await psStatus(id);
      return s?.children.every((c) => c.state === 'up') ? s : undefined;
    });
    assert.equal(status.pid, sup.proc.pid);

    const table = await kstyles('ps', '--id', id);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /SUPERVISOR\s+SERVICE\s+PID\s+SPARE\s+STATE\s+RESTARTS\s+LAST EXIT\s+UPTIME/);
    assert.match(table.stdout, new RegExp(`${id}\\s+svc\\s+\\d+\\s+-\\s+up\\s+0`));
    const discovered = await kstyles('ps', '--json', '--nats', nats.url);
    assert.ok(JSON.parse(discovered.stdout).supervisors.some((e: { id: string }) => e.id === id));

    const state = JSON.parse((await import('node:fs')).readFileSync(stateFile, 'utf8'));
    const metrics = await (await fetch(state.metricsUrl)).text();
    assert.match(metrics, /kstyles_supervisor_service_up\{service="svc"\} 1/);

    const kill = await kstyles('chaos', `${id}:svc`, 'kill');
    assert.equal(kill.code, 0, kill.stderr);
    assert.match(kill.stdout, /sent SIGKILL to .*:svc/);
    await until('svc restarted after kill', async () => {
      const s = await psStatus(id);
      const svc = s?.children.find((c) => c.name === 'svc');
      return svc?.state === 'up' && svc.restarts === 1 && svc.lastExit?.signal === 'SIGKILL'
        ? true
        : undefined;
    });

    const hang = await kstyles('chaos', `${id}:web`, 'hang');
    assert.equal(hang.code, 0, hang.stderr);
    await until('web restarted after hang', async () => {
      const s = await psStatus(id);
      const web = s?.children.find((c) => c.name === 'web');
      return web?.state === 'up' && web.lastExit?.reason === 'hung' ? true : undefined;
    });

    const unknown = await kstyles('chaos', `${id}:nope`, 'kill');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown service 'nope'.*known services: svc, web/);

    const pids = (await psStatus(id))!.children.map((c) => c.pid!);
    sup.proc.kill('SIGTERM');
    assert.equal(await sup.exited, 0);
    assert.equal(existsSync(stateFile), false, 'runtime-state file removed');
    for (const pid of pids) assert.equal(isProcessAlive(pid), false, `child ${pid} stopped`);
  });

  test('a SIGKILLed supervisor leaves nothing behind: its nats-server child dies, its ports are free', async (t) => {
    const natsPort = await freePort();
    const webPort = await freePort();
    const sup = startSupervisorProcess(
      t,
      {
        id: `linked-${process.pid}`,
        children: [
          {
            name: 'nats',
            command: NATS_SERVER_BIN,
            args: ['-a', '127.0.0.1', '-p', String(natsPort)],
            health: { kind: 'tcp', host: '127.0.0.1', port: natsPort },
          },
          {
            name: 'web',
            command: process.execPath,
            args: [FIXTURE, '--http-held'],
            socket: { host: '127.0.0.1', port: webPort },
            health: { kind: 'http', url: `http://127.0.0.1:${webPort}/` },
          },
        ],
      },
      'linked',
    );
    const pids = await until('both children ready', () => {
      const out = sup.stderr();
      const nats = /nats started pid=(\d+)/.exec(out);
      return /web ready/.test(out) && nats ? Number(nats[1]) : undefined;
    });
    // The PID the supervisor reports is nats-server itself (setpriv execs it), not a launcher.
    assert.match(readFileSync(`/proc/${pids}/cmdline`, 'utf8'), /nats-server/);
    assert.equal(await portRefuses(natsPort), false);
    sup.proc.kill('SIGKILL');
    await sup.exited;
    await until('nats-server gone', () => (isRunning(pids) ? undefined : true), 5000);
    // nats-server is multi-threaded: its leader shows as a zombie while other threads still hold the
    // socket, so the port is freed a moment after (longer on a loaded machine).
    await until(
      'the NATS port free for the next supervisor',
      async () => ((await portRefuses(natsPort)) ? true : undefined),
      5000,
    );
    // The web child holds the socket too: it goes with the supervisor's death signal, a moment later.
    await until(
      'the held socket closed with its supervisor and its child',
      async () => ((await portRefuses(webPort)) ? true : undefined),
      5000,
    );
  });

  test('a crash loop exhausts the intensity: the process exits non-zero saying it gave up', async (t) => {
    const sup = startSupervisorProcess(
      t,
      {
        id: `loop-${process.pid}`,
        intensity: { maxRestarts: 2, periodMs: 60_000 },
        backoff: { initialMs: 20 },
        children: [
          { name: 'bad', command: process.execPath, args: [FIXTURE, '--exit-after', '0', '--code', '7'] },
        ],
      },
      'loop',
    );
    assert.equal(await sup.exited, 1);
    assert.match(sup.stderr(), /bad gave_up/);
    assert.match(sup.stderr(), /gave up: more than 2 restarts within 60000 ms/);
  });

  test('an invalid spec exits 2 naming the field', async (t) => {
    const sup = startSupervisorProcess(
      t,
      { id: 'bad-spec', children: [{ name: 'a', command: 'x', restart: 'sometimes' }] },
      'bad-spec',
    );
    assert.equal(await sup.exited, 2);
    assert.match(sup.stderr(), /children\[0\]\.restart must be one of permanent, transient, temporary/);
  });

  test('chaos and ps against a supervisor that is not running', async () => {
    const chaos = await kstyles('chaos', 'ghost:svc', 'kill', '--nats', nats.url);
    assert.equal(chaos.code, 1);
    assert.match(chaos.stderr, /no supervisor 'ghost' answered.*not running/);
    const ps = await kstyles('ps', '--json', '--nats', nats.url, '--id', 'ghost');
    assert.equal(ps.code, 1);
    assert.match(JSON.parse(ps.stdout).supervisors[0].error, /not running/);
  });
});

describe('a NATS URL carrying user:pass@', { timeout: 90_000 }, () => {
  const PASSWORD = 'p@ss:w rd';
  let nats: TestNatsServer;
  let withCredentials: string;
  before(async () => {
    nats = await startNatsServer({
      config: `authorization { user: "sup", password: ${JSON.stringify(PASSWORD)} }\n`,
    });
    withCredentials = `nats://sup:${encodeURIComponent(PASSWORD)}@127.0.0.1:${nats.port}`;
  });
  after(() => nats?.stop());

  test('ps and chaos connect with the decoded credentials; explicit options win over them', async (t) => {
    const id = `auth-${process.pid}`;
    const webPort = await freePort();
    const spec: SupervisorSpec = {
      id,
      nats: { servers: nats.url, user: 'sup', pass: PASSWORD },
      heartbeat: { intervalMs: 200, timeoutMs: 100, misses: 3 },
      children: [
        {
          name: 'web',
          command: process.execPath,
          args: [FIXTURE, '--http', String(webPort)],
          health: { kind: 'http', url: `http://127.0.0.1:${webPort}/` },
        },
      ],
    };
    startSupervisorProcess(t, spec, 'auth');
    const status = await until('web up, seen through the URL credentials', async () => {
      const run = await kstyles('ps', '--json', '--nats', withCredentials, '--id', id);
      const entry = JSON.parse(run.stdout).supervisors[0] as { status?: SupervisorStatus };
      return entry.status?.children[0]?.state === 'up' ? entry.status : undefined;
    });
    assert.equal(status.supervisorId, id);

    const term = await kstyles('chaos', `${id}:web`, 'term', '--nats', withCredentials);
    assert.equal(term.code, 0, term.stderr);
    assert.match(term.stdout, new RegExp(`sent SIGTERM to ${id}:web`));

    const anonymous = await kstyles('ps', '--json', '--nats', nats.url, '--id', id);
    assert.equal(anonymous.code, 1);
    assert.match(
      JSON.parse(anonymous.stdout).supervisors[0].error,
      /cannot reach NATS at nats:\/\/127\.0\.0\.1:\d+: .*authorization/i,
    );

    await assert.rejects(
      SupervisorControlClient.connect({ servers: withCredentials, pass: 'wrong' }),
      (err: Error) => {
        assert.ok(err instanceof SupervisorUnavailableError);
        assert.match(err.message, /authorization/i);
        assert.doesNotMatch(err.message, /p%40ss|p@ss/, 'the password is not echoed');
        return true;
      },
    );
    const explicit = await SupervisorControlClient.connect({
      servers: `nats://nobody:nothing@127.0.0.1:${nats.port}`,
      user: 'sup',
      pass: PASSWORD,
    });
    assert.equal((await explicit.status(id)).supervisorId, id);
    await explicit.close();
  });
});
