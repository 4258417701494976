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
import {
  generateKeyPairs,
  keyPairsEnv,
  NATS_ROLES,
  type NatsRole,
  renderNatsConfig,
  usersFromEnv,
} from './nats-config.ts';
import { type RoleNats, startRoleNats } from './testing/role-nats.ts';

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
  it('generates a valid config with a fresh nkey pair per role and run, and no secret in it', async () => {
    const pairs = generateKeyPairs();
    const again = generateKeyPairs();
    for (const role of NATS_ROLES) {
      assert.match(pairs[role].publicKey, /^U[A-Z2-7]{55}$/);
      assert.match(pairs[role].seed, /^SU[A-Z2-7]{56}$/);
      assert.notEqual(pairs[role].seed, again[role].seed);
    }
    const config = renderNatsConfig({ host: '127.0.0.1', port: 4222, monitorPort: 8222, users: pairs });
    assert.match(config, /ping_interval: "2s"/);
    assert.match(config, /http: "127\.0\.0\.1:8222"/);
    for (const role of NATS_ROLES) {
      assert.ok(config.includes(`nkey: "${pairs[role].publicKey}"`), role);
      assert.ok(!config.includes(pairs[role].seed), `${role}: the seed stays with the client`);
    }
    assert.doesNotMatch(config, /password/);
    const result = await natsServerAccepts(config);
    assert.ok(result.ok, result.output);
    assert.doesNotMatch(result.output, /Plaintext passwords/);
  });

  it('writes a static config whose public keys come from the environment (for compose and k8s)', async () => {
    const config = renderNatsConfig({
      host: '0.0.0.0',
      port: 4222,
      monitorPort: 8222,
      users: usersFromEnv(),
    });
    assert.match(config, /nkey: \$KSTYLES_NATS_GATEWAY_NKEY/);
    assert.doesNotMatch(config, /nkey: "|password/, 'no literal key, no password in a static config');
    const result = await natsServerAccepts(config, keyPairsEnv(generateKeyPairs()));
    assert.ok(result.ok, result.output);
  });
});

describe('the roles on a real nats-server', () => {
  let roles: RoleNats;
  before(async () => {
    roles = await startRoleNats();
  });
  after(async () => {
    await roles?.stop();
  });
  const connectAs = (role: NatsRole, inboxPrefix?: string) => roles.connectAs(role, inboxPrefix);

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

  it("lets the console reach the supervisors' control API and events, and nothing else", async () => {
    const supervisor = await connectAs('supervisor');
    supervisor.subscribe('kstyles.sup.ctl.microkernel.status', {
      callback: (_err, msg) => {
        msg.respond('{"phase":"running"}');
      },
    });
    const fileServer = await connectAs('fs');
    let forged = 0;
    fileServer.subscribe('kstyles.sup.events.*', {
      callback: () => {
        forged++;
      },
    });
    fileServer.subscribe(SUBJECTS.fsStat, {
      callback: (_err, msg) => {
        msg.respond('leak');
      },
    });
    await Promise.all([supervisor.flush(), fileServer.flush()]);
    const consoleNc = await connectAs('console');
    const status = await consoleNc.request('kstyles.sup.ctl.microkernel.status', '{}', { timeout: 2000 });
    assert.equal(status.json<{ phase: string }>().phase, 'running');
    assert.equal(await subscribeVerdict(consoleNc, 'kstyles.sup.events.microkernel'), null, 'events');
    for (const subject of [
      'kstyles.fs.>',
      `${inboxPrefixOf('supervisor')}.>`,
      '_INBOX.>',
      'kstyles.sup.ctl.>',
    ]) {
      assert.match(
        (await subscribeVerdict(consoleNc, subject)) ?? 'allowed',
        /Permissions Violation/,
        subject,
      );
    }
    await assert.rejects(
      consoleNc.request(SUBJECTS.fsStat, 'x', { timeout: 1000 }),
      /Permissions Violation|timeout/i,
    );
    consoleNc.publish('kstyles.sup.events.microkernel', '{"type":"gave_up"}');
    await consoleNc.flush().catch(() => {});
    await fileServer.flush();
    assert.equal(forged, 0, 'the console cannot publish a supervisor event');
  });

  it('makes a client on the shared _INBOX prefix fail its requests: the permission is what bites', async () => {
    const gateway = await connectAs('gateway', '_INBOX');
    await assert.rejects(
      gateway.request(SUBJECTS.fsStat, 'x', { timeout: 1000 }),
      /Permissions Violation for Subscription to "_INBOX\./,
    );
  });
});

describe('nkey authentication on a real nats-server', () => {
  let nats: TestNatsServer;
  const pairs = generateKeyPairs();
  before(async () => {
    nats = await startNatsServer({ config: renderNatsConfig({ host: '127.0.0.1', port: 0, users: pairs }) });
  });
  after(() => nats?.stop());

  const attempt = (credentials: { seed?: string; user?: string; pass?: string }) =>
    connectNats({ servers: nats.url, name: 'test-auth', ...credentials, firstConnectTimeoutMs: 3000 });

  it("admits a role's seed, and refuses a stranger's seed, no credentials and a password", async () => {
    const nc = await attempt({ seed: pairs.driver.seed });
    await nc.close();
    await assert.rejects(
      attempt({ seed: generateKeyPairs().driver.seed }),
      /refused the connection: Authorization Violation/,
    );
    await assert.rejects(attempt({}), /refused the connection: Authorization Violation/);
    await assert.rejects(
      attempt({ user: 'kstyles-driver', pass: 'x' }),
      /refused the connection: Authorization Violation/,
    );
  });

  it('names a value that is not a user seed before sending anything', async () => {
    await assert.rejects(attempt({ seed: pairs.driver.publicKey }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'NATS_UNREACHABLE');
      assert.match(err.message, /test-auth: the NATS nkey seed is not a user seed/);
      return true;
    });
  });
});

describe('response permissions on a real nats-server', () => {
  /** A file server that answers each stat after the milliseconds its request names. */
  async function answeringAfterDelay(roles: RoleNats): Promise<NatsConnection> {
    const fs = await roles.connectAs('fs');
    fs.subscribe(SUBJECTS.fsStat, {
      callback: (_err, msg) => {
        setTimeout(() => msg.respond(`after ${msg.string()} ms`), Number(msg.string()));
      },
    });
    await fs.flush();
    return roles.connectAs('gateway');
  }

  it('lets a server answer 800 ms late within the default window, and refuses a 3 s late answer after a 1 s window', async () => {
    // nats-server keeps every reply subject a server may still answer until it expires; a window bounds
    // that table (NATS_CONFIG_DEFAULTS.responsesExpireMs). Its effect: a late answer is refused. The
    // short window leaves a prompt answer ~1 s of slack on a loaded machine; load only makes the late one later.
    const standard = await startRoleNats();
    const short = await startRoleNats({ responsesExpireMs: 1000 });
    try {
      const fromStandard = await answeringAfterDelay(standard);
      assert.equal(
        (await fromStandard.request(SUBJECTS.fsStat, '800', { timeout: 3000 })).string(),
        'after 800 ms',
      );
      const fromShort = await answeringAfterDelay(short);
      assert.equal(
        (await fromShort.request(SUBJECTS.fsStat, '20', { timeout: 3000 })).string(),
        'after 20 ms',
      );
      await assert.rejects(fromShort.request(SUBJECTS.fsStat, '3000', { timeout: 4500 }), /timeout|TIMEOUT/i);
    } finally {
      await Promise.all([standard.stop(), short.stop()]);
    }
  });

  it('renders the window into every role that may answer', () => {
    const config = renderNatsConfig({
      host: '127.0.0.1',
      port: 4222,
      users: usersFromEnv(),
      responsesExpireMs: 7000,
    });
    assert.equal(config.match(/allow_responses: \{ max: 1, expires: "7000ms" \}/g)?.length, 3, config);
    assert.doesNotMatch(config, /allow_responses: true/);
  });
});
