/**
 * The microkernel's isolation, tried live: each role's own credentials attempt publishes and subscribes
 * on the real NATS server (the other roles' subjects, the supervisors' control API and events, every
 * role's inbox, everything), a connection without credentials and one with a key the server does not
 * know try to get in, and every answer is compared with what the design allows (EXPECTED below, written
 * from the architecture, not from the server config it checks). An allow that was not expected is a
 * finding. The microkernel's supervisor runs it (it holds every role's credentials) when asked through
 * its control API (`probe` op, name NATS_ISOLATION_PROBE); the load generator asks as a client.
 *
 * Every subject carries a fresh token, so nothing real answers or acts: a control request to a supervisor
 * that does not exist, an event of one, a reply to an inbox nobody waits on. Allowed subscriptions only
 * see copies (no queue group) for the moment they last.
 */
import { randomBytes } from 'node:crypto';
import type { NatsConnection } from '@nats-io/nats-core';
import { createUser } from '@nats-io/nkeys';
import type { NatsIsolation, RoleIsolation } from '../contract/isolation.ts';
import { connectNats, inboxPrefixOf, type NatsCredentials } from '../ipc/connect.ts';
import { NATS_ROLES, type NatsRole } from './nats-config.ts';

export { NATS_ISOLATION_PROBE } from '../contract/isolation.ts';

export type ProbeOp = 'publish' | 'subscribe';

/** One attempt: an operation on a subject, what it stands for, and the roles the design lets do it. */
export type IsolationAttempt = {
  op: ProbeOp;
  subject: string;
  what: string;
  allowedFor: readonly NatsRole[];
};

/**
 * The attempts, for one run's token. Who may do what (docs/architecture.md, 'The microkernel'): the
 * gateway asks the file server, reads its own inbox and follows supervisor events; the file server asks the driver, serves its
 * subjects, follows supervisor events; the driver serves its subjects and sends granted chunks to the
 * gateway's inbox; the supervisor owns control, events and the service API; the lab console may call the
 * supervisors' control API and read their events. Nobody reads another role's
 * inbox, the shared `_INBOX`, or everything.
 */
export function isolationAttempts(token: string): IsolationAttempt[] {
  const publish = (subject: string, what: string, allowedFor: NatsRole[]): IsolationAttempt => ({
    op: 'publish',
    subject,
    what,
    allowedFor,
  });
  const subscribe = (subject: string, what: string, allowedFor: NatsRole[]): IsolationAttempt => ({
    op: 'subscribe',
    subject,
    what,
    allowedFor,
  });
  return [
    publish(`kstyles.fs.${token}`, 'request the file server', ['gateway']),
    publish(`kstyles.drv.${token}`, 'request the driver', ['fs']),
    publish(`kstyles.sup.ctl.${token}.kill`, "a supervisor's control API (kill)", ['supervisor', 'console']),
    publish(`kstyles.sup.events.${token}`, 'forge a supervisor event', ['supervisor']),
    publish(`$SRV.STATS.${token}`, 'the service API (stats of every server)', ['supervisor']),
    publish(`${inboxPrefixOf('gateway')}.${token}`, "reply into the gateway's inbox", ['driver']),
    publish(`${inboxPrefixOf('fs')}.${token}`, "reply into the file server's inbox", []),
    publish(`${inboxPrefixOf('supervisor')}.${token}`, "reply into the supervisor's inbox", []),
    publish(`${inboxPrefixOf('console')}.${token}`, "reply into the console's inbox", []),
    publish(`_INBOX.${token}`, 'reply into the shared inbox', []),
    publish(`isolation.${token}`, 'any other subject', []),
    subscribe('kstyles.fs.>', 'read every request to the file server', ['fs']),
    subscribe('kstyles.drv.>', 'read every request to the driver', ['driver']),
    subscribe('kstyles.sup.ctl.>', "read every supervisor's control requests", ['supervisor']),
    subscribe('kstyles.sup.events.*', 'read supervisor events', ['gateway', 'fs', 'supervisor', 'console']),
    subscribe('$SRV.>', 'read every service-API message', ['supervisor']),
    subscribe(`${inboxPrefixOf('gateway')}.>`, "read the gateway's replies", ['gateway']),
    subscribe(`${inboxPrefixOf('fs')}.>`, "read the file server's replies", ['fs']),
    subscribe(`${inboxPrefixOf('driver')}.>`, "read the driver's replies", []),
    subscribe(`${inboxPrefixOf('supervisor')}.>`, "read the supervisor's replies (control answers)", [
      'supervisor',
    ]),
    subscribe(`${inboxPrefixOf('console')}.>`, "read the console's replies (control answers)", ['console']),
    subscribe('_INBOX.>', 'read every reply on the shared inbox', []),
    subscribe('>', 'read everything', []),
  ];
}

type Violation = { operation: string; subject: string };

/** The permission violations the server reports on `nc`, as they arrive. */
function collectViolations(nc: NatsConnection): Violation[] {
  const violations: Violation[] = [];
  void (async () => {
    for await (const status of nc.status()) {
      const error = (status as { type: string; error?: unknown }).error as
        | { name?: string; operation?: string; subject?: string }
        | undefined;
      if (status.type === 'error' && error?.name === 'PermissionViolationError')
        violations.push({ operation: error.operation ?? '', subject: error.subject ?? '' });
    }
  })();
  return violations;
}

/** Makes every attempt as one role; resolves which the server refused. */
async function tryAs(
  servers: string[],
  role: NatsRole,
  credentials: NatsCredentials | undefined,
  attempts: IsolationAttempt[],
  timeoutMs: number,
): Promise<RoleIsolation> {
  const nc = await connectNats({
    servers,
    ...credentials,
    inboxPrefix: inboxPrefixOf(role),
    name: `kstyles-isolation-probe-${role}`,
    firstConnectTimeoutMs: timeoutMs,
  });
  try {
    const violations = collectViolations(nc);
    for (const attempt of attempts) {
      if (attempt.op === 'publish') nc.publish(attempt.subject);
      else nc.subscribe(attempt.subject);
    }
    // The server answers each refused PUB or SUB with -ERR before the PONG of this flush; one more turn
    // lets the client hand the last of them to the status iterator.
    await nc.flush();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const result: RoleIsolation = {
      role,
      allowed: 0,
      refused: 0,
      expectedAllowed: 0,
      expectedRefused: 0,
      unexpectedAllowed: [],
      unexpectedRefused: [],
    };
    for (const attempt of attempts) {
      const operation = attempt.op === 'publish' ? 'publish' : 'subscription';
      const refused = violations.some((v) => v.operation === operation && v.subject === attempt.subject);
      const expected = attempt.allowedFor.includes(role);
      const label = `${attempt.op} ${attempt.subject}: ${attempt.what}`;
      if (refused) result.refused++;
      else result.allowed++;
      if (expected) result.expectedAllowed++;
      else result.expectedRefused++;
      if (!refused && !expected) result.unexpectedAllowed.push(label);
      if (refused && expected) result.unexpectedRefused.push(label);
    }
    return result;
  } finally {
    await nc.close();
  }
}

/** Whether the server lets a client in with these credentials. */
async function admits(servers: string[], credentials: NatsCredentials, timeoutMs: number): Promise<boolean> {
  try {
    const nc = await connectNats({
      servers,
      ...credentials,
      name: 'kstyles-isolation-probe-stranger',
      firstConnectTimeoutMs: timeoutMs,
    });
    await nc.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs every attempt as every role, with that role's credentials, plus the two strangers. On a NATS
 * without users (no credentials at all) every role connects without, as it would; otherwise a role
 * whose credentials are not here is listed as untried. Roles run one after another: each is a few
 * hundred ms.
 */
export async function probeNatsIsolation(
  servers: string | string[],
  credentials: Partial<Record<NatsRole, NatsCredentials>>,
  timeoutMs = 5000,
): Promise<NatsIsolation> {
  const list = [servers].flat();
  const started = performance.now();
  const attempts = isolationAttempts(`probe-${randomBytes(8).toString('hex')}`);
  const withoutUsers = Object.values(credentials).every((c) => c === undefined);
  const tried = NATS_ROLES.filter((role) => withoutUsers || credentials[role] !== undefined);
  const roles: RoleIsolation[] = [];
  for (const role of tried) roles.push(await tryAs(list, role, credentials[role], attempts, timeoutMs));
  const stranger = new TextDecoder().decode(createUser().getSeed());
  return {
    server: list.join(','),
    attemptsPerRole: attempts.length,
    roles,
    untried: NATS_ROLES.filter((role) => !tried.includes(role)),
    anonymous: (await admits(list, {}, timeoutMs)) ? 'allowed' : 'refused',
    stranger: (await admits(list, { seed: stranger }, timeoutMs)) ? 'allowed' : 'refused',
    at: new Date().toISOString(),
    ms: Math.round(performance.now() - started),
  };
}
