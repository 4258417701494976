/**
 * How every microkernel process connects to NATS (docs/architecture.md, 'The microkernel'): never give up
 * reconnecting (the client default of 10 attempts would strand a server after a NATS restart), wait for
 * the first connection (NATS may start after us), and reconnect quickly on loopback.
 */
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { ProcessError, ProcessErrorCode } from '../contract/errors.ts';

export type NatsCredentials = { user?: string; pass?: string };

export type NatsConnectOptions = NatsCredentials & {
  servers: string | string[];
  /** Connection name shown by `nats server report connections` and in the server log. */
  name: string;
  /** Give up when the first connection has not succeeded within this bound. Default 10 s. */
  firstConnectTimeoutMs?: number;
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

export async function connectNats(options: NatsConnectOptions): Promise<NatsConnection> {
  const bound = options.firstConnectTimeoutMs ?? NATS_CLIENT_DEFAULTS.firstConnectTimeoutMs;
  const pending = connect({
    servers: options.servers,
    name: options.name,
    ...(options.user !== undefined ? { user: options.user } : {}),
    ...(options.pass !== undefined ? { pass: options.pass } : {}),
    maxReconnectAttempts: -1,
    waitOnFirstConnect: true,
    reconnectTimeWait: NATS_CLIENT_DEFAULTS.reconnectTimeWaitMs,
    timeout: NATS_CLIENT_DEFAULTS.connectTimeoutMs,
    pingInterval: NATS_CLIENT_DEFAULTS.pingIntervalMs,
    maxPingOut: NATS_CLIENT_DEFAULTS.maxPingOut,
    // Otherwise every request builds two Errors up front (for a stack trace of a timeout that almost
    // never happens); failures are classified by type (ipc.ts), never by their stack.
    noAsyncTraces: true,
  });
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      // A connection that arrives after all would keep the process alive: close it.
      pending.then((nc) => nc.close()).catch(() => {});
      reject(
        new NatsUnreachableError(
          `${options.name}: cannot reach NATS at ${[options.servers].flat().join(', ')} within ${bound} ms: ` +
            'start nats-server (or pass the right --nats URL / NATS_URL) and check the credentials',
        ),
      );
    }, bound);
  });
  try {
    return await Promise.race([pending, gaveUp]);
  } catch (err) {
    if (err instanceof NatsUnreachableError) throw err;
    throw new NatsUnreachableError(
      `${options.name}: NATS at ${[options.servers].flat().join(', ')} refused the connection: ${
        err instanceof Error ? err.message : String(err)
      }`,
    );
  } finally {
    clearTimeout(timer);
  }
}
