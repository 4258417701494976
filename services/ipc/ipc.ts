/**
 * One NATS request/reply hop: classifies how it ended and records it in
 * kstyles_ipc_request_duration_seconds{from,to,op,outcome} (docs/architecture.md, 'Metrics').
 *
 * The requests go through IpcClient, a request/reply multiplexer of our own rather than the client
 * library's `request`: that one builds an Error (a stack trace) for every request it completes, races
 * a timeout promise against each reply and rejects for every transport failure; on the hot path of a
 * chunk those cost more than the rest of the hop's client work (CPU profiles in
 * services/microkernel/README.md, 'CPU per request'). IpcClient keeps one inbox subscription, one map
 * of open requests and one timer per request, and settles each request with its outcome, never throws.
 */
import {
  createInbox,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  errors as natsErrors,
  type Payload,
  type Subscription,
} from '@nats-io/nats-core';
import type { Registry } from 'prom-client';
import type { ServiceError } from '../contract/errors.ts';
import { createIpcDurationHistogram, keyedObserver } from '../contract/metrics.ts';
import { errorOfReply } from './headers.ts';

export const IpcOutcome = {
  ok: 'ok',
  /** The callee answered with an error (NOT_FOUND, TIMEOUT, ...). */
  error: 'error',
  /** Nobody subscribes: the callee is down or restarting. */
  noResponders: 'no_responders',
  /** No answer in time: the callee died or hangs with the request, or is overloaded. */
  timeout: 'timeout',
  /** Our own NATS connection is down or closed (e.g. NATS restarting). */
  disconnected: 'disconnected',
  /** NATS refused the publish: a permissions misconfiguration. */
  denied: 'denied',
} as const;
export type IpcOutcome = (typeof IpcOutcome)[keyof typeof IpcOutcome];

export type Hop = { from: string; to: string; op: string };

export type IpcMetrics = { observe(hop: Hop, outcome: IpcOutcome, seconds: number): void };

export function createIpcMetrics(registry: Registry): IpcMetrics {
  const observe = keyedObserver(createIpcDurationHistogram(registry));
  return {
    observe: (hop, outcome, seconds) =>
      observe(`${hop.from} ${hop.to} ${hop.op} ${outcome}`, () => ({ ...hop, outcome }), seconds),
  };
}

export type IpcResult =
  | { outcome: typeof IpcOutcome.ok; msg: Msg }
  | { outcome: typeof IpcOutcome.error; msg: Msg; error: ServiceError }
  | { outcome: Exclude<IpcOutcome, 'ok' | 'error'>; cause: Error };

/** A request in flight: its result, and a way to stop waiting for it (a late reply is then ignored). */
export type IpcCall = {
  result: Promise<IpcResult>;
  /** Settles the call now as a timeout with this reason, if it is still open. */
  abandon(reason: string): void;
};

type Open = {
  subject: string;
  hop: Hop;
  started: bigint;
  timer: NodeJS.Timeout;
  resolve(result: IpcResult): void;
};

/** The inbox prefix the connection was made with (services/ipc/connect.ts sets one per role). */
function inboxPrefixOfConnection(nc: NatsConnection): string | undefined {
  return (nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix;
}

/** Request/reply over one connection, multiplexed on one inbox subscription (see the file comment). */
export class IpcClient {
  readonly #nc: NatsConnection;
  readonly #metrics: IpcMetrics | undefined;
  readonly #open = new Map<string, Open>();
  #inbox = '';
  #subscription: Subscription | undefined;
  #next = 0;

  constructor(nc: NatsConnection, metrics?: IpcMetrics) {
    this.#nc = nc;
    this.#metrics = metrics;
    void this.#followErrors();
    void nc.closed().then(() => this.#failAll(IpcOutcome.disconnected, 'the NATS connection closed'));
  }

  /** Sends one request; the result never rejects, it classifies transport failures. */
  request(
    hop: Hop,
    subject: string,
    payload: Payload | undefined,
    options: { headers?: MsgHdrs; timeoutMs: number },
  ): IpcCall {
    const token = (this.#next++).toString(36);
    let settle!: (result: IpcResult) => void;
    const result = new Promise<IpcResult>((resolve) => {
      settle = resolve;
    });
    const open: Open = {
      subject,
      hop,
      started: process.hrtime.bigint(),
      timer: setTimeout(
        () => this.#settle(token, IpcOutcome.timeout, new natsErrors.TimeoutError()),
        Math.max(1, Math.floor(options.timeoutMs)),
      ),
      resolve: settle,
    };
    this.#open.set(token, open);
    try {
      this.#subscribe();
      this.#nc.publish(subject, payload, {
        reply: this.#inbox + token,
        ...(options.headers ? { headers: options.headers } : {}),
      });
    } catch (err) {
      this.#settle(
        token,
        err instanceof natsErrors.PermissionViolationError ? IpcOutcome.denied : IpcOutcome.disconnected,
        err instanceof Error ? err : new Error(String(err)),
      );
    }
    return {
      result,
      abandon: (reason) => this.#settle(token, IpcOutcome.timeout, new Error(reason)),
    };
  }

  /** Subscribes the inbox on first use, and again after NATS refused it (the error then says why). */
  #subscribe(): void {
    if (this.#subscription && !this.#subscription.isClosed()) return;
    this.#inbox = `${createInbox(inboxPrefixOfConnection(this.#nc))}.`;
    this.#subscription = this.#nc.subscribe(`${this.#inbox}*`, {
      callback: (err, msg) => {
        if (err) {
          // NATS refused the subscription: no reply can reach this client.
          this.#failAll(
            err instanceof natsErrors.PermissionViolationError ? IpcOutcome.denied : IpcOutcome.disconnected,
            err.message,
          );
          return;
        }
        this.#reply(msg);
      },
    });
  }

  #reply(msg: Msg): void {
    const token = msg.subject.slice(this.#inbox.length);
    const open = this.#open.get(token);
    if (!open) return; // A late or second reply (a retried grant may deliver twice): the first counted.
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      this.#settle(token, IpcOutcome.noResponders, new natsErrors.NoRespondersError(open.subject));
      return;
    }
    const error = errorOfReply(msg);
    this.#finish(
      token,
      open,
      error ? { outcome: IpcOutcome.error, msg, error } : { outcome: IpcOutcome.ok, msg },
    );
  }

  #settle(token: string, outcome: Exclude<IpcOutcome, 'ok' | 'error'>, cause: Error): void {
    const open = this.#open.get(token);
    if (open) this.#finish(token, open, { outcome, cause });
  }

  #finish(token: string, open: Open, result: IpcResult): void {
    this.#open.delete(token);
    clearTimeout(open.timer);
    this.#metrics?.observe(open.hop, result.outcome, Number(process.hrtime.bigint() - open.started) / 1e9);
    open.resolve(result);
  }

  #failAll(outcome: Exclude<IpcOutcome, 'ok' | 'error'>, why: string): void {
    for (const token of [...this.#open.keys()]) this.#settle(token, outcome, new Error(why));
  }

  /** A publish NATS refused comes back as an asynchronous error naming the subject: that request is denied. */
  async #followErrors(): Promise<void> {
    for await (const status of this.#nc.status()) {
      if (status.type !== 'error') continue;
      const err = status.error;
      if (!(err instanceof natsErrors.PermissionViolationError) || err.operation !== 'publish') continue;
      for (const [token, open] of this.#open) {
        if (open.subject === err.subject) {
          this.#settle(token, IpcOutcome.denied, err);
          break;
        }
      }
    }
  }
}
