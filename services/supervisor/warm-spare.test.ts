import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SUPERVISED_INSTANCE_ENV } from './child-identity.ts';
import { isProcessAlive } from './runtime-state.ts';
import { findSpareNice, threadNices } from './spare-priority.ts';
import { parseSupervisorSpec } from './spec.ts';
import { Supervisor, type SupervisorEvent } from './supervisor.ts';
import { freePort } from './testing/nats-server.ts';
import { activationLine, awaitActivation, parseActivation, WARM_SPARE_ENV } from './warm-spare.ts';

const FIXTURE = path.join(import.meta.dirname, 'fixtures', 'spare-child.ts');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'kstyles-spare-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const quiet = () =>
  new Writable({
    write(_chunk, _enc, cb) {
      cb();
    },
  });

async function until<T>(what: string, read: () => T | null | undefined, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (value !== null && value !== undefined) return value;
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(50);
  }
}

describe('the activation line', () => {
  test('carries the incarnation environment; a spare takes it and stops being a spare', async () => {
    const env: NodeJS.ProcessEnv = { [WARM_SPARE_ENV]: '1', KEEP: 'yes' };
    const input = new PassThrough();
    const activated = awaitActivation(env, input);
    input.write(activationLine({ env: { [SUPERVISED_INSTANCE_ENV]: 'sup.driver.42', CRASH: '1 of 3' } }));
    await activated;
    assert.deepEqual(env, { KEEP: 'yes', [SUPERVISED_INSTANCE_ENV]: 'sup.driver.42', CRASH: '1 of 3' });
  });

  test('a process that is no spare does not wait for one', async () => {
    const input = new PassThrough();
    await awaitActivation({}, input);
    assert.equal(input.listenerCount('data'), 0, 'stdin was not read');
  });

  test('a bad line is refused with what was expected', () => {
    assert.throws(() => parseActivation('go'), /activation line is not JSON: go/);
    assert.throws(() => parseActivation('{"env": {"A": 1}}'), /needs \{"env": \{name: string\}\}/);
    assert.throws(() => parseActivation('null'), /needs \{"env"/);
  });

  test('the boot priority is a nice value from 0 to 19, 19 unless given', () => {
    const spec = (spareNice: unknown) => ({
      id: 'x',
      children: [{ name: 'a', command: 'node', spare: true, spareNice }],
    });
    assert.equal(parseSupervisorSpec(spec(undefined)).children[0]?.spareNice, 19);
    assert.equal(parseSupervisorSpec(spec(0)).children[0]?.spareNice, 0);
    for (const bad of [20, -1, 2.5, '10'])
      assert.throws(
        () => parseSupervisorSpec(spec(bad)),
        /children\[0\]\.spareNice must be a whole number from 0 to 19, got/,
      );
  });

  test('the spec flag is a boolean', () => {
    const spec = (spare: unknown) => ({ id: 'x', children: [{ name: 'a', command: 'node', spare }] });
    assert.equal(parseSupervisorSpec(spec(true)).children[0]?.spare, true);
    assert.equal(parseSupervisorSpec(spec(undefined)).children[0]?.spare, false);
    assert.throws(
      () => parseSupervisorSpec(spec('yes')),
      /children\[0\]\.spare must be true or false, got "yes"/,
    );
  });
});

describe('a supervised child with a warm spare (real processes)', { timeout: 60_000 }, () => {
  test('a SIGKILL activates the waiting spare as the next incarnation, a new spare follows, stop ends both', async (t) => {
    const port = await freePort();
    const record = path.join(tmp, 'record');
    const sup = new Supervisor(
      {
        id: 'spare',
        heartbeat: { intervalMs: 200, timeoutMs: 100, misses: 3, startTimeoutMs: 15_000 },
        children: [
          {
            name: 'web',
            command: process.execPath,
            args: ['--import', 'tsx', FIXTURE, '--record', record, '--http', String(port)],
            health: { kind: 'http', url: `http://127.0.0.1:${port}/` },
            shutdownMs: 2000,
            spare: true,
          },
        ],
      },
      { stdout: quiet(), stderr: quiet() },
    );
    t.after(() => sup.stop());
    const events: SupervisorEvent[] = [];
    sup.on('event', (e: SupervisorEvent) => events.push(e));
    await sup.start();
    await sup.whenReady();
    const first = sup.status().children[0]!;
    const sparePid = await until('a spare waiting', () => sup.status().children[0]?.sparePid);
    assert.notEqual(sparePid, first.pid);
    assert.ok(isProcessAlive(sparePid), 'the spare runs');
    assert.equal(readFileSync(record, 'utf8').split('\n').filter(Boolean).length, 1, 'the spare waits');
    // Where the supervisor may raise a priority again (CAP_SYS_NICE: root here), the spare boots at
    // nice 19, every thread; elsewhere at the supervisor's own.
    const own = os.getPriority();
    const bootNice = findSpareNice() ? 19 : own;
    const waiting = threadNices(sparePid);
    assert.ok(waiting.length > 1, `the spare's threads: ${waiting}`);
    assert.deepEqual([...new Set(waiting)], [bootNice], `the waiting spare's threads at nice ${bootNice}`);

    sup.kill('web', 'SIGKILL');
    const ready = await until('ready again', () =>
      events.find((e) => e.type === 'ready' && e.restarts === 1),
    );
    assert.equal(ready.pid, sparePid, 'the spare became the next incarnation');
    assert.deepEqual([...new Set(threadNices(sparePid))], [own], 'the activated incarnation runs at nice 0');
    const started = events.find((e) => e.type === 'started' && e.restarts === 1);
    assert.equal(started?.message, 'a warm spare activated');
    const lines = readFileSync(record, 'utf8').split('\n').filter(Boolean);
    assert.match(lines[0]!, new RegExp(`^${first.pid} fresh token=spare\\.web\\.\\S+ spare-env=false$`));
    assert.match(lines[1]!, new RegExp(`^${sparePid} activated token=spare\\.web\\.\\S+ spare-env=false$`));
    assert.notEqual(lines[0]!.split(' ')[2], lines[1]!.split(' ')[2], 'each incarnation has its own token');

    const nextSpare = await until('a new spare', () => sup.status().children[0]?.sparePid);
    assert.ok(nextSpare !== sparePid && nextSpare !== first.pid);
    await sup.stop();
    await until('the spare gone', () => (isProcessAlive(nextSpare) ? null : true), 5000);
    assert.equal(isProcessAlive(sparePid), false, 'the activated incarnation stopped');
  });
});
