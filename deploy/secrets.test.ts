/**
 * No default credential and no plaintext secret in any committed configuration: every configuration
 * file git tracks is scanned (compose, Kubernetes, NATS, Prometheus, Grafana, Dockerfiles, scripts,
 * JSON). Secrets come from the generated deploy/.env (git-ignored) or a Kubernetes Secret, named by
 * required variables without defaults. The scanner is tested on bad examples first, so a pass means
 * something.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../cli/kit/repo.ts';
import { GRAFANA_ADMIN_PASSWORD_ENV } from './nats/nats-keys.ts';

/** Keys whose value would be a secret. */
const SECRET_KEY =
  /(^|[^a-z])(pass(word|wd)?|secret|token|api[_-]?key|credentials?|seed|private[_-]?key)($|[^a-z])/i;
/** A value that only names where the secret comes from: a required compose variable or nats-server's $VAR. */
const REFERENCE = /^(\$\{\w+:\?[^}]*\}|\$\w+)$/;
const NKEY_SEED = /\bS[UNOACPX][A-Z2-7]{56}\b/;
const PRIVATE_KEY = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;
/** `scheme://user:password@host`. */
const URL_PASSWORD = /\b[a-z][a-z0-9+.-]*:\/\/[^\s/@:"'$]+:[^\s/@"']+@/i;
/** A secret variable with a default (`${X_PASSWORD:-admin}`): the default is a credential in the file. */
const DEFAULTED_SECRET = /\$\{\w*(PASS|SECRET|TOKEN|NKEY|NATS\w*SEED|API_?KEY|PRIVATE_?KEY)\w*:?-/i;

/** Secret-named keys of a parsed YAML value whose value is a literal, as `path: value`. */
function literalSecrets(value: unknown, at: string[] = []): string[] {
  if (Array.isArray(value)) return value.flatMap((item, i) => literalSecrets(item, [...at, String(i)]));
  if (value === null || typeof value !== 'object') return [];
  const record = value as Record<string, unknown>;
  const found: string[] = [];
  // Kubernetes env entries: { name: X_PASSWORD, value: literal } (valueFrom a Secret is fine).
  if (typeof record['name'] === 'string' && SECRET_KEY.test(record['name']) && 'value' in record)
    found.push(`${[...at, 'value'].join('.')} (${record['name']}): a literal`);
  for (const [key, child] of Object.entries(record)) {
    if (
      SECRET_KEY.test(key) &&
      (typeof child === 'string' || typeof child === 'number') &&
      !REFERENCE.test(String(child).trim())
    )
      found.push(`${[...at, key].join('.')}: a literal`);
    found.push(...literalSecrets(child, [...at, key]));
  }
  return found;
}

/** What in one configuration file is a plaintext secret or a password login; empty when clean. */
export function secretFindings(file: string, text: string): string[] {
  const findings: string[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const where = `${file}:${i + 1}`;
    if (NKEY_SEED.test(line)) findings.push(`${where}: an nkey seed`);
    if (PRIVATE_KEY.test(line)) findings.push(`${where}: a private key`);
    if (URL_PASSWORD.test(line)) findings.push(`${where}: a password in a URL`);
    if (DEFAULTED_SECRET.test(line)) findings.push(`${where}: a secret variable with a default value`);
    // nats-server users with passwords (nkeys only: `{ nkey: $VAR, ... }`).
    if (/\.conf$/.test(file) && /\b(user|password|pass|token)\s*:/.test(line.replace(/#.*/, '')))
      findings.push(`${where}: a NATS user/password or token`);
  });
  if (/\.ya?ml$/.test(file)) {
    for (const doc of parseAllDocuments(text)) {
      for (const found of literalSecrets(doc.toJS({ maxAliasCount: -1 }))) findings.push(`${file}: ${found}`);
    }
  }
  return findings;
}

/** Every configuration file git tracks (not sources, tests or docs). */
function committedConfigs(): string[] {
  return execFileSync('git', ['ls-files'], { cwd: REPO_ROOT, encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .filter((file) => !/\.(ts|mjs|js|md|png|css|lock)$/.test(file) && file !== 'package-lock.json');
}

describe('the secret scanner', () => {
  it('finds literal passwords, defaulted secrets, seeds, URL passwords and NATS passwords', () => {
    const seed = `SU${'A'.repeat(56)}`;
    assert.equal(
      secretFindings('c.yml', 'services:\n  g:\n    environment:\n      GF_SECURITY_ADMIN_PASSWORD: admin\n')
        .length > 0,
      true,
    );
    assert.match(
      secretFindings('c.yml', `x:\n  P: \${KSTYLES_GRAFANA_ADMIN_PASSWORD:-admin}\n`).join(),
      /default/,
    );
    assert.match(
      secretFindings('k.yaml', 'env:\n  - name: DB_PASSWORD\n    value: hunter2\n').join(),
      /DB_PASSWORD/,
    );
    assert.match(secretFindings('a.sh', `export KSTYLES_NATS_FS_SEED=${seed}\n`).join(), /nkey seed/);
    assert.match(secretFindings('p.yml', 'url: nats://supervisor:s3cret@nats:4222\n').join(), /URL/);
    assert.match(
      secretFindings('n.conf', 'authorization { users: [ { user: fs, password: x } ] }\n').join(),
      /NATS/,
    );
  });

  it('accepts secrets named by required variables, nats $VAR references and Secret references', () => {
    assert.deepEqual(
      secretFindings('c.yml', `x:\n  P: "\${KSTYLES_GRAFANA_ADMIN_PASSWORD:?make it first}"\n`),
      [],
    );
    assert.deepEqual(secretFindings('n.conf', '{ nkey: $KSTYLES_NATS_FS_NKEY, permissions: {} }\n'), []);
    assert.deepEqual(
      secretFindings(
        'k.yaml',
        'env:\n  - name: KSTYLES_NATS_SEED\n    valueFrom: { secretKeyRef: { name: s, key: k } }\n',
      ),
      [],
    );
  });
});

describe('committed configuration', () => {
  const files = committedConfigs();

  it('is scanned whole (compose, Kubernetes, NATS, Grafana, Dockerfiles are all there)', () => {
    for (const file of ['deploy/docker-compose.yml', 'deploy/nats/nats.conf', 'deploy/k8s/nats.yaml'])
      assert.ok(files.includes(file), file);
    assert.ok(files.some((file) => file.startsWith('deploy/grafana/provisioning/')));
  });

  it('holds no plaintext secret and no password login', () => {
    const findings = files.flatMap((file) =>
      secretFindings(file, readFileSync(path.join(REPO_ROOT, file), 'utf8')),
    );
    assert.deepEqual(findings, []);
  });
});

describe("Grafana's security settings (deploy/docker-compose.yml)", () => {
  const compose = parseAllDocuments(
    readFileSync(path.join(REPO_ROOT, 'deploy', 'docker-compose.yml'), 'utf8'),
  )[0]!.toJS({
    maxAliasCount: -1,
  }) as { services: Record<string, { environment?: Record<string, string> }> };
  const env = compose.services['grafana']?.environment ?? {};

  it('lets anyone view, read-only, with no login form and no basic auth: nothing logs in with a password', () => {
    assert.equal(env['GF_AUTH_ANONYMOUS_ENABLED'], 'true');
    assert.equal(env['GF_AUTH_ANONYMOUS_ORG_ROLE'], 'Viewer');
    assert.equal(env['GF_AUTH_DISABLE_LOGIN_FORM'], 'true');
    assert.equal(env['GF_AUTH_BASIC_ENABLED'], 'false');
    assert.equal(env['GF_USERS_ALLOW_SIGN_UP'], 'false');
  });

  it("gives the admin account this deployment's generated password, required, with no default", () => {
    const value = env['GF_SECURITY_ADMIN_PASSWORD'] ?? '';
    assert.match(value, new RegExp(`^\\$\\{${GRAFANA_ADMIN_PASSWORD_ENV}:\\?.*deploy/nats/nats-keys\\.ts`));
  });
});
