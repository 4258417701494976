/**
 * One NATS request/reply hop: classifies how it ended and records it in
 * kstyles_ipc_request_duration_seconds{from,to,op,outcome} (docs/architecture.md, 'Metrics').
 */
import {
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  errors as natsErrors,
  type Payload,
} from '@nats-io/nats-core';
import type { Registry } from 'prom-client';
import type { ServiceError } from '../contract/errors.ts';
import { createIpcDurationHistogram } from '../contract/metrics.ts';
import { errorOfReply } from './headers.ts';

export const IpcOutcome = {
  ok: 'ok',
  /** The callee answered with an error (NOT_FOUND, TIMEOUT, ...). */
  error: 'error',
  /** Nobody subscribes: the callee is down or restarting. */
  noResponders: 'no_responders',
  /** No answer in time: the callee died or hangs with the request, or is overloaded. */
  timeout: 'timeout',
  /** Our own NATS connection is down (e.g. NATS restarting). */
  disconnected: 'disconnected',
  /** NATS refused the publish: a permissions misconfiguration. */
  denied: 'denied',
} as const;
export type IpcOutcome = (typeof IpcOutcome)[keyof typeof IpcOutcome];

export type Hop = { from: string; to: string; op: string };

export type IpcMetrics = { observe(hop: Hop, outcome: IpcOutcome, seconds: number): void };

export function createIpcMetrics(registry: Registry): IpcMetrics {
  const histogram = createIpcDurationHistogram(registry);
  return { observe: (hop, outcome, seconds) => histogram.observe({ ...hop, outcome }, seconds) };
}

export type IpcResult =
  | { outcome: typeof IpcOutcome.ok; msg: Msg }
  | { outcome: typeof IpcOutcome.error; msg: Msg; error: ServiceError }
  | { outcome: Exclude<IpcOutcome, 'ok' | 'error'>; cause: Error };

function classify(err: unknown): Exclude<IpcOutcome, 'ok' | 'error'> {
  if (err instanceof natsErrors.TimeoutError) return IpcOutcome.timeout;
  if (err instanceof natsErrors.RequestError) {
    if (err.isNoResponders()) return IpcOutcome.noResponders;
    if (err.cause instanceof natsErrors.PermissionViolationError) return IpcOutcome.denied;
    return IpcOutcome.disconnected;
  }
  if (err instanceof natsErrors.PermissionViolationError) return IpcOutcome.denied;
  return IpcOutcome.disconnected;
}

/** Sends one request; never throws for transport failures, it classifies them. */
export async function ipcRequest(
  nc: NatsConnection,
  hop: Hop,
  metrics: IpcMetrics | undefined,
  subject: string,
  payload: Payload | undefined,
  options: { headers?: MsgHdrs; timeoutMs: number },
): Promise<IpcResult> {
  const started = process.hrtime.bigint();
  let result: IpcResult;
  try {
    const msg = await nc.request(subject, payload, {
      timeout: Math.max(1, Math.floor(options.timeoutMs)),
      ...(options.headers ? { headers: options.headers } : {}),
    });
    const error = errorOfReply(msg);
    result = error ? { outcome: IpcOutcome.error, msg, error } : { outcome: IpcOutcome.ok, msg };
  } catch (err) {
    result = { outcome: classify(err), cause: err instanceof Error ? err : new Error(String(err)) };
  }
  metrics?.observe(hop, result.outcome, Number(process.hrtime.bigint() - started) / 1e9);
  return result;
}
