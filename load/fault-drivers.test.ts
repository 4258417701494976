import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { connect, headers } from '@nats-io/transport-node';
import { freePort, startNatsServer } from '../services/supervisor/testing/nats-server.ts';
import { DockerFaultDriver, SignalFaultDriver, SupervisorFaultDriver } from './fault-drivers.ts';

/** A process that idles and, like the monolith, prints a line for each SIGUSR2 (its slow toggle). */
function sleeper(): ChildProcess {
  const child = spawn(
    process.execPath,
    [
      '-e',
      "process.on('SIGUSR2', () => console.log('usr2')); console.log('ready'); setInterval(() => {}, 1000)",
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  child.stdout!.setEncoding('utf8');
  return child;
}

async function nextLine(child: ChildProcess): Promise<string> {
  const [chunk] = await once(child.stdout!, 'data');
  return String(chunk).trim();
}

describe('fault drivers', () => {
  test('signal driver: kill by pid:N; hang, resume and slow through a runtime-state file', async () => {
    const stateDir = await mkdtemp(path.join(os.tmpdir(), 'kstyles-state-test-'));
    const victim = sleeper();
    const frozen = sleeper();
    try {
      assert.equal(await nextLine(frozen), 'ready');
      const driver = new SignalFaultDriver(stateDir);
      assert.equal(driver.supports(`pid:${victim.pid}`, 'kill'), true);
      assert.equal(driver.supports(`pid:${victim.pid}`, 'poison'), false);
      const exited = once(victim, 'exit');
      const kill = await driver.inject(`pid:${victim.pid}`, 'kill', {});
      assert.match(kill.message, /SIGKILL sent to pid:\d+/);
      assert.deepEqual(await exited, [null, 'SIGKILL']);

      await writeFile(
        path.join(stateDir, 'mono.json'),
        JSON.stringify({
          id: 'mono',
          pid: frozen.pid,
          nats: { servers: ['nats://127.0.0.1:4222'] },
          info: {},
        }),
      );
      const hang = await driver.inject('mono', 'hang', { forMs: 10 });
      assert.match(hang.message, /SIGSTOP sent to mono/);
      assert.ok(hang.resume);
      assert.match(await hang.resume(), /SIGCONT sent to mono/);
      assert.equal(frozen.exitCode, null, 'the stopped process lives on after SIGCONT');

      const slow = await driver.inject('mono', 'slow', { forMs: 10 });
      assert.match(slow.message, /SIGUSR2 sent to mono/);
      assert.equal(await nextLine(frozen), 'usr2');
      assert.match(
        await slow.resume!(),
        /SIGUSR2 sent to mono/,
        'the slowdown is toggled off after its duration',
      );
      assert.equal(await nextLine(frozen), 'usr2');

      await assert.rejects(
        driver.inject('absent', 'kill', {}),
        /no runtime state .*absent\.json: is 'absent' running\?/,
      );
      await assert.rejects(driver.inject('pid:999999999', 'kill', {}), /PID 999999999/);
    } finally {
      victim.kill('SIGKILL');
      frozen.kill('SIGKILL');
      await rm(stateDir, { recursive: true, force: true });
    }
  });

  test('supervisor driver: requests kstyles.sup.ctl.<id>.kill over a real nats-server', async (t) => {
    const port = await freePort();
    let server: ChildProcess;
    try {
      server = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
      await once(server, 'spawn');
    } catch {
      t.skip('nats-server is not installed (npm run setup installs it)');
      return;
    }
    const url = `nats://127.0.0.1:${port}`;
    // No --nats: the driver finds NATS in the supervisor's runtime-state file, as `kstyles microkernel` writes it.
    const stateDir = await mkdtemp(path.join(os.tmpdir(), 'kstyles-state-test-'));
    await writeFile(
      path.join(stateDir, 'microkernel.json'),
      JSON.stringify({
        id: 'microkernel',
        pid: process.pid,
        startedAt: '',
        nats: { servers: [url] },
        info: {},
      }),
    );
    const driver = new SupervisorFaultDriver(undefined, stateDir);
    try {
      let nc: Awaited<ReturnType<typeof connect>> | undefined;
      for (let i = 0; i < 50 && !nc; i++) {
        nc = await connect({ servers: url }).catch(() => undefined);
        if (!nc) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(nc, 'nats-server came up');
      const seen: unknown[] = [];
      const sub = nc.subscribe('kstyles.sup.ctl.microkernel.*');
      (async () => {
        for await (const msg of sub) {
          seen.push([msg.subject, msg.json()]);
          if (msg.subject.endsWith('.restart')) {
            // How the NATS service API reports an error: headers on an empty reply.
            const h = headers();
            h.set('Nats-Service-Error', "unknown service 'nats'");
            h.set('Nats-Service-Error-Code', '404');
            msg.respond('', { headers: h });
          } else msg.respond(JSON.stringify({ ok: true }));
        }
      })();
      await nc.flush();
      assert.equal(driver.supports('microkernel:driver', 'kill'), true);
      assert.equal(driver.supports('pid:1', 'kill'), false);
      const kill = await driver.inject('microkernel:driver', 'kill', {});
      assert.match(kill.message, /supervisor microkernel: SIGKILL driver/);
      const hang = await driver.inject('microkernel:fs', 'hang', { forMs: 5 });
      await hang.resume?.();
      assert.equal(driver.supports('microkernel:driver', 'crashloop'), true);
      assert.equal(driver.supports('microkernel', 'crashloop'), false);
      const loop = await driver.inject('microkernel:driver', 'crashloop', { times: 4 });
      assert.match(loop.message, /crashloop driver, its next 4 start\(s\) exit at once/);
      await driver.inject('microkernel:driver', 'crashloop', {});
      await assert.rejects(
        driver.inject('microkernel:driver', 'crashloop', { times: 1001 }),
        /times must be at most 1000/,
      );
      assert.equal(driver.supports('microkernel', 'nats'), true);
      await assert.rejects(
        driver.inject('microkernel', 'nats', {}),
        /supervisor answered unknown service 'nats'/,
      );
      assert.deepEqual(seen.slice(0, 6), [
        ['kstyles.sup.ctl.microkernel.kill', { service: 'driver', signal: 'SIGKILL' }],
        ['kstyles.sup.ctl.microkernel.kill', { service: 'fs', signal: 'SIGSTOP' }],
        ['kstyles.sup.ctl.microkernel.kill', { service: 'fs', signal: 'SIGCONT' }],
        ['kstyles.sup.ctl.microkernel.crashloop', { service: 'driver', starts: 4 }],
        ['kstyles.sup.ctl.microkernel.crashloop', { service: 'driver', starts: 3 }],
        ['kstyles.sup.ctl.microkernel.restart', { service: 'nats' }],
      ]);
      // Each supervisor is found through its own runtime-state file; there is none for 'lab' here.
      await assert.rejects(
        driver.inject('lab:monolith', 'kill', {}),
        /no NATS URL for supervisor 'lab': pass --nats URL/,
      );
      await nc.close();
    } finally {
      await driver.close();
      server.kill('SIGKILL');
      await rm(stateDir, { recursive: true, force: true });
    }
  });

  test('supervisor driver: --nats may carry user:pass@ for a NATS with authorization', async () => {
    const password = 'load p@ss';
    const server = await startNatsServer({
      config: `authorization { user: "load", password: ${JSON.stringify(password)} }\n`,
    });
    const stateDir = await mkdtemp(path.join(os.tmpdir(), 'kstyles-state-test-'));
    const url = `nats://load:${encodeURIComponent(password)}@127.0.0.1:${server.port}`;
    const driver = new SupervisorFaultDriver(url, stateDir);
    try {
      const nc = await connect({ servers: server.url, user: 'load', pass: password });
      const sub = nc.subscribe('kstyles.sup.ctl.lab.kill');
      (async () => {
        for await (const msg of sub) msg.respond(JSON.stringify({ ...msg.json<object>(), pid: 4242 }));
      })();
      await nc.flush();
      const kill = await driver.inject('lab:monolith', 'kill', {});
      assert.equal(kill.message, 'supervisor lab: SIGKILL monolith → PID 4242');
      await nc.close();
    } finally {
      await driver.close();
      await server.stop();
      await rm(stateDir, { recursive: true, force: true });
    }
  });

  test('docker driver: an unreachable engine gives a clear error', async () => {
    const driver = new DockerFaultDriver(path.join(os.tmpdir(), 'no-such-docker.sock'));
    assert.equal(driver.supports('docker:kstyles-monolith-1', 'kill'), true);
    await assert.rejects(
      driver.inject('docker:kstyles-monolith-1', 'kill', {}),
      /cannot reach the Docker engine at .*no-such-docker\.sock \(ENOENT\): is dockerd running\?/,
    );
  });
});
