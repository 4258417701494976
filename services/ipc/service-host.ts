/**
 * Serves endpoints through the NATS service API, so `nats micro ls|info|stats` see them. The service
 * API calls handlers synchronously and never awaits them: this module awaits each async handler, times
 * it, and turns every rejection into an error reply (service-API error headers + Kstyles-Error-Code).
 */
import {
  headers as createHeaders,
  type MsgHdrs,
  type NatsConnection,
  type Payload,
} from '@nats-io/nats-core';
import { type Service, type ServiceMsg, Svcm } from '@nats-io/services';
import type { Registry } from 'prom-client';
import { toServiceError } from '../contract/errors.ts';
import { createLatencyHistogram, keyedObserver } from '../contract/metrics.ts';
import { supervisedServiceMetadata } from '../supervisor/child-identity.ts';
import { endSpan, failSpan, inSpanContext, startMessagingServerSpan } from '../telemetry/spans.ts';
import { HEADERS, respondWithError } from './headers.ts';
import type { ServiceName } from './subjects.ts';

/** `answered`: the caller got its reply from elsewhere (a grant transfer), so none is sent here. */
export type Reply = { data?: Payload; headers?: MsgHdrs; answered?: boolean };

export type EndpointSpec = {
  /** Endpoint name in `nats micro info` (a subject token). */
  name: string;
  subject: string;
  /** `instance`: this server's instance id (what its replies name in Kstyles-Instance). */
  handle(msg: ServiceMsg, instance: string): Promise<Reply>;
};

export type HostedService = {
  service: Service;
  /** The service instance id (`nats micro info`, `$SRV.PING.<name>.<id>`). */
  id: string;
  /** Stops taking requests, then waits (up to timeoutMs) for the ones in progress to be answered. */
  stop(timeoutMs?: number): Promise<void>;
};

export type HandlerMetrics = { observe(op: string, outcome: string, seconds: number): void };

export function createHandlerMetrics(registry: Registry, service: string): HandlerMetrics {
  const histogram = createLatencyHistogram(
    registry,
    'kstyles_ipc_handler_duration_seconds',
    'Time a server spent answering one NATS request, by service, endpoint and outcome (ok or error code)',
    ['service', 'op', 'outcome'],
  );
  const observe = keyedObserver(histogram);
  return {
    observe: (op, outcome, seconds) => observe(`${op} ${outcome}`, () => ({ service, op, outcome }), seconds),
  };
}

async function serve(
  endpoint: EndpointSpec,
  msg: ServiceMsg,
  instanceId: string,
  metrics?: HandlerMetrics,
): Promise<void> {
  const started = process.hrtime.bigint();
  let outcome = 'ok';
  // The handler's SERVER span, continuing the caller's trace (its traceparent header); undefined while
  // tracing is off, when the handler runs as it is, without even a closure around it.
  const span = startMessagingServerSpan('nats', endpoint.subject, msg.headers);
  try {
    const reply = await (span
      ? inSpanContext(span, () => endpoint.handle(msg, instanceId))
      : endpoint.handle(msg, instanceId));
    if (reply.answered) return;
    const headers = reply.headers ?? createHeaders();
    headers.set(HEADERS.instance, instanceId);
    msg.respond(reply.data, { headers });
  } catch (err) {
    if (span) failSpan(span, err);
    const error = toServiceError(err);
    outcome = error.code;
    try {
      respondWithError(msg, error);
    } catch {
      // Our connection is gone (closing, or NATS away): the caller's timeout and retry take over.
    }
  } finally {
    endSpan(span);
    metrics?.observe(endpoint.name, outcome, Number(process.hrtime.bigint() - started) / 1e9);
  }
}

/** Adds a service whose endpoints all run in the queue group named after it. */
export async function hostService(
  nc: NatsConnection,
  config: {
    name: ServiceName;
    description: string;
    endpoints: EndpointSpec[];
    metrics?: HandlerMetrics;
    metadata?: Record<string, string>;
  },
): Promise<HostedService> {
  const service = await new Svcm(nc).add({
    name: config.name,
    version: '1.0.0',
    description: config.description,
    queue: config.name,
    metadata: { ...config.metadata, ...supervisedServiceMetadata() },
  });
  const id = service.info().id;
  const inFlight = new Set<Promise<void>>();
  for (const endpoint of config.endpoints) {
    service.addEndpoint(endpoint.name, {
      subject: endpoint.subject,
      handler: (err, msg) => {
        if (err) return;
        const answering = serve(endpoint, msg, id, config.metrics);
        inFlight.add(answering);
        void answering.finally(() => inFlight.delete(answering));
      },
    });
  }
  return {
    service,
    id,
    stop: async (timeoutMs = 5000) => {
      await service.stop();
      const timer = new Promise((resolve) => setTimeout(resolve, timeoutMs).unref());
      await Promise.race([Promise.allSettled([...inFlight]), timer]);
    },
  };
}
