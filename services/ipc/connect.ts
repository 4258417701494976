/**
 * How every kstyles process connects to NATS — the servers, the supervisor, the control API's clients
 * (docs/architecture.md, 'The microkernel'): never give up reconnecting (the client default of 10
 * attempts would strand a server after a NATS restart), wait for the first connection (NATS may start
 * after us), reconnect quickly on loopback, ping often enough to notice a dead server, and take replies
 * on the role's own inbox prefix (the server config lets no role subscribe to another's).
 */
import {
  AuthorizationError,
  type NatsConnection,
  nkeyAuthenticator,
  UserAuthenticationExpiredError,
} from '@nats-io/nats-core';
import { fromSeed } from '@nats-io/nkeys';
import { connect } from '@nats-io/transport-node';
import { ProcessError, ProcessErrorCode } from '../contract/errors.ts';

/**
 * The inbox prefix of a NATS user (a microkernel role: gateway, fs, driver, supervisor): its replies
 * arrive on `<prefix>.>`, and the server config lets each role subscribe only to its own.
 */
export function inboxPrefixOf(role: string): string {
  return `_INBOX_${role}`;
}

/**
 * How a client proves who it is: an nkey user seed (`SU…`, what every kstyles deployment uses), or the
 * user and password of an external NATS that has them.
 */
export type NatsCredentials = { seed?: string; user?: string; pass?: string };

export type NatsConnectOptions = NatsCredentials & {
  servers: string | string[];
  /** Connection name shown by `nats server report connections` and in the server log. */
  name: string;
  /** Replies arrive on `<inboxPrefix>.>` (see inboxPrefixOf); default the client's `_INBOX`. */
  inboxPrefix?: string;
  /** Give up when the first connection has not succeeded within this bound (Infinity: never). Default 10 s. */
  firstConnectTimeoutMs?: number;
  /** Per connection attempt. Default 2 s. */
  connectTimeoutMs?: number;
  /** Between reconnection attempts. Default 250 ms. */
  reconnectTimeWaitMs?: number;
};

export const NATS_CLIENT_DEFAULTS = {
  reconnectTimeWaitMs: 250,
  /** Per connection attempt. */
  connectTimeoutMs: 2000,
  firstConnectTimeoutMs: 10_000,
  /** Client-side pings find a dead server in ~2 intervals instead of minutes. */
  pingIntervalMs: 2000,
  maxPingOut: 2,
} as const;

/** The NATS server could not be reached in time: the message names it and says what to check. */
export class NatsUnreachableError extends ProcessError {
  override readonly name = 'NatsUnreachableError';
  readonly code = ProcessErrorCode.NATS_UNREACHABLE;
}

/** The seed as the nkey authenticator takes it; a value that is not a user seed is named, not sent. */
function seedBytes(seed: string, name: string): Uint8Array {
  const bytes = new TextEncoder().encode(seed.trim());
  try {
    fromSeed(bytes);
  } catch (err) {
    throw new NatsUnreachableError(
      `${name}: the NATS nkey seed is not a user seed (${(err as Error).message}): it is the SU… line of a key pair ` +
        'made by deploy/nats/nats-keys.ts (or `nk -gen user`)',
    );
  }
  return bytes;
}

/**
 * The first connection is tried here, again every reconnectTimeWaitMs until the bound, rather than by the
 * client's waitOnFirstConnect: a client waiting for its first connection cannot be stopped, so a command
 * that gave up on a dead NATS (kstyles ps, chaos) would print its error and never exit.
 */
export async function connectNats(options: NatsConnectOptions): Promise<NatsConnection> {
  const bound = options.firstConnectTimeoutMs ?? NATS_CLIENT_DEFAULTS.firstConnectTimeoutMs;
  const waitMs = options.reconnectTimeWaitMs ?? NATS_CLIENT_DEFAULTS.reconnectTimeWaitMs;
  const servers = [options.servers].flat().join(', ');
  const authenticator =
    options.seed !== undefined ? nkeyAuthenticator(seedBytes(options.seed, options.name)) : undefined;
  const deadline = performance.now() + bound;
  for (;;) {
    const left = deadline - performance.now();
    try {
      return await connect({
        servers: options.servers,
        name: options.name,
        ...(options.user !== undefined ? { user: options.user } : {}),
        ...(options.pass !== undefined ? { pass: options.pass } : {}),
        ...(authenticator ? { authenticator } : {}),
        ...(options.inboxPrefix !== undefined ? { inboxPrefix: options.inboxPrefix } : {}),
        maxReconnectAttempts: -1,
        reconnectTimeWait: waitMs,
        timeout: Math.max(
          1,
          Math.min(options.connectTimeoutMs ?? NATS_CLIENT_DEFAULTS.connectTimeoutMs, left),
        ),
        pingInterval: NATS_CLIENT_DEFAULTS.pingIntervalMs,
        maxPingOut: NATS_CLIENT_DEFAULTS.maxPingOut,
        // Otherwise every request builds two Errors up front (for a stack trace of a timeout that almost
        // never happens); failures are classified by type (ipc.ts), never by their stack.
        noAsyncTraces: true,
      });
    } catch (err) {
      // Credentials the server refuses will not get better by waiting.
      if (isAuthorizationError(err)) {
        throw new NatsUnreachableError(
          `${options.name}: NATS at ${servers} refused the connection: ${(err as Error).message}`,
        );
      }
      if (performance.now() + waitMs >= deadline) {
        throw new NatsUnreachableError(
          `${options.name}: cannot reach NATS at ${servers} within ${bound} ms: ` +
            'start nats-server (or pass the right --nats URL / NATS_URL) and check the credentials',
        );
      }
      await sleep(waitMs);
    }
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function isAuthorizationError(err: unknown): boolean {
  return err instanceof AuthorizationError || err instanceof UserAuthenticationExpiredError;
}
