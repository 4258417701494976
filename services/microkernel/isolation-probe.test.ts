import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { NatsIsolation } from '../contract/isolation.ts';
import { inspectProcess } from '../contract/process-inspection.ts';
import { testCorpus } from '../contract/testing/test-corpus.ts';
import { SupervisorControlClient } from '../supervisor/control-client.ts';
import { startNatsServer, type TestNatsServer } from '../supervisor/testing/nats-server.ts';
import { isolationAttempts, NATS_ISOLATION_PROBE, probeNatsIsolation } from './isolation-probe.ts';
import { generateKeyPairs, keyPairsEnv, NATS_ROLES, renderNatsConfig } from './nats-config.ts';
import { startProcessKernel } from './testing/process-kernel.ts';

const servers: TestNatsServer[] = [];
after(() => {
  for (const server of servers) server.stop();
});

async function nats(config?: string): Promise<TestNatsServer> {
  const server = await startNatsServer(config === undefined ? {} : { config });
  servers.push(server);
  return server;
}

describe('the NATS isolation probe, on a real nats-server', () => {
  it("finds the microkernel's permissions exactly as designed: every needed allow, every other refusal", async () => {
    const pairs = generateKeyPairs();
    const server = await nats(renderNatsConfig({ host: '127.0.0.1', port: 0, users: pairs }));
    const result = await probeNatsIsolation(server.url, pairs);
    assert.equal(result.attemptsPerRole, isolationAttempts('x').length);
    assert.deepEqual(
      result.roles.map((r) => r.role),
      [...NATS_ROLES],
    );
    for (const role of result.roles) {
      assert.deepEqual(role.unexpectedAllowed, [], `${role.role} may do more than it needs`);
      assert.deepEqual(role.unexpectedRefused, [], `${role.role} is refused what it needs`);
      assert.equal(role.allowed, role.expectedAllowed, role.role);
      assert.equal(role.refused, role.expectedRefused, role.role);
      assert.ok(role.refused > role.allowed, `${role.role}: most attempts are refused`);
    }
    const gateway = result.roles.find((r) => r.role === 'gateway')!;
    assert.equal(
      gateway.allowed,
      3,
      'the gateway may ask the file server, read its own replies and follow supervisor events, nothing else',
    );
    assert.equal(result.anonymous, 'refused');
    assert.equal(result.stranger, 'refused');
  });

  it('reports a loosened permission as a finding of that role', async () => {
    const pairs = generateKeyPairs();
    const config = renderNatsConfig({ host: '127.0.0.1', port: 0, users: pairs });
    const loose = config.replace(
      'subscribe: { allow: ["_INBOX_gateway.>", "kstyles.sup.events.*"] }',
      'subscribe: { allow: [">"] }',
    );
    assert.notEqual(loose, config, "the gateway's subscribe permission is in the rendered config");
    const result = await probeNatsIsolation((await nats(loose)).url, pairs);
    const gateway = result.roles.find((r) => r.role === 'gateway')!;
    assert.ok(
      gateway.unexpectedAllowed.some((f) => f.startsWith('subscribe >:')),
      gateway.unexpectedAllowed.join('\n'),
    );
    assert.ok(gateway.unexpectedAllowed.some((f) => f.startsWith('subscribe _INBOX_supervisor.>:')));
    assert.ok(gateway.unexpectedAllowed.some((f) => f.startsWith('subscribe kstyles.drv.>:')));
    for (const role of result.roles.filter((r) => r.role !== 'gateway'))
      assert.deepEqual(role.unexpectedAllowed, [], role.role);
  });

  it('tries only the roles whose credentials it holds, and names the others untried', async () => {
    const pairs = generateKeyPairs();
    const server = await nats(renderNatsConfig({ host: '127.0.0.1', port: 0, users: pairs }));
    const { console: _console, ...microkernelOnly } = pairs;
    const result = await probeNatsIsolation(server.url, microkernelOnly);
    assert.deepEqual(
      result.roles.map((r) => r.role),
      ['gateway', 'fs', 'driver', 'supervisor'],
    );
    assert.deepEqual(result.untried, ['console']);
    for (const role of result.roles) assert.deepEqual(role.unexpectedAllowed, [], role.role);
  });

  it('finds every role able to do everything on a NATS without users, and lets strangers in', async () => {
    const result = await probeNatsIsolation((await nats()).url, {});
    for (const role of result.roles) {
      assert.equal(role.refused, 0, role.role);
      assert.equal(role.unexpectedAllowed.length, role.expectedRefused, role.role);
    }
    assert.equal(result.anonymous, 'allowed');
    assert.equal(result.stranger, 'allowed');
  });
});

describe('a real microkernel on a NATS of its deployment (--nats, every seed in its environment)', () => {
  it("gives each server its own seed alone, and runs the probe for a client of its supervisor's control API", async () => {
    const pairs = generateKeyPairs();
    const server = await nats(renderNatsConfig({ host: '127.0.0.1', port: 0, users: pairs }));
    const corpus = await testCorpus();
    const kernel = await startProcessKernel({
      data: corpus.dir,
      args: ['--nats', server.url],
      env: keyPairsEnv(pairs),
    });
    try {
      for (const child of ['gateway', 'fs', 'driver']) {
        const facts = inspectProcess(await kernel.pidOf(child));
        assert.deepEqual(facts.credentials, ['KSTYLES_NATS_SEED'], `${child} holds only its own seed`);
      }
      const client = await SupervisorControlClient.connect(kernel.state.nats!);
      try {
        const isolation = (await client.probe(kernel.state.id, NATS_ISOLATION_PROBE)) as NatsIsolation;
        assert.equal(isolation.roles.length, NATS_ROLES.length);
        for (const role of isolation.roles) {
          assert.deepEqual(role.unexpectedAllowed, [], role.role);
          assert.deepEqual(role.unexpectedRefused, [], role.role);
        }
        assert.equal(isolation.anonymous, 'refused');
      } finally {
        await client.close();
      }
    } finally {
      await kernel.stop();
    }
  });
});
