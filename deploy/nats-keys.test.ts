import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NATS_KEY_ENV, NATS_ROLES } from '../services/microkernel/nats-config.ts';
import { GRAFANA_ADMIN_PASSWORD_ENV } from './nats/nats-keys.ts';

const SCRIPT = fileURLToPath(new URL('./nats/nats-keys.ts', import.meta.url));
const tmp = mkdtempSync(path.join(os.tmpdir(), 'kstyles-nats-keys-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const keysScript = (...args: string[]) =>
  execFileSync(process.execPath, ['--import', 'tsx', SCRIPT, ...args], { encoding: 'utf8' });

/** The KEY=VALUE lines of an .env text. */
const envOf = (text: string) =>
  Object.fromEntries(
    text
      .split('\n')
      .filter((l) => /^\w+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );

describe('deploy/nats/nats-keys.ts', () => {
  it("writes fresh key pairs and Grafana's admin password into an .env file (0600), replacing earlier ones and keeping the rest", () => {
    const file = path.join(tmp, '.env');
    writeFileSync(file, 'NODE_BASE=kstyles/node-base:local\n', { mode: 0o644 });
    keysScript('--write-env', file);
    const first = envOf(readFileSync(file, 'utf8'));
    keysScript('--write-env', file);
    const text = readFileSync(file, 'utf8');
    const second = envOf(text);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(second['NODE_BASE'], 'kstyles/node-base:local');
    assert.equal(Object.keys(second).length, 2 + 2 * NATS_ROLES.length, 'one line per secret, none twice');
    assert.equal(text.match(/^# Secrets of this deployment/gm)?.length, 1);
    // 32 random bytes in base64url: nothing compose or a shell would expand, fresh per deployment.
    assert.match(second[GRAFANA_ADMIN_PASSWORD_ENV] ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(second[GRAFANA_ADMIN_PASSWORD_ENV], first[GRAFANA_ADMIN_PASSWORD_ENV]);
    for (const role of NATS_ROLES) {
      assert.match(second[NATS_KEY_ENV.publicKey(role)] ?? '', /^U[A-Z2-7]{55}$/);
      assert.match(second[NATS_KEY_ENV.seed(role)] ?? '', /^SU[A-Z2-7]{56}$/);
      assert.notEqual(second[NATS_KEY_ENV.seed(role)], first[NATS_KEY_ENV.seed(role)], 'fresh per run');
    }
  });

  it('prints the Kubernetes Secret, and refuses --k8s with --write-env', () => {
    const secret = keysScript('--k8s');
    assert.match(secret, /^kind: Secret$/m);
    assert.match(secret, /^ {2}name: nats-nkeys$/m);
    assert.match(secret, /^ {2}gateway-seed: SU[A-Z2-7]{56}$/m);
    assert.throws(() => keysScript('--k8s', '--write-env', path.join(tmp, 'x.env')), /exclude each other/);
  });
});
