import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { connectNats, inboxPrefixOf } from '../services/ipc/connect.ts';
import {
  generateKeyPairs,
  keyPairsEnv,
  NATS_GODEBUG,
  NATS_GOGC,
  NATS_KEY_ENV,
  NATS_ROLES,
  natsServerEnv,
  PERMISSIONS,
} from '../services/microkernel/nats-config.ts';
import { freePort } from '../services/supervisor/testing/nats-server.ts';
import { composeNatsConfig, NATS_CONF_PATH } from './nats/render-nats-conf.ts';

const NATS_SERVER_BIN = process.env['NATS_SERVER_BIN'] ?? '/usr/sbin/nats-server';

describe("nats-server's environment", () => {
  it('sets GOGC and GODEBUG in the image and for the servers kstyles starts, unless the operator sets them', () => {
    const dockerfile = readFileSync('deploy/docker/nats.Dockerfile', 'utf8');
    assert.match(dockerfile, new RegExp(`^ENV GOGC=${NATS_GOGC}$`, 'm'));
    assert.match(dockerfile, new RegExp(`^ENV GODEBUG=${NATS_GODEBUG}$`, 'm'));
    assert.deepEqual(natsServerEnv({}), { GOGC: NATS_GOGC, GODEBUG: NATS_GODEBUG });
    assert.deepEqual(natsServerEnv({ GOGC: '150', GODEBUG: 'gctrace=1' }), {
      GOGC: '150',
      GODEBUG: 'gctrace=1',
    });
  });
});

describe('deploy/nats/nats.conf', () => {
  it('is what services/microkernel/nats-config.ts renders (run deploy/nats/render-nats-conf.ts if not)', () => {
    assert.equal(
      readFileSync(NATS_CONF_PATH, 'utf8'),
      composeNatsConfig(),
      'deploy/nats/nats.conf is stale: run `node --import tsx deploy/nats/render-nats-conf.ts` and commit it',
    );
  });

  it('has one nkey user per server role, public keys from the environment, no password, monitoring and a short ping', () => {
    const text = readFileSync(NATS_CONF_PATH, 'utf8');
    for (const role of NATS_ROLES) {
      assert.match(text, new RegExp(`\\{ nkey: \\$${NATS_KEY_ENV.publicKey(role)}, permissions`));
    }
    assert.doesNotMatch(text, /password|pass:|user:|SU[A-Z2-7]{56}/);
    assert.match(text, /^http: "0\.0\.0\.0:8222"$/m);
    assert.match(text, /^ping_interval: "\d+s"$/m);
    assert.ok(!PERMISSIONS.gateway.publish.some((subject) => subject.startsWith('kstyles.drv')));
  });

  it('is accepted by nats-server (-t) with the public keys deploy/nats/nats-keys.ts makes', () => {
    const env = { ...process.env, ...keyPairsEnv(generateKeyPairs()) };
    const result = spawnSync(NATS_SERVER_BIN, ['-c', NATS_CONF_PATH, '-t'], { env, encoding: 'utf8' });
    assert.equal(result.status, 0, `nats-server -t failed: ${result.stderr}${result.stdout}`);
  });

  it('is refused by nats-server when the public keys are not in its environment', () => {
    const env = { ...process.env };
    for (const role of NATS_ROLES) delete env[NATS_KEY_ENV.publicKey(role)];
    const result = spawnSync(NATS_SERVER_BIN, ['-c', NATS_CONF_PATH, '-t'], { env, encoding: 'utf8' });
    assert.notEqual(result.status, 0);
    assert.match(`${result.stderr}${result.stdout}`, /KSTYLES_NATS_\w+_NKEY/);
  });

  it('admits each role with its seed from the same environment, and no one without', async () => {
    const pairs = generateKeyPairs();
    const [port, monitor] = [await freePort(), await freePort()];
    const server = spawn(
      NATS_SERVER_BIN,
      ['-c', NATS_CONF_PATH, '-a', '127.0.0.1', '-p', String(port), '-m', String(monitor)],
      { env: { ...process.env, ...keyPairsEnv(pairs) }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let log = '';
    server.stderr?.on('data', (chunk: Buffer) => {
      log += chunk.toString();
    });
    try {
      const servers = `nats://127.0.0.1:${port}`;
      for (const role of NATS_ROLES) {
        const nc = await connectNats({
          servers,
          name: `test-${role}`,
          seed: pairs[role].seed,
          inboxPrefix: inboxPrefixOf(role),
          firstConnectTimeoutMs: 5000,
        });
        await nc.close();
      }
      await assert.rejects(
        connectNats({ servers, name: 'test-anonymous', firstConnectTimeoutMs: 3000 }),
        /Authorization Violation/,
      );
      assert.doesNotMatch(log, /Plaintext passwords/);
    } finally {
      server.kill('SIGKILL');
    }
  });
});
