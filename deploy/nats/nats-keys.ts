/**
 * Fresh NATS nkey pairs for one deployment (services/microkernel/nats-config.ts): nats-server gets each
 * role's public key (`KSTYLES_NATS_<ROLE>_NKEY`, read by deploy/nats/nats.conf and the cluster config),
 * the microkernel's processes their seeds (`KSTYLES_NATS_<ROLE>_SEED`). No deploy file holds a key.
 * For compose it also makes Grafana's admin password (`KSTYLES_GRAFANA_ADMIN_PASSWORD`): random per
 * deployment, never a default; Grafana is anonymous read-only with its login form and basic auth off, so
 * nothing logs in with it.
 *
 *   node --import tsx deploy/nats/nats-keys.ts --write-env deploy/.env     compose (keeps the file's other lines)
 *   node --import tsx deploy/nats/nats-keys.ts --k8s | kubectl apply -f -  the Kubernetes Secret nats-nkeys
 *   node --import tsx deploy/nats/nats-keys.ts                            the variables, to stdout
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { parseCommand, UsageError } from '../../cli/args.ts';
import {
  generateKeyPairs,
  keyPairsEnv,
  NATS_ROLES,
  type NatsKeyPair,
  type NatsRole,
} from '../../services/microkernel/nats-config.ts';

/** The Secret the Kubernetes manifests read: `<role>-nkey` (nats StatefulSet) and `<role>-seed` (servers). */
export const K8S_NKEYS_SECRET = { name: 'nats-nkeys', namespace: 'kstyles' } as const;
export const k8sSecretKey = {
  publicKey: (role: NatsRole) => `${role}-nkey`,
  seed: (role: NatsRole) => `${role}-seed`,
} as const;

export function k8sSecret(pairs: Record<NatsRole, NatsKeyPair>): string {
  const stringData: Record<string, string> = {};
  for (const role of NATS_ROLES) {
    stringData[k8sSecretKey.publicKey(role)] = pairs[role].publicKey;
    stringData[k8sSecretKey.seed(role)] = pairs[role].seed;
  }
  return stringify({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { ...K8S_NKEYS_SECRET },
    type: 'Opaque',
    stringData,
  });
}

/** The variable compose gives Grafana as its admin password (GF_SECURITY_ADMIN_PASSWORD). */
export const GRAFANA_ADMIN_PASSWORD_ENV = 'KSTYLES_GRAFANA_ADMIN_PASSWORD';

/** A fresh Grafana admin password for one deployment: 32 random bytes, base64url (no character compose or a shell would expand). */
export function grafanaAdminEnv(): Record<string, string> {
  return { [GRAFANA_ADMIN_PASSWORD_ENV]: randomBytes(32).toString('base64url') };
}

const KEYS_HEADER =
  '# Secrets of this deployment (NATS nkeys, Grafana admin), written by deploy/nats/nats-keys.ts';

/** Lines this script writes: its header (and the older one) and the secrets themselves. */
const OWN_LINE = new RegExp(
  `^(# NATS nkeys of this deployment, written by deploy/nats/nats-keys\\.ts|# Secrets of this deployment.*|KSTYLES_NATS_\\w+_(NKEY|SEED)=.*|${GRAFANA_ADMIN_PASSWORD_ENV}=.*)$`,
);

/** `text` (an .env file) with its earlier secrets replaced by `env`'s, every other line kept. */
export function withKeys(text: string, env: Record<string, string>): string {
  const kept = text.split('\n').filter((line) => line !== '' && !OWN_LINE.test(line));
  return `${[...kept, KEYS_HEADER, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)].join('\n')}\n`;
}

const COMMAND = {
  name: 'nats-keys',
  summary:
    "fresh NATS nkey pairs for one deployment's roles (and, with --write-env, Grafana's admin password)",
  usage: 'node --import tsx deploy/nats/nats-keys.ts [--write-env FILE | --k8s]',
  flags: {
    // Not --env-file: Node 20 takes that flag as its own wherever it appears on the command line.
    'write-env': {
      type: 'string',
      value: 'FILE',
      description:
        "write the variables and Grafana's admin password into this .env file (mode 0600), replacing earlier ones",
    },
    k8s: { type: 'boolean', description: `print the Kubernetes Secret ${K8S_NKEYS_SECRET.name}` },
  },
} as const;

export function run(argv: string[]): number {
  const parsed = parseCommand(COMMAND, argv);
  if (!parsed) return 0;
  const { flags } = parsed;
  if (flags.k8s && flags['write-env'])
    throw new UsageError('nats-keys: --k8s and --write-env exclude each other');
  const pairs = generateKeyPairs();
  if (flags.k8s) {
    process.stdout.write(k8sSecret(pairs));
    return 0;
  }
  const env = keyPairsEnv(pairs);
  const file = flags['write-env'];
  if (!file) {
    process.stdout.write(withKeys('', env));
    return 0;
  }
  const secrets = { ...env, ...grafanaAdminEnv() };
  writeFileSync(file, withKeys(existsSync(file) ? readFileSync(file, 'utf8') : '', secrets), { mode: 0o600 });
  chmodSync(file, 0o600);
  process.stderr.write(
    `nats-keys: wrote the NATS keys of ${NATS_ROLES.join(', ')} and Grafana's admin password into ${file}\n`,
  );
  return 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    process.exitCode = run(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exitCode = err.exitCode;
  }
}
