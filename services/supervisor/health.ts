import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { NatsConnection } from '@nats-io/nats-core';
import { INSTANCE_METADATA_KEY } from './child-identity.ts';

/**
 * HTTP health checks that keep one connection per origin from check to check. A check on a kept
 * connection waits for a turn of the child's event loop; one on a new connection waits first in the
 * accept queue behind every connection that arrived before it, which an overloaded server drains last
 * (at a cold gateway's start under 200 req/s: 240 ms kept against 1.2 s and more new). A check that
 * fails or times out destroys its connection, and the next one opens a new one: a SIGSTOPped child
 * still answers none.
 */
export class HttpHealthChecks {
  readonly #http: http.Agent;
  readonly #https: https.Agent;

  /** keepAlive false: a new connection for every check (what measure-health.ts compares against). */
  constructor(options: { keepAlive?: boolean } = {}) {
    const agent = { keepAlive: options.keepAlive ?? true, maxSockets: 1 };
    this.#http = new http.Agent(agent);
    this.#https = new https.Agent(agent);
  }

  /** GET url; healthy only on 200 within timeoutMs. */
  check(url: string, timeoutMs: number): Promise<boolean> {
    const secure = url.startsWith('https:');
    const get = secure ? https.get : http.get;
    return new Promise((resolve) => {
      const req = get(url, { agent: secure ? this.#https : this.#http, timeout: timeoutMs }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
    });
  }

  /** Closes the kept connections. */
  close(): void {
    this.#http.destroy();
    this.#https.destroy();
  }
}

/** A TCP connect within timeoutMs. */
export function checkTcp(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** What the supervisor knows about the incarnation whose `$SRV.PING` answer it waits for. */
export type NatsIdentity = {
  /** The token handed to this incarnation (see child-identity.ts). */
  token: string;
  /** The service instance id, once an answer has been recognised as this child's. */
  pinnedId?: string;
  /** Instance ids of earlier incarnations, never to be mistaken for this one. */
  staleIds: Set<string>;
};

type PingAnswer = { name?: string; id?: string; metadata?: Record<string, string> };

function isOurs(answer: PingAnswer, service: string, identity: NatsIdentity): boolean {
  if (answer.name !== service || typeof answer.id !== 'string') return false;
  const token = answer.metadata?.[INSTANCE_METADATA_KEY];
  if (token !== undefined) return token === identity.token;
  return !identity.staleIds.has(answer.id);
}

/**
 * Pings the child's service. Before an instance id is pinned it asks every instance of the name
 * (`$SRV.PING.<service>`) and pins the one that is this child's; afterwards it asks only that
 * instance (`$SRV.PING.<service>.<id>`), so a frozen child cannot hide behind a healthy replica.
 * Returns the instance id on success, or null.
 */
export async function pingNatsService(
  nc: NatsConnection,
  service: string,
  identity: NatsIdentity,
  timeoutMs: number,
): Promise<string | null> {
  try {
    if (identity.pinnedId) {
      const reply = await nc.request(`$SRV.PING.${service}.${identity.pinnedId}`, '', { timeout: timeoutMs });
      const answer = reply.json<PingAnswer>();
      return answer.id === identity.pinnedId ? identity.pinnedId : null;
    }
    const replies = await nc.requestMany(`$SRV.PING.${service}`, '', {
      strategy: 'timer',
      maxWait: timeoutMs,
    });
    for await (const reply of replies) {
      let answer: PingAnswer;
      try {
        answer = reply.json<PingAnswer>();
      } catch {
        continue;
      }
      if (isOurs(answer, service, identity)) {
        identity.pinnedId = answer.id!;
        return answer.id!;
      }
    }
    return null;
  } catch {
    return null;
  }
}
