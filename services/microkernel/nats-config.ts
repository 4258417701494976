/**
 * The NATS server configuration of the microkernel: one user per server, each allowed only its own subjects
 * (least privilege on the bus, docs/architecture.md, 'The microkernel'). Used at run time with generated
 * passwords, and to write a static config (passwords as `$ENV_VAR` references) for docker compose.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inboxPrefixOf } from '../ipc/connect.ts';
import { SERVICE_NAMES, type ServiceName } from '../ipc/subjects.ts';
import type { SUPERVISOR_SUBJECTS } from '../supervisor/subjects.ts';

export const NATS_ROLES = ['gateway', 'fs', 'driver', 'supervisor'] as const;
export type NatsRole = (typeof NATS_ROLES)[number];

/** A literal password, or the name of an environment variable nats-server substitutes at start. */
export type Secret = string | { env: string };

export type NatsUser = { user: string; pass: Secret };

export type Permissions = {
  publish: string[];
  subscribe: string[];
  /** May answer requests it received (on their reply subjects). */
  allowResponses: boolean;
};

/** The role's own reply subjects: no role may read another's replies. */
const inbox = (role: NatsRole) => `${inboxPrefixOf(role)}.>`;

/** The subjects a service-API server subscribes to for PING/INFO/STATS of its own name. */
function serviceApi(name: ServiceName | typeof SUPERVISOR_SUBJECTS.serviceName): string[] {
  return ['$SRV.*', `$SRV.*.${name}`, `$SRV.*.${name}.*`];
}

const ping = (name: ServiceName) => [`$SRV.PING.${name}`, `$SRV.PING.${name}.*`];

/**
 * What each server may do. The gateway reaches the file server and the two PINGs of its readiness
 * check, never a driver subject; the file server asks the driver; the driver only answers. Each
 * subscribes to its own inbox prefix only (the clients set it: services/ipc/connect.ts), so no server
 * reads the replies meant for another — the file server's to the gateway, the supervisor's control answers.
 */
export const PERMISSIONS: Record<NatsRole, Permissions> = {
  gateway: {
    publish: ['kstyles.fs.>', `$SRV.PING.${SERVICE_NAMES.fs}`, `$SRV.PING.${SERVICE_NAMES.driver}`],
    subscribe: [inbox('gateway')],
    allowResponses: false,
  },
  fs: {
    publish: ['kstyles.drv.>', ...ping(SERVICE_NAMES.driver)],
    subscribe: ['kstyles.fs.>', ...serviceApi(SERVICE_NAMES.fs), inbox('fs')],
    allowResponses: true,
  },
  driver: {
    publish: [],
    subscribe: ['kstyles.drv.>', ...serviceApi(SERVICE_NAMES.driver)],
    allowResponses: true,
  },
  supervisor: {
    // Events and control of every supervisor, and the service API (health checks, `nats micro`).
    publish: ['kstyles.sup.>', '$SRV.>'],
    subscribe: ['kstyles.sup.>', '$SRV.>', inbox('supervisor')],
    allowResponses: true,
  },
};

/** Fresh random credentials for one run: user names are the roles, passwords 24 random bytes. */
export function generateUsers(): Record<NatsRole, { user: string; pass: string }> {
  const users = {} as Record<NatsRole, { user: string; pass: string }>;
  for (const role of NATS_ROLES)
    users[role] = { user: `kstyles-${role}`, pass: randomBytes(24).toString('base64url') };
  return users;
}

/** Users whose passwords come from KSTYLES_NATS_<ROLE>_PASS at nats-server start (for a static file). */
export function usersFromEnv(): Record<NatsRole, NatsUser> {
  const users = {} as Record<NatsRole, NatsUser>;
  for (const role of NATS_ROLES) {
    users[role] = { user: `kstyles-${role}`, pass: { env: `KSTYLES_NATS_${role.toUpperCase()}_PASS` } };
  }
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
};

export const NATS_CONFIG_DEFAULTS = {
  pingIntervalSeconds: 2,
  pingMax: 2,
  /** NATS's default; chunks stay at 256 KiB, far below it. */
  maxPayloadBytes: 1024 * 1024,
} as const;

const quote = (value: string) => JSON.stringify(value);
const secret = (value: Secret) => (typeof value === 'string' ? quote(value) : `$${value.env}`);
const list = (values: string[]) => `[${values.map(quote).join(', ')}]`;

function renderPermissions(p: Permissions): string {
  // An empty allow list would allow everything: a server that publishes nothing is denied '>'.
  const publish = p.publish.length > 0 ? `{ allow: ${list(p.publish)} }` : `{ deny: ${list(['>'])} }`;
  return [
    `publish: ${publish}`,
    `subscribe: { allow: ${list(p.subscribe)} }`,
    ...(p.allowResponses ? ['allow_responses: true'] : []),
  ].join(', ');
}

/** nats-server configuration text (the 2.9 format). */
export function renderNatsConfig(options: NatsConfigOptions): string {
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
    const { user, pass } = options.users[role];
    lines.push(
      `    { user: ${quote(user)}, password: ${secret(pass)}, permissions: { ${renderPermissions(PERMISSIONS[role])} } }`,
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
