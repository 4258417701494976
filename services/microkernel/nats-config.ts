/**
 * The NATS server configuration of the microkernel: one user per server, each allowed only its own subjects
 * (least privilege on the bus, docs/architecture.md, 'The microkernel'). Every user is an nkey: the server
 * holds only public keys, each client signs the server's challenge with its seed, and no secret is ever
 * written into a config. Used at run time with fresh key pairs, and to write a static config (public keys
 * as `$ENV_VAR` references) for compose and Kubernetes.
 */

import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createUser } from '@nats-io/nkeys';
import { DEFAULT_DEADLINE_MS } from '../contract/file-service.ts';
import { inboxPrefixOf } from '../ipc/connect.ts';
import { SERVICE_NAMES, type ServiceName } from '../ipc/subjects.ts';
import { SUPERVISOR_SUBJECTS } from '../supervisor/subjects.ts';

/** The roles of the microkernel's own processes. */
export const MICROKERNEL_ROLES = ['gateway', 'fs', 'driver', 'supervisor'] as const;
/** Every NATS user: the microkernel's, and the lab console's (the supervisors' control API only). */
export const NATS_ROLES = [...MICROKERNEL_ROLES, 'console'] as const;
export type NatsRole = (typeof NATS_ROLES)[number];

/** A literal value, or the name of an environment variable nats-server substitutes at start. */
export type ConfigValue = string | { env: string };

/** A NATS user as the server knows it: its nkey public key (`U…`). */
export type NatsUser = { publicKey: ConfigValue };

/** A NATS user as its client holds it: the key pair, the seed (`SU…`) being the secret. */
export type NatsKeyPair = { publicKey: string; seed: string };

export type Permissions = {
  publish: string[];
  subscribe: string[];
  /** May answer requests it received (on their reply subjects). */
  allowResponses: boolean;
};

/** The role's own reply subjects: no role may read another's replies. */
const inbox = (role: NatsRole) => `${inboxPrefixOf(role)}.>`;

/** The verbs of the NATS service API (@nats-io/services ServiceVerb). */
const SERVICE_VERBS = ['PING', 'INFO', 'STATS'] as const;

/**
 * The subjects a service-API server subscribes to for PING/INFO/STATS of all services, of its name and of
 * its instance. The verbs are spelled out: `$SRV.*` would also admit a subscription to `$SRV.>` (the
 * server matches the subscription's `>` as a token against `*`), i.e. every service-API message, which
 * the isolation probe found (isolation-probe.ts).
 */
function serviceApi(name: ServiceName | typeof SUPERVISOR_SUBJECTS.serviceName): string[] {
  return SERVICE_VERBS.flatMap((verb) => [`$SRV.${verb}`, `$SRV.${verb}.${name}`, `$SRV.${verb}.${name}.*`]);
}

const ping = (name: ServiceName) => [`$SRV.PING.${name}`, `$SRV.PING.${name}.*`];

/**
 * What each server may do. The gateway reaches the file server and the two PINGs of its readiness
 * check, never a driver subject; the file server asks the driver; the driver only answers (its caller,
 * or on a grant the gateway inbox its caller named). Each subscribes to its own inbox prefix only (the
 * clients set it: services/ipc/connect.ts), so no server reads the replies meant for another — the file
 * server's to the gateway, the supervisor's control answers.
 */
export const PERMISSIONS: Record<NatsRole, Permissions> = {
  gateway: {
    // The file server's instance PINGs tell its crashes apart (the gateway retries across them).
    publish: ['kstyles.fs.>', ...ping(SERVICE_NAMES.fs), `$SRV.PING.${SERVICE_NAMES.driver}`],
    // The supervisors' events: a file server's exit reissues the requests it held (as the file server
    // does for the driver).
    subscribe: [inbox('gateway'), 'kstyles.sup.events.*'],
    allowResponses: false,
  },
  fs: {
    publish: ['kstyles.drv.>', ...ping(SERVICE_NAMES.driver)],
    // The supervisors' events: a driver's exit reissues the reads it held (services/ipc/supervisor-news.ts).
    subscribe: ['kstyles.fs.>', 'kstyles.sup.events.*', ...serviceApi(SERVICE_NAMES.fs), inbox('fs')],
    allowResponses: true,
  },
  driver: {
    // Grant transfers: the bytes of a read go to the gateway's reply subject the file server names.
    publish: [inbox('gateway')],
    subscribe: ['kstyles.drv.>', ...serviceApi(SERVICE_NAMES.driver)],
    allowResponses: true,
  },
  supervisor: {
    // Events and control of every supervisor, and the service API (health checks, `nats micro`).
    publish: ['kstyles.sup.>', '$SRV.>'],
    subscribe: ['kstyles.sup.>', '$SRV.>', inbox('supervisor')],
    allowResponses: true,
  },
  console: {
    // The lab console (lab/console): asks the supervisors for status, kill, restart and crashloop, finds
    // them by PING, and follows their events. It cannot publish an event, answer as a supervisor or
    // reach a file-service subject.
    publish: [`${SUPERVISOR_SUBJECTS.controlGroup('*')}.*`, `$SRV.PING.${SUPERVISOR_SUBJECTS.serviceName}`],
    subscribe: [SUPERVISOR_SUBJECTS.events('*'), inbox('console')],
    allowResponses: false,
  },
};

/**
 * The environment variables of a deployment's keys: nats-server reads each role's public key
 * (`KSTYLES_NATS_<ROLE>_NKEY`), a client started for a role its seed (`KSTYLES_NATS_<ROLE>_SEED`).
 * A public key starts with a letter, so nats-server's substitution always reads it as a string.
 */
export const NATS_KEY_ENV = {
  publicKey: (role: NatsRole) => `KSTYLES_NATS_${role.toUpperCase()}_NKEY`,
  seed: (role: NatsRole) => `KSTYLES_NATS_${role.toUpperCase()}_SEED`,
} as const;

/** A fresh nkey user key pair per role: one run of the lab or the microkernel, or one deployment. */
export function generateKeyPairs(): Record<NatsRole, NatsKeyPair> {
  const pairs = {} as Record<NatsRole, NatsKeyPair>;
  for (const role of NATS_ROLES) {
    const pair = createUser();
    pairs[role] = { publicKey: pair.getPublicKey(), seed: new TextDecoder().decode(pair.getSeed()) };
  }
  return pairs;
}

/** Both variables of every role, as a deployment's environment (compose's .env, a Kubernetes Secret). */
export function keyPairsEnv(pairs: Record<NatsRole, NatsKeyPair>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const role of NATS_ROLES) {
    env[NATS_KEY_ENV.publicKey(role)] = pairs[role].publicKey;
    env[NATS_KEY_ENV.seed(role)] = pairs[role].seed;
  }
  return env;
}

/** Users whose public keys come from KSTYLES_NATS_<ROLE>_NKEY at nats-server start (for a static file). */
export function usersFromEnv(): Record<NatsRole, NatsUser> {
  const users = {} as Record<NatsRole, NatsUser>;
  for (const role of NATS_ROLES) users[role] = { publicKey: { env: NATS_KEY_ENV.publicKey(role) } };
  return users;
}

export type NatsConfigOptions = {
  /** Client listen address, e.g. 127.0.0.1 (local) or 0.0.0.0 (container). */
  host: string;
  port: number;
  /** Monitoring HTTP port (/varz, /connz, /healthz); absent = none. */
  monitorPort?: number;
  users: Record<NatsRole, NatsUser>;
  /** Server-to-client pings: a dead client is dropped after about pingIntervalSeconds × pingMax. */
  pingIntervalSeconds?: number;
  pingMax?: number;
  serverName?: string;
  /** How long a server may answer a request it received: the gateway's deadline (default 5 s). */
  responsesExpireMs?: number;
};

export const NATS_CONFIG_DEFAULTS = {
  pingIntervalSeconds: 2,
  pingMax: 2,
  /** NATS's default; chunks stay at 256 KiB, far below it. */
  maxPayloadBytes: 1024 * 1024,
  /**
   * A response permission lives as long as the asker waits (the gateway's deadline). Without an expiry
   * nats-server keeps the reply subject of every request a server received until the server has
   * answered on it, and once a connection holds more than 4,096 it walks all of them at every message
   * delivered to it (client.go, pruneReplyPerms). On a grant the file server never answers the gateway
   * (the driver does), so its entries only grew: after some 40,000 requests nats-server spent 2–4 times
   * the CPU on each one and the microkernel's p99 at 900 req/s went from 20 ms to over a second
   * (services/microkernel/README.md, 'Response permissions that expire'). With an expiry, entries older
   * than it go at the next walk.
   */
  responsesExpireMs: DEFAULT_DEADLINE_MS,
} as const;

/**
 * Go's collector target for nats-server (GOGC; Go's default is 100). Every message a server publishes is
 * a fresh buffer in nats-server, so at 100 its collector runs through a large file's chunks again and
 * again: at 400 its CPU per 1 MiB GET fell from 6.4–7.8 to 3.8–4.2 ms and per 64 KiB GET from 0.91 to
 * 0.52 ms, for a peak RSS of 42 MB instead of 24; 800 bought nothing more (services/microkernel/README,
 * 'The bus's collector').
 */
export const NATS_GOGC = '400';

/**
 * How Go gives nats-server's freed memory back to the kernel (GODEBUG; Go's default on Linux is
 * MADV_DONTNEED). With MADV_FREE the kernel takes the pages only when it needs them, so a buffer reused
 * soon after is not faulted in afresh: per 1 MiB GET nats-server took 10–16 page faults instead of 35–75,
 * and 3.4–4.3 ms of CPU instead of 4.0–4.9 (services/microkernel/README.md, 'Page faults').
 */
export const NATS_GODEBUG = 'madvdontneed=0';

/**
 * The environment nats-server runs with: GOGC at NATS_GOGC and GODEBUG at NATS_GODEBUG, each unless the
 * operator's environment sets it.
 */
export function natsServerEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return { GOGC: env.GOGC ?? NATS_GOGC, GODEBUG: env.GODEBUG ?? NATS_GODEBUG };
}

const quote = (value: string) => JSON.stringify(value);
const configValue = (value: ConfigValue) => (typeof value === 'string' ? quote(value) : `$${value.env}`);
const list = (values: string[]) => `[${values.map(quote).join(', ')}]`;

function renderPermissions(p: Permissions, responsesExpireMs: number): string {
  // An empty allow list would allow everything: a server that publishes nothing is denied '>'.
  const publish = p.publish.length > 0 ? `{ allow: ${list(p.publish)} }` : `{ deny: ${list(['>'])} }`;
  return [
    `publish: ${publish}`,
    `subscribe: { allow: ${list(p.subscribe)} }`,
    ...(p.allowResponses ? [`allow_responses: { max: 1, expires: ${quote(`${responsesExpireMs}ms`)} }`] : []),
  ].join(', ');
}

/** nats-server configuration text (the 2.9 format). */
export function renderNatsConfig(options: NatsConfigOptions): string {
  const responsesExpireMs = options.responsesExpireMs ?? NATS_CONFIG_DEFAULTS.responsesExpireMs;
  const lines = [
    '# kernel-styles microkernel: generated by services/microkernel/nats-config.ts',
    ...(options.serverName ? [`server_name: ${quote(options.serverName)}`] : []),
    `listen: ${quote(`${options.host}:${options.port}`)}`,
    ...(options.monitorPort !== undefined
      ? [`http: ${quote(`${options.host}:${options.monitorPort}`)}`]
      : []),
    `ping_interval: ${quote(`${options.pingIntervalSeconds ?? NATS_CONFIG_DEFAULTS.pingIntervalSeconds}s`)}`,
    `ping_max: ${options.pingMax ?? NATS_CONFIG_DEFAULTS.pingMax}`,
    `max_payload: ${NATS_CONFIG_DEFAULTS.maxPayloadBytes}`,
    'authorization {',
    '  users: [',
  ];
  for (const role of NATS_ROLES) {
    lines.push(
      `    # ${role}`,
      `    { nkey: ${configValue(options.users[role].publicKey)}, permissions: { ${renderPermissions(PERMISSIONS[role], responsesExpireMs)} } }`,
    );
  }
  lines.push('  ]', '}', '');
  return lines.join('\n');
}

/**
 * Writes the config of a nats-server started for one run into a fresh private directory (0700, the file
 * 0600: it names the run's credentials). The caller removes `dir` when the run ends.
 */
export function writeRunNatsConfig(options: NatsConfigOptions): { dir: string; file: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `${options.serverName ?? 'kstyles-nats'}-`));
  chmodSync(dir, 0o700);
  const file = path.join(dir, 'nats.conf');
  writeFileSync(file, renderNatsConfig(options), { mode: 0o600 });
  return { dir, file };
}
