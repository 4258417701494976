import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '@nats-io/transport-node';
import {
  SupervisorControlClient,
  SupervisorControlError,
  SupervisorUnavailableError,
} from './control-client.ts';
import { SocketBindError } from './held-socket.ts';
import { type ChildSpec, parseSupervisorSpec, SpecError, type SupervisorSpec } from './spec.ts';
import {
  backoffDelayMs,
  STARTED_PATH,
  Supervisor,
  type SupervisorEvent,
  type SupervisorOptions,
} from './supervisor.ts';
import { type ConnectionResult, errorCounts, freshConnectionLoad } from './testing/fresh-connection-load.ts';
import { freePort, startNatsServer, type TestNatsServer } from './testing/nats-server.ts';

const FIXTURE = path.join(import.meta.dirname, 'fixtures', 'child.mjs');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'kstyles-sup-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function child(name: string, args: string[] = [], extra: Partial<ChildSpec> = {}): ChildSpec {
  return {
    name,
    command: process.execPath,
    args: [FIXTURE, '--name', name, ...args],
    shutdownMs: 2000,
    ...extra,
  };
}

/** A child that is ready only once it serves HTTP, i.e. once its signal handlers are installed. */
async function httpChild(
  name: string,
  args: string[] = [],
  extra: Partial<ChildSpec> = {},
): Promise<ChildSpec> {
  const port = await freePort();
  return child(name, ['--http', String(port), ...args], {
    health: { kind: 'http', url: `http://127.0.0.1:${port}/` },
    ...extra,
  });
}

const quiet = () =>
  new Writable({
    write(_chunk, _enc, cb) {
      cb();
    },
  });

/** A started supervisor that is stopped after the test, pass or fail. */
async function supervise(
  t: { after(fn: () => unknown): void },
  spec: SupervisorSpec,
  probes?: SupervisorOptions['probes'],
): Promise<Supervisor> {
  const sup = new Supervisor(spec, { stdout: quiet(), stderr: quiet(), ...(probes ? { probes } : {}) });
  t.after(() => sup.stop());
  await sup.start();
  return sup;
}

function nextEvent(
  sup: Supervisor,
  match: (e: SupervisorEvent) => boolean,
  timeoutMs = 5000,
): Promise<SupervisorEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sup.off('event', listener);
      reject(new Error(`no matching supervisor event within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (e: SupervisorEvent) => {
      if (!match(e)) return;
      clearTimeout(timer);
      sup.off('event', listener);
      resolve(e);
    };
    sup.on('event', listener);
  });
}

function collect(sup: Supervisor): SupervisorEvent[] {
  const events: SupervisorEvent[] = [];
  sup.on('event', (e: SupervisorEvent) => events.push(e));
  return events;
}

const FAST = { intervalMs: 200, timeoutMs: 100, misses: 3, startTimeoutMs: 5000 };
/**
 * FAST with a 2 s hang window, for the tests whose subject is not the hang: a child or this process
 * stalled half a second by a loaded CI machine would be taken for hung there and restarted, adding
 * events those tests count (main.test.ts does the same).
 */
const STEADY = { ...FAST, misses: 10 };

describe('spec validation', () => {
  test('names the bad field', () => {
    const base = { id: 'x', children: [{ name: 'a', command: 'node' }] };
    assert.throws(() => parseSupervisorSpec({ ...base, id: 'bad id' }), /id must use only letters/);
    assert.throws(() => parseSupervisorSpec({ ...base, strategy: 'all_for_one' }), /strategy must be one of/);
    assert.throws(
      () => parseSupervisorSpec({ ...base, metricsHost: 'metrics.example' }),
      /metricsHost must be an IP address to listen on/,
    );
    assert.equal(parseSupervisorSpec(base).metricsHost, '127.0.0.1');
    assert.equal(parseSupervisorSpec({ ...base, metricsHost: '::' }).metricsHost, '::');
    assert.throws(
      () =>
        parseSupervisorSpec({ ...base, children: [{ name: 'a', command: 'node', restart: 'sometimes' }] }),
      /children\[0\]\.restart must be one of permanent, transient, temporary/,
    );
    assert.throws(
      () =>
        parseSupervisorSpec({
          ...base,
          children: [{ name: 'a', command: 'node', health: { kind: 'nats-ping', service: 'a' } }],
        }),
      (err: Error) => err instanceof SpecError && /children\[0\]\.health .*no 'nats'/.test(err.message),
    );
    assert.throws(
      () => parseSupervisorSpec({ ...base, children: [base.children[0], base.children[0]] }),
      /used twice/,
    );
    assert.equal(parseSupervisorSpec(base).children[0]?.restart, 'permanent');
    assert.equal(parseSupervisorSpec({ ...base, heartbeat: { misses: 4 } }).heartbeat.busyMisses, 12);
    assert.throws(
      () => parseSupervisorSpec({ ...base, heartbeat: { misses: 4, busyMisses: 3 } }),
      /heartbeat\.busyMisses must be a number from 4 to/,
    );
    const withHealth = (health: unknown) =>
      parseSupervisorSpec({ ...base, children: [{ name: 'a', command: 'node', health }] }).children[0]
        ?.health;
    assert.deepEqual(withHealth({ kind: 'http', url: 'http://127.0.0.1:1/', timeoutMs: 2000 }), {
      kind: 'http',
      url: 'http://127.0.0.1:1/',
      timeoutMs: 2000,
    });
    const withSocket = (socket: unknown) =>
      parseSupervisorSpec({ ...base, children: [{ name: 'a', command: 'node', socket }] }).children[0]
        ?.socket;
    assert.deepEqual(withSocket({ host: '::', port: 8082 }), { host: '::', port: 8082 });
    assert.equal(parseSupervisorSpec(base).children[0]?.socket, undefined);
    assert.throws(
      () => withSocket({ host: 'localhost', port: 1 }),
      /children\[0\]\.socket\.host must be an IP/,
    );
    assert.throws(
      () => withSocket({ host: '127.0.0.1', port: 0 }),
      /children\[0\]\.socket\.port must be a number from 1/,
    );
    assert.throws(() => withSocket('127.0.0.1:1'), /children\[0\]\.socket must be an object \{host, port\}/);
    const withCrashVar = (crashAtStartEnv: unknown) =>
      parseSupervisorSpec({ ...base, children: [{ name: 'a', command: 'node', crashAtStartEnv }] })
        .children[0]?.crashAtStartEnv;
    assert.equal(withCrashVar('KSTYLES_DRIVER_CRASH_AT_START'), 'KSTYLES_DRIVER_CRASH_AT_START');
    assert.equal(parseSupervisorSpec(base).children[0]?.crashAtStartEnv, undefined);
    for (const bad of ['', '1X', 'A-B', 7]) {
      assert.throws(
        () => withCrashVar(bad),
        /children\[0\]\.crashAtStartEnv must be an environment variable name/,
      );
    }
    for (const timeoutMs of [0, -5, 'soon', 60_001]) {
      assert.throws(
        () => withHealth({ kind: 'tcp', host: '127.0.0.1', port: 1, timeoutMs }),
        /children\[0\]\.health\.timeoutMs must be a number from 1 to 60000/,
      );
    }
  });

  test('backoff: immediate first restart, then growing with bounded jitter, capped', () => {
    const backoff = { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.2, resetAfterMs: 0 };
    assert.equal(backoffDelayMs(0, backoff), 0);
    assert.equal(
      backoffDelayMs(1, backoff, () => 0.5),
      100,
    );
    assert.equal(
      backoffDelayMs(3, backoff, () => 0.5),
      400,
    );
    assert.equal(
      backoffDelayMs(3, backoff, () => 0),
      320,
    );
    assert.equal(
      backoffDelayMs(3, backoff, () => 1),
      480,
    );
    assert.equal(
      backoffDelayMs(10, backoff, () => 0.5),
      1000,
    );
  });
});

/**
 * Steady fresh-connection load on a supervised HTTP child while it is SIGKILLed and restarted: the
 * results, and when the supervisor saw it exit and ready again.
 */
async function killUnderLoad(
  t: { after(fn: () => unknown): void },
  id: string,
  spec: ChildSpec,
  url: string,
): Promise<{ results: ConnectionResult[]; exitedAt: number; readyAt: number }> {
  const sup = await supervise(t, { id, children: [spec] });
  await sup.whenReady();
  const load = freshConnectionLoad(() => url, { rate: 200, durationMs: 2500 });
  await sleep(700);
  const exited = nextEvent(sup, (e) => e.type === 'exited');
  const ready = nextEvent(sup, (e) => e.type === 'ready' && e.restarts === 1);
  sup.kill(spec.name, 'SIGKILL');
  const exitedAt = Date.parse((await exited).time);
  const readyAt = Date.parse((await ready).time);
  return { results: await load, exitedAt, readyAt };
}

// The timeouts bound a hang, not the speed: a loaded CI line took 20 s of the 40 s these had before.
describe('supervisor without NATS', { timeout: 120_000 }, () => {
  test('a held socket: a SIGKILLed child refuses no connection, those sent while it was down wait and succeed', async (t) => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/`;
    const { results, exitedAt, readyAt } = await killUnderLoad(
      t,
      'held',
      child('web', ['--http-held'], {
        socket: { host: '127.0.0.1', port },
        health: { kind: 'http', url },
      }),
      url,
    );
    const counts = errorCounts(results);
    assert.equal(counts['ECONNREFUSED'] ?? 0, 0, JSON.stringify(counts));
    const whileDown = results.filter((r) => r.startedAt > exitedAt && r.startedAt < readyAt);
    assert.ok(whileDown.length > 0, 'requests were sent while no child ran');
    assert.deepEqual(
      whileDown.filter((r) => r.status !== 200),
      [],
      'requests sent while no child ran waited for the next one',
    );
    const failed = results.filter((r) => r.status !== 200);
    assert.ok(
      failed.every((r) => r.startedAt <= exitedAt),
      `only requests in flight on the killed child fail: ${JSON.stringify(counts)}`,
    );
  });

  test('without a held socket the same SIGKILL refuses connections (what the held socket prevents)', async (t) => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/`;
    const { results } = await killUnderLoad(
      t,
      'unheld',
      child('web', ['--http', String(port)], { health: { kind: 'http', url } }),
      url,
    );
    assert.ok((errorCounts(results)['ECONNREFUSED'] ?? 0) > 0, JSON.stringify(errorCounts(results)));
  });

  test('a socket that cannot be bound fails start() naming the address; nothing is started', async (t) => {
    const port = await freePort();
    const first = await supervise(t, {
      id: 'bind-1',
      children: [
        child('web', ['--http-held'], {
          socket: { host: '127.0.0.1', port },
          health: { kind: 'http', url: `http://127.0.0.1:${port}/` },
        }),
      ],
    });
    await first.whenReady();
    const second = new Supervisor(
      { id: 'bind-2', children: [child('web', [], { socket: { host: '127.0.0.1', port } })] },
      { stdout: quiet(), stderr: quiet() },
    );
    await assert.rejects(second.start(), (err: Error) => {
      assert.ok(err instanceof SocketBindError);
      assert.match(err.message, new RegExp(`cannot bind 127\\.0\\.0\\.1:${port} for 'web' \\(EADDRINUSE\\)`));
      return true;
    });
    assert.equal(second.status().children[0]?.pid, null);
  });

  test('a crashed child is restarted; status, events and metrics show it', async (t) => {
    const sup = await supervise(t, {
      id: 'crash',
      intensity: { maxRestarts: 50, periodMs: 10_000 },
      children: [child('a', ['--exit-after', '300', '--code', '3'])],
    });
    await sup.whenReady();
    const firstPid = sup.status().children[0]?.pid;
    const exited = await nextEvent(sup, (e) => e.type === 'exited');
    assert.equal(exited.code, 3);
    assert.equal(exited.reason, 'crashed');
    assert.equal(exited.pid, firstPid);
    const ready = await nextEvent(sup, (e) => e.type === 'ready');
    assert.notEqual(ready.pid, firstPid);
    assert.equal(ready.restarts, 1);
    assert.equal(typeof ready.recoveryMs, 'number');
    const status = sup.status().children[0]!;
    assert.equal(status.state, 'up');
    assert.equal(status.lastExit?.code, 3);
    assert.equal(status.lastExit?.reason, 'crashed');
    const metrics = await sup.registry.metrics();
    assert.match(metrics, /kstyles_supervisor_restarts_total\{service="a",reason="crashed"\} [1-9]/);
    assert.match(metrics, /kstyles_supervisor_service_up\{service="a"\} 1/);
    assert.match(metrics, /kstyles_supervisor_recovery_seconds_count [1-9]/);
    assert.match(metrics, /process_start_time_seconds/);
  });

  test('metricsHost: loopback only by default; 0.0.0.0 answers on every address', async (t) => {
    // 127.0.0.2 is another address of the loopback interface on Linux: a 127.0.0.1 listener refuses it.
    const other = (url: string) => url.replace('127.0.0.1', '127.0.0.2');
    const loopback = await supervise(t, { id: 'm-lo', metricsPort: 0, children: [child('a')] });
    assert.equal((await fetch(loopback.metricsUrl!)).status, 200);
    await assert.rejects(fetch(other(loopback.metricsUrl!)));
    const every = await supervise(t, {
      id: 'm-all',
      metricsPort: 0,
      metricsHost: '0.0.0.0',
      children: [child('a')],
    });
    assert.match(every.metricsUrl!, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const res = await fetch(other(every.metricsUrl!));
    assert.equal(res.status, 200);
    assert.match(await res.text(), /kstyles_supervisor_service_up/);
  });

  test('GET /started: 503 naming the children it waits for, then 200 for good, through a child restart', async (t) => {
    // The child's health is a port this test serves: the child is ready exactly while it listens.
    const healthPort = await freePort();
    const health = http.createServer((_req, res) => res.end('ok'));
    t.after(() => health.close());
    const sup = await supervise(t, {
      id: 'started',
      metricsPort: 0,
      heartbeat: { intervalMs: 100, timeoutMs: 80, misses: 2 },
      children: [child('a', [], { health: { kind: 'http', url: `http://127.0.0.1:${healthPort}/` } })],
    });
    const started = sup.metricsUrl!.replace(/\/metrics$/, STARTED_PATH);
    const waiting = await fetch(started);
    assert.equal(waiting.status, 503);
    assert.equal(await waiting.text(), 'starting: waiting for a to be ready\n');

    health.listen(healthPort, '127.0.0.1');
    await sup.whenReady();
    const up = await fetch(started);
    assert.equal(up.status, 200);
    assert.equal(await up.text(), 'started\n');

    // The child's check fails from now on: the supervisor kills it as hung and its new start waits.
    const restarting = nextEvent(sup, (e) => e.type === 'restarting' && e.service === 'a');
    health.close();
    health.closeAllConnections();
    await restarting;
    assert.notEqual(sup.status().children[0]?.state, 'up');
    const during = await fetch(started);
    assert.equal(during.status, 200, 'a child restarting does not make the tree unstarted');
    await during.text();
  });

  test('crash loop: backoff gaps grow, then the intensity limit gives up and stops everything', async (t) => {
    const counter = path.join(tmp, 'crashloop.count');
    const sup = await supervise(t, {
      id: 'loop',
      // A long period: on a loaded machine five slow starts must still fall within it.
      intensity: { maxRestarts: 4, periodMs: 60_000 },
      backoff: { initialMs: 60, factor: 2, jitter: 0.2, maxMs: 5000 },
      children: [child('other'), child('a', ['--crash-times', '100', '--counter', counter])],
    });
    const events = collect(sup);
    assert.equal(await sup.done, 'gave_up');
    const delays = events.filter((e) => e.type === 'restarting').map((e) => e.delayMs!);
    assert.equal(delays.length, 4);
    assert.equal(delays[0], 0);
    for (let i = 1; i < delays.length; i++) assert.ok(delays[i]! > delays[i - 1]!, `delays grow: ${delays}`);
    // The real gap between a crash and the next start is at least the planned delay.
    const aEvents = events.filter((e) => e.service === 'a');
    for (let i = 0; i < aEvents.length; i++) {
      const e = aEvents[i]!;
      if (e.type !== 'restarting') continue;
      const exited = aEvents.slice(0, i).findLast((x) => x.type === 'exited')!;
      const started = aEvents.slice(i).find((x) => x.type === 'started')!;
      assert.ok(Date.parse(started.time) - Date.parse(exited.time) >= e.delayMs! - 5);
    }
    assert.equal(events.filter((e) => e.type === 'gave_up').length, 1);
    const status = sup.status();
    assert.equal(status.phase, 'gave_up');
    assert.equal(status.children.find((c) => c.name === 'other')?.state, 'stopped');
    assert.equal(status.children.find((c) => c.name === 'other')?.pid, null);
  });

  test('crashloop on demand: the next N starts exit at once with growing backoff, then the child serves again', async (t) => {
    const crashVar = 'KSTYLES_TEST_CRASH_AT_START';
    const spec = await httpChild('a', ['--crash-at-start-env', crashVar], {
      crashAtStartEnv: crashVar,
      // Never passed on: a child that inherited it would crash at its very first start.
      env: { [crashVar]: 'from the spec' },
    });
    const sup = await supervise(t, {
      id: 'armed',
      heartbeat: STEADY,
      intensity: { maxRestarts: 10, periodMs: 60_000 },
      backoff: { initialMs: 50, factor: 2, jitter: 0, maxMs: 5000 },
      children: [spec, child('plain')],
    });
    await sup.whenReady();
    const pid = sup.status().children[0]!.pid;
    assert.throws(() => sup.crashloop('a', 0), /"starts" must be a whole number from 1 to 1000, got 0/);
    assert.throws(() => sup.crashloop('plain', 3), /service 'plain' has no crash-at-start hook/);
    const events = collect(sup);
    const ready = nextEvent(sup, (e) => e.type === 'ready' && e.service === 'a', 20_000);
    assert.deepEqual(sup.crashloop('a', 3), { service: 'a', pid, starts: 3 });
    assert.equal(sup.status().children[0]!.crashStartsLeft, 3);
    assert.equal((await ready).restarts, 4, 'the kill and three failed starts');
    const own = events.filter((e) => e.service === 'a');
    assert.deepEqual(
      own.filter((e) => e.type === 'exited').map((e) => e.signal ?? e.code),
      ['SIGKILL', 70, 70, 70],
    );
    assert.deepEqual(
      own.filter((e) => e.type === 'started').map((e) => e.message),
      [
        'crashloop: start 1 of 3 exits at once',
        'crashloop: start 2 of 3 exits at once',
        'crashloop: start 3 of 3 exits at once',
        undefined,
      ],
    );
    assert.deepEqual(
      own.filter((e) => e.type === 'restarting').map((e) => e.delayMs),
      [0, 50, 100, 200],
    );
    const status = sup.status().children[0]!;
    assert.equal(status.state, 'up');
    assert.equal(status.restarts, 4);
    assert.equal(status.crashStartsLeft, 0);
    assert.equal(status.lastExit?.code, 70);
    assert.equal(sup.status().children[1]!.restarts, 0, 'the other child was left alone');
  });

  test('permanent, transient and temporary follow OTP semantics', async (t) => {
    const sup = await supervise(t, {
      id: 'types',
      intensity: { maxRestarts: 100, periodMs: 10_000 },
      children: [
        child('trans-ok', ['--exit-after', '150', '--code', '0'], { restart: 'transient' }),
        child('temp-bad', ['--exit-after', '150', '--code', '1'], { restart: 'temporary' }),
        child('trans-bad', ['--exit-after', '150', '--code', '1'], { restart: 'transient' }),
        child('perm-ok', ['--exit-after', '150', '--code', '0'], { restart: 'permanent' }),
      ],
    });
    await Promise.all([
      nextEvent(sup, (e) => e.type === 'exited' && e.service === 'trans-ok'),
      nextEvent(sup, (e) => e.type === 'exited' && e.service === 'temp-bad'),
      nextEvent(sup, (e) => e.type === 'ready' && e.service === 'trans-bad' && e.restarts >= 1),
      nextEvent(sup, (e) => e.type === 'ready' && e.service === 'perm-ok' && e.restarts >= 1),
    ]);
    const byName = Object.fromEntries(sup.status().children.map((c) => [c.name, c]));
    assert.equal(byName['trans-ok']?.state, 'stopped');
    assert.equal(byName['trans-ok']?.restarts, 0);
    assert.equal(byName['temp-bad']?.state, 'failed');
    assert.equal(byName['temp-bad']?.restarts, 0);
    assert.ok(byName['trans-bad']!.restarts >= 1);
    assert.ok(byName['perm-ok']!.restarts >= 1);
    assert.match(await sup.registry.metrics(), /restarts_total\{service="perm-ok",reason="exited"\} [1-9]/);
  });

  test('rest_for_one: a crash restarts the child and every child after it, not the ones before', async (t) => {
    const record = path.join(tmp, 'rest.record');
    const rec = (name: string) => httpChild(name, ['--record', record]);
    const sup = await supervise(t, {
      id: 'rest',
      strategy: 'rest_for_one',
      heartbeat: STEADY,
      children: await Promise.all([rec('a'), rec('b'), rec('c'), rec('d')]),
    });
    await sup.whenReady();
    const before = Object.fromEntries(sup.status().children.map((c) => [c.name, c.pid]));
    const events = collect(sup);
    sup.kill('b', 'SIGKILL');
    await nextEvent(sup, (e) => e.type === 'ready' && e.service === 'd');
    const after = Object.fromEntries(sup.status().children.map((c) => [c.name, c.pid]));
    assert.equal(after['a'], before['a']);
    for (const name of ['b', 'c', 'd']) assert.notEqual(after[name], before[name], `${name} restarted`);
    // Later children are stopped in reverse order, then everything starts again in order.
    assert.deepEqual(readFileSync(record, 'utf8').trim().split('\n'), ['d term', 'c term']);
    const starts = events.filter((e) => e.type === 'started').map((e) => e.service);
    assert.deepEqual(starts, ['b', 'c', 'd']);
    const restarting = events.filter((e) => e.type === 'restarting').map((e) => `${e.service}:${e.reason}`);
    assert.deepEqual(restarting, ['b:crashed', 'c:sibling', 'd:sibling']);
  });

  test('stop: reverse order, SIGKILL after the shutdown timeout', async (t) => {
    const record = path.join(tmp, 'stop.record');
    const sup = await supervise(t, {
      id: 'stop',
      heartbeat: STEADY,
      children: [
        await httpChild('a', ['--record', record]),
        await httpChild('b', ['--record', record]),
        await httpChild('c', ['--record', record, '--ignore-term'], { shutdownMs: 300 }),
      ],
    });
    await sup.whenReady();
    const events = collect(sup);
    const began = Date.now();
    await sup.stop();
    assert.ok(Date.now() - began >= 300, 'waited for the shutdown timeout');
    assert.deepEqual(readFileSync(record, 'utf8').trim().split('\n'), ['c term', 'b term', 'a term']);
    const exits = events.filter((e) => e.type === 'exited');
    assert.deepEqual(
      exits.map((e) => [e.service, e.reason, e.signal ?? e.code]),
      [
        ['c', 'shutdown', 'SIGKILL'],
        ['b', 'shutdown', 0],
        ['a', 'shutdown', 0],
      ],
    );
    assert.ok(sup.status().children.every((c) => c.state === 'stopped' && c.pid === null));
  });

  test('control: unknown service names the known ones; kill of a stopped child is refused', async (t) => {
    const sup = await supervise(t, {
      id: 'ctl',
      children: [child('a'), child('b', [], { restart: 'temporary' })],
    });
    await sup.whenReady();
    assert.throws(() => sup.kill('zzz'), /unknown service 'zzz' in supervisor 'ctl'; known services: a, b/);
    assert.throws(() => sup.kill('a', 'SIGNOPE'), /unknown signal 'SIGNOPE'/);
    sup.kill('b', 'SIGTERM');
    await nextEvent(sup, (e) => e.type === 'exited' && e.service === 'b');
    assert.throws(() => sup.kill('b'), /has no running process/);
  });
});

describe('supervisor with NATS', { timeout: 120_000 }, () => {
  let nats: TestNatsServer;
  before(async () => {
    nats = await startNatsServer();
  });
  after(() => nats?.stop());

  const natsChild = (name: string) =>
    child(name, ['--nats', nats.url, '--service', name], { health: { kind: 'nats-ping', service: name } });

  test('a health check answered late inside the hang window is life; silence for the window is a hang', async (t) => {
    // Checks every 200 ms with a 100 ms timeout, a hang window of 6 × 200 ms. All three are ready at
    // once, then busy: `late` answers each later check after 300 ms (3 × the check timeout, a quarter of
    // the window: with 3 × 200 ms, a 300 ms stall of a loaded CI machine took it for hung), `silent`
    // after 5 s; `patient` always answers after 1.5 s, past its window, and waits that long by its own
    // health timeoutMs (4 s: a check answered a stalled half-second late is still an answer).
    const heartbeat = { ...FAST, misses: 6 };
    const late = await httpChild('late', ['--http-delay-ms', '300', '--http-busy-once-ready']);
    const silent = await httpChild('silent', ['--http-delay-ms', '5000', '--http-busy-once-ready']);
    const patient = await httpChild('patient', ['--http-delay-ms', '1500']);
    patient.health = { ...patient.health!, timeoutMs: 4000 } as ChildSpec['health'];
    const sup = await supervise(t, { id: 'slowhealth', heartbeat, children: [late, patient, silent] });
    const events = collect(sup);
    await sup.whenReady();
    const readyAt = Date.now();
    const hung = await nextEvent(sup, (e) => e.type === 'hung' && e.service === 'silent', 10_000);
    // `silent` waits on a timer: it uses no CPU, so it is not taken for busy.
    assert.match(hung.message ?? '', /^no health check answered for \d+ ms \(\d+% of a core\)$/);
    const detectMs = Date.now() - readyAt;
    assert.ok(detectMs <= 3000, `silent detected ${detectMs} ms after it was ready (window 1,200 ms)`);
    await sleep(2000);
    for (const name of ['late', 'patient']) {
      assert.deepEqual(
        events.filter((e) => e.service === name && e.type !== 'started' && e.type !== 'ready'),
        [],
        `${name} was never taken for hung`,
      );
      const status = sup.status().children.find((c) => c.name === name);
      assert.equal(status?.state, 'up', name);
      assert.equal(status?.restarts, 0, name);
    }
  });

  test('a silent child that uses CPU is busy, not hung, for its busy window; past it, it is hung', async (t) => {
    // A hang window of 3 × 200 ms and a busy window of 15 × 200 ms. Once ready, `cold` spins the CPU
    // for 1.2 s (twice its hang window) without turning its event loop, as a cold server does behind a
    // backlog on a starved machine; `spinning` spins for 60 s. Neither answers a check meanwhile.
    const heartbeat = { ...FAST, busyMisses: 15 };
    const cold = await httpChild('cold', ['--http-spin-once-ready', '1200'], { shutdownMs: 200 });
    const spinning = await httpChild('spinning', ['--http-spin-once-ready', '60000'], { shutdownMs: 200 });
    const sup = await supervise(t, { id: 'busy', heartbeat, children: [cold, spinning] });
    const events = collect(sup);
    await sup.whenReady();
    const hung = await nextEvent(sup, (e) => e.type === 'hung' && e.service === 'spinning', 15_000);
    const silentMs = Number(
      /^no health check answered for (\d+) ms while busy \(\d+% of a core\)$/.exec(hung.message ?? '')?.[1],
    );
    assert.ok(silentMs >= 3000, `spinning was hung after ${silentMs} ms of silence (busy window 3,000 ms)`);
    assert.deepEqual(
      events
        .filter((e) => e.service === 'cold' && e.type !== 'started' && e.type !== 'ready')
        .map((e) => e.type),
      ['busy'],
      'cold was taken for busy once, never for hung',
    );
    assert.ok(
      events.some((e) => e.service === 'spinning' && e.type === 'busy' && e.pid === hung.pid),
      'spinning was busy before it was hung',
    );
    const status = sup.status().children.find((c) => c.name === 'cold');
    assert.equal(status?.state, 'up');
    assert.equal(status?.restarts, 0);
  });

  test('a SIGSTOPped child is caught as hung within ~2 s with default heartbeat, killed and restarted', async (t) => {
    const sup = await supervise(t, { id: 'hang', nats: { servers: nats.url }, children: [natsChild('svc')] });
    await sup.whenReady();
    const pid = sup.status().children[0]!.pid;
    const stoppedAt = Date.now();
    sup.kill('svc', 'SIGSTOP');
    const hung = await nextEvent(sup, (e) => e.type === 'hung');
    // The hang window (3 × 500 ms) after the last answer: 1-2 s. Bounded below the busy window (4.5 s),
    // which a stopped process, using no CPU, must not be given.
    const detectMs = Date.now() - stoppedAt;
    assert.ok(detectMs < 4000, `detected after ${detectMs} ms`);
    assert.equal(hung.pid, pid);
    assert.doesNotMatch(hung.message ?? '', /while busy/, 'a stopped process uses no CPU');
    const exited = await nextEvent(sup, (e) => e.type === 'exited');
    assert.equal(exited.signal, 'SIGKILL');
    assert.equal(exited.reason, 'hung');
    const ready = await nextEvent(sup, (e) => e.type === 'ready');
    assert.notEqual(ready.pid, pid);
    assert.ok(ready.recoveryMs! > 0);
    assert.equal(sup.status().children[0]?.lastExit?.reason, 'hung');
    assert.match(await sup.registry.metrics(), /restarts_total\{service="svc",reason="hung"\} 1/);
  });

  test('control API over NATS: status, kill, restart, errors; events on kstyles.sup.events.<id>', async (t) => {
    const sup = await supervise(t, {
      id: 'ctlnats',
      nats: { servers: nats.url },
      heartbeat: STEADY,
      children: [natsChild('one'), natsChild('two')],
    });
    await sup.whenReady();
    const client = await SupervisorControlClient.connect({ servers: nats.url });
    t.after(() => client.close());
    const listener = await connect({ servers: nats.url });
    t.after(() => listener.close());
    const sub = listener.subscribe('kstyles.sup.events.ctlnats');
    setTimeout(() => sub.unsubscribe(), 8000).unref();
    // The control service registers once the supervisor's own connection is up.
    let status = await retry(() => client.status('ctlnats'));
    assert.deepEqual(
      status.children.map((c) => [c.name, c.state]),
      [
        ['one', 'up'],
        ['two', 'up'],
      ],
    );
    const killed = await client.kill('ctlnats', 'two');
    assert.equal(killed.signal, 'SIGKILL');
    const seen: string[] = [];
    for await (const msg of sub) {
      const e = msg.json<SupervisorEvent>();
      seen.push(`${e.service}:${e.type}`);
      if (e.type === 'ready') break;
    }
    assert.deepEqual(seen, ['two:exited', 'two:restarting', 'two:started', 'two:ready']);
    status = await client.status('ctlnats');
    assert.equal(status.children[1]?.restarts, 1);
    assert.equal(status.children[1]?.lastExit?.signal, 'SIGKILL');

    const restarted = await client.restart('ctlnats', 'one');
    assert.equal(restarted.service, 'one');
    await nextEvent(sup, (e) => e.type === 'ready' && e.service === 'one');
    assert.equal((await client.status('ctlnats')).children[0]?.restarts, 1);

    await assert.rejects(
      client.kill('ctlnats', 'nope'),
      (err: Error) =>
        err instanceof SupervisorControlError &&
        err.status === 404 &&
        err.code === 'CONTROL_UNKNOWN_SERVICE' &&
        /unknown service 'nope'.*known services: one, two/.test(err.message),
    );
    await assert.rejects(
      client.crashloop('ctlnats', 'one', 3),
      (err: Error) =>
        err instanceof SupervisorControlError &&
        err.code === 'CONTROL_CONFLICT' &&
        /service 'one' has no crash-at-start hook/.test(err.message),
    );
    await assert.rejects(
      client.status('no-such-supervisor'),
      (err: Error) =>
        err instanceof SupervisorUnavailableError &&
        /no supervisor 'no-such-supervisor' answered.*not running/.test(err.message),
    );
  });

  test("control API probe: runs the owner's named check and answers its result; an unknown name is a bad request", async (t) => {
    let runs = 0;
    const sup = await supervise(
      t,
      { id: 'probes', nats: { servers: nats.url }, heartbeat: STEADY, children: [natsChild('svc')] },
      { 'count-runs': async () => ({ runs: ++runs, pid: process.pid }) },
    );
    await sup.whenReady();
    const client = await SupervisorControlClient.connect({ servers: nats.url });
    t.after(() => client.close());
    assert.deepEqual(await retry(() => client.probe('probes', 'count-runs')), { runs: 1, pid: process.pid });
    assert.deepEqual(
      await client.probe('probes', 'count-runs'),
      { runs: 2, pid: process.pid },
      'runs again each time',
    );
    await assert.rejects(
      client.probe('probes', 'nope'),
      (err: Error) =>
        err instanceof SupervisorControlError &&
        err.code === 'CONTROL_BAD_REQUEST' &&
        /supervisor 'probes' has the probes count-runs/.test(err.message),
    );
  });

  test('NATS may come up after the supervisor: nats-server as the first child', async (t) => {
    const port = await freePort();
    const url = `nats://127.0.0.1:${port}`;
    const sup = await supervise(t, {
      id: 'ownnats',
      nats: { servers: url },
      heartbeat: FAST,
      children: [
        {
          name: 'nats',
          command: '/usr/sbin/nats-server',
          args: ['-a', '127.0.0.1', '-p', String(port)],
          health: { kind: 'tcp', host: '127.0.0.1', port },
        },
        child('svc', ['--nats', url, '--service', 'svc'], { health: { kind: 'nats-ping', service: 'svc' } }),
      ],
    });
    await sup.whenReady();
    assert.deepEqual(
      sup.status().children.map((c) => c.state),
      ['up', 'up'],
    );
  });

  test('a NATS restart does not make ready children look hung; the control API comes back', async (t) => {
    const sup = await supervise(t, {
      id: 'natsrestart',
      nats: { servers: nats.url },
      heartbeat: FAST,
      children: [natsChild('steady')],
    });
    await sup.whenReady();
    const pid = sup.status().children[0]?.pid;
    await nats.restart();
    const client = await SupervisorControlClient.connect({ servers: nats.url });
    t.after(() => client.close());
    // Longer than misses × interval: a child not yet reconnected would have been declared hung by now.
    await new Promise((r) => setTimeout(r, 1500));
    const status = await retry(() => client.status('natsrestart'));
    assert.equal(status.children[0]?.state, 'up');
    assert.equal(status.children[0]?.restarts, 0);
    assert.equal(status.children[0]?.pid, pid);
  });
});

async function retry<T>(fn: () => Promise<T>, attempts = 20): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts || !(err instanceof SupervisorUnavailableError)) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
