import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { NatsConnection } from '@nats-io/nats-core';
import { Svcm } from '@nats-io/services';
import { connectNats, inboxPrefixOf } from '../ipc/connect.ts';
import { SERVICE_NAMES, SUBJECTS } from '../ipc/subjects.ts';
import { NATS_SERVER_BIN, startNatsServer, type TestNatsServer } from '../supervisor/testing/nats-server.ts';
import { generateUsers, NATS_ROLES, type NatsRole, renderNatsConfig, usersFromEnv } from './nats-config.ts';

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

describe('the roles on a real nats-server', () => {
  let nats: TestNatsServer;
  let users: ReturnType<typeof generateUsers>;
  const connections: NatsConnection[] = [];
  before(async () => {
    users = generateUsers();
    nats = await startNatsServer({ config: renderNatsConfig({ host: '127.0.0.1', port: 0, users }) });
  });
  after(async () => {
    await Promise.all(connections.map((nc) => nc.close().catch(() => {})));
    await nats?.stop();
  });

  const connectAs = async (role: NatsRole, inboxPrefix = inboxPrefixOf(role)) => {
    const nc = await connectNats({
      servers: nats.url,
      name: `test-${role}`,
      ...users[role],
      inboxPrefix,
      firstConnectTimeoutMs: 5000,
    });
    connections.push(nc);
    return nc;
  };

  /** Subscribes and resolves the server's verdict: null when allowed, else its error message. */
  async function subscribeVerdict(nc: NatsConnection, subject: string): Promise<string | null> {
    const sub = nc.subscribe(subject);
    const refused = sub.closed.then((err) => (err instanceof Error ? err.message : null));
    await nc.flush();
    // The server answers a refused SUB with -ERR before the PONG of the flush; give the client a turn.
    const verdict = await Promise.race([
      refused,
      new Promise<null>((resolve) => setTimeout(resolve, 300, null)),
    ]);
    sub.unsubscribe();
    return verdict;
  }

  it("refuses the gateway a subscription to the file server's, the supervisor's or the shared inbox", async () => {
    const gateway = await connectAs('gateway');
    for (const subject of [`${inboxPrefixOf('fs')}.>`, `${inboxPrefixOf('supervisor')}.>`, '_INBOX.>']) {
      const verdict = await subscribeVerdict(gateway, subject);
      assert.match(verdict ?? 'allowed', /Permissions Violation for Subscription/, subject);
    }
    assert.equal(await subscribeVerdict(gateway, `${inboxPrefixOf('gateway')}.>`), null, 'its own inbox');
    const fs = await connectAs('fs');
    assert.match(
      (await subscribeVerdict(fs, `${inboxPrefixOf('gateway')}.>`)) ?? 'allowed',
      /Permissions Violation/,
    );
    assert.match(
      (await subscribeVerdict(fs, `${inboxPrefixOf('supervisor')}.>`)) ?? 'allowed',
      /Permissions Violation/,
    );
  });

  it('still carries requests on each role inbox: gateway → fs → driver, and the supervisor’s PING', async () => {
    const driver = await connectAs('driver');
    driver.subscribe(SUBJECTS.drvRead, {
      callback: (_err, msg) => {
        msg.respond('bytes');
      },
    });
    const fs = await connectAs('fs');
    fs.subscribe(SUBJECTS.fsStat, {
      callback: (_err, msg) =>
        void fs
          .request(SUBJECTS.drvRead, '', { timeout: 2000 })
          .then((reply) => msg.respond(`fs:${reply.string()}`))
          // The last test's requester gives up before this answer: nothing to answer then.
          .catch(() => {}),
    });
    await Promise.all([driver.flush(), fs.flush()]);
    const gateway = await connectAs('gateway');
    assert.equal((await gateway.request(SUBJECTS.fsStat, 'x', { timeout: 2000 })).string(), 'fs:bytes');
    const supervisor = await connectAs('supervisor');
    await new Svcm(driver).add({ name: SERVICE_NAMES.driver, version: '1.0.0' });
    await driver.flush();
    const ping = await supervisor.request(`$SRV.PING.${SERVICE_NAMES.driver}`, '', { timeout: 2000 });
    assert.equal(ping.json<{ name: string }>().name, SERVICE_NAMES.driver);
  });

  it('makes a client on the shared _INBOX prefix fail its requests: the permission is what bites', async () => {
    const gateway = await connectAs('gateway', '_INBOX');
    await assert.rejects(
      gateway.request(SUBJECTS.fsStat, 'x', { timeout: 1000 }),
      /Permissions Violation for Subscription to "_INBOX\./,
    );
  });
});
