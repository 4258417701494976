import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { NATS_ROLES, PERMISSIONS } from '../services/microkernel/nats-config.ts';
import { natsPassword } from '../test/containers/docker.ts';
import { composeNatsConfig, NATS_CONF_PATH } from './nats/render-nats-conf.ts';

const NATS_SERVER_BIN = process.env['NATS_SERVER_BIN'] ?? '/usr/sbin/nats-server';

describe('deploy/nats/nats.conf', () => {
  it('is what services/microkernel/nats-config.ts renders (run deploy/nats/render-nats-conf.ts if not)', () => {
    assert.equal(
      readFileSync(NATS_CONF_PATH, 'utf8'),
      composeNatsConfig(),
      'deploy/nats/nats.conf is stale: run `node --import tsx deploy/nats/render-nats-conf.ts` and commit it',
    );
  });

  it('has one user per server role, passwords from the environment, monitoring and a short ping', () => {
    const text = readFileSync(NATS_CONF_PATH, 'utf8');
    for (const role of NATS_ROLES) {
      assert.match(
        text,
        new RegExp(`user: "kstyles-${role}", password: \\$KSTYLES_NATS_${role.toUpperCase()}_PASS`),
      );
    }
    assert.match(text, /^http: "0\.0\.0\.0:8222"$/m);
    assert.match(text, /^ping_interval: "\d+s"$/m);
    assert.ok(!PERMISSIONS.gateway.publish.some((subject) => subject.startsWith('kstyles.drv')));
  });

  it('is accepted by nats-server (-t) with the passwords compose passes', () => {
    const env = { ...process.env };
    for (const role of NATS_ROLES) env[`KSTYLES_NATS_${role.toUpperCase()}_PASS`] = `${role}-test`;
    const result = spawnSync(NATS_SERVER_BIN, ['-c', NATS_CONF_PATH, '-t'], { env, encoding: 'utf8' });
    assert.equal(result.status, 0, `nats-server -t failed: ${result.stderr}${result.stdout}`);
  });

  // The container tier's intermittent "microkernel: Container … is unhealthy": nats-server parses a
  // substituted variable as a value, so random hex that reads as a number made it exit at start.
  const checkWith = (pass: (role: string) => string) => {
    const env = { ...process.env };
    for (const role of NATS_ROLES) env[`KSTYLES_NATS_${role.toUpperCase()}_PASS`] = pass(role);
    return spawnSync(NATS_SERVER_BIN, ['-c', NATS_CONF_PATH, '-t'], { env, encoding: 'utf8' });
  };
  const numberLike = ['3e5a0f', '123456789012'];

  it('refuses passwords that nats-server reads as numbers (the hazard natsPassword avoids)', () => {
    for (const hex of numberLike) {
      const result = checkWith(() => hex);
      assert.notEqual(result.status, 0, `nats-server accepted the number-like password ${hex}`);
    }
  });

  it("accepts the container tier's generated passwords, even from number-like random bytes", () => {
    for (const hex of numberLike) {
      const result = checkWith(() => natsPassword(Buffer.from(hex, 'hex')));
      assert.equal(result.status, 0, `nats-server -t failed: ${result.stderr}${result.stdout}`);
    }
  });
});
