import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { isAlive } from './procs.ts';
import { type NatsEcho, openNatsEcho } from './references.ts';

// A real nats-server (installed by scripts/setup.mjs) and a real responder process. close() may run twice.
describe('NATS echo (the round trip the microkernel latency target counts)', () => {
  let dir: string;
  let echo: NatsEcho;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kstyles-echo-'));
    echo = await openNatsEcho(dir);
  });
  after(async () => {
    await echo?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers from a process of its own, as a file server answers the gateway', () => {
    assert.notEqual(echo.responderPid, process.pid);
    assert.ok(isAlive(echo.responderPid), `responder ${echo.responderPid} is running`);
  });

  it('runs a batch back to back', async () => {
    const round = await echo.roundTrips(100);
    assert.equal(round.count, 100);
    assert.ok(round.p50Us > 0 && round.p50Us <= round.p99Us, JSON.stringify(round));
  });

  it('paces a batch at the rate asked: 20 round trips at 100/s span at least 19 gaps of 10 ms', async () => {
    const t0 = performance.now();
    const round = await echo.roundTrips(20, 100);
    const elapsed = performance.now() - t0;
    assert.equal(round.count, 20);
    assert.ok(elapsed >= 190, `20 paced round trips took ${elapsed.toFixed(0)} ms`);
  });

  it('stops its responder on close', async () => {
    const pid = echo.responderPid;
    await echo.close();
    assert.equal(isAlive(pid), false);
  });
});
