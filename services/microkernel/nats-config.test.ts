import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { NATS_SERVER_BIN } from '../supervisor/testing/nats-server.ts';
import { generateUsers, NATS_ROLES, renderNatsConfig, usersFromEnv } from './nats-config.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'kstyles-nats-config-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** `nats-server -t`: parses the configuration and exits, 0 when it is valid. */
function natsServerAccepts(
  config: string,
  env: NodeJS.ProcessEnv = {},
): Promise<{ ok: boolean; output: string }> {
  const file = path.join(tmp, `nats-${Math.random().toString(36).slice(2)}.conf`);
  writeFileSync(file, config);
  return new Promise((resolve) => {
    execFile(
      NATS_SERVER_BIN,
      ['-t', '-c', file],
      { env: { ...process.env, ...env } },
      (err, stdout, stderr) => resolve({ ok: !err, output: `${stdout}${stderr}` }),
    );
  });
}

describe('microkernel NATS configuration', () => {
  it('generates a valid config with a fresh password per role and run', async () => {
    const users = generateUsers();
    const again = generateUsers();
    for (const role of NATS_ROLES) {
      assert.ok(users[role].pass.length >= 32);
      assert.notEqual(users[role].pass, again[role].pass);
    }
    const config = renderNatsConfig({ host: '127.0.0.1', port: 4222, monitorPort: 8222, users });
    assert.match(config, /ping_interval: "2s"/);
    assert.match(config, /http: "127\.0\.0\.1:8222"/);
    const result = await natsServerAccepts(config);
    assert.ok(result.ok, result.output);
  });

  it('writes a static config whose passwords come from the environment (for compose)', async () => {
    const config = renderNatsConfig({
      host: '0.0.0.0',
      port: 4222,
      monitorPort: 8222,
      users: usersFromEnv(),
    });
    assert.match(config, /password: \$KSTYLES_NATS_GATEWAY_PASS/);
    assert.doesNotMatch(config, /password: "/, 'no literal password in a static config');
    const env = Object.fromEntries(
      NATS_ROLES.map((role) => [`KSTYLES_NATS_${role.toUpperCase()}_PASS`, `secret-${role}`]),
    );
    const result = await natsServerAccepts(config, env);
    assert.ok(result.ok, result.output);
  });
});
