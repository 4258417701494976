/**
 * The OpenTelemetry SDK, registered for one thread: loaded only by setup.ts's dynamic import, when the
 * environment names an exporter. A tracer provider with the plan's sampler and one batch processor per
 * exporter, the W3C trace-context propagator, and AsyncLocalStorage as the context manager (a request's
 * spans nest across its awaits).
 */
import { context, DiagLogLevel, diag, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  type BufferConfig,
  ParentBasedSampler,
  type Sampler,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import { OtlpJsonLinesFileExporter } from './file-exporter.ts';
import type { Tracing, TracingPlan } from './setup.ts';
import { markTracingRegistered } from './spans.ts';

/**
 * How often the file exporter writes unless OTEL_BSP_SCHEDULE_DELAY says otherwise: the SDK's 5 s would
 * keep the lab console and the tests waiting; a file takes frequent small appends well.
 */
const FILE_EXPORT_DELAY_MS = 250;

function samplerOf({ name, ratio }: TracingPlan['sampler']): Sampler {
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
  }
}

/** The SDK's own complaints (a failed export, a full queue) as JSON log lines on stderr. */
function logDiagnostics(serviceName: string): void {
  const write =
    (level: string) =>
    (message: string, ...args: unknown[]) =>
      process.stderr.write(
        `${JSON.stringify({ time: new Date().toISOString(), level, service: serviceName, msg: `tracing: ${message}`, ...(args.length ? { detail: args.map(String).join(' ') } : {}) })}\n`,
      );
  diag.setLogger(
    {
      error: write('error'),
      warn: write('warn'),
      info: () => {},
      debug: () => {},
      verbose: () => {},
    },
    { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
  );
}

export function registerTracing(plan: TracingPlan, resource: Record<string, string | number>): Tracing {
  logDiagnostics(plan.serviceName);
  const processors: SpanProcessor[] = [];
  const exporters: string[] = [];
  if (plan.file) {
    const batch: BufferConfig = process.env.OTEL_BSP_SCHEDULE_DELAY
      ? {}
      : { scheduledDelayMillis: FILE_EXPORT_DELAY_MS };
    processors.push(
      new BatchSpanProcessor(new OtlpJsonLinesFileExporter(plan.file.path, plan.file.maxBytes), batch),
    );
    exporters.push(`file ${plan.file.path}`);
  }
  if (plan.otlp) {
    processors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url: plan.otlp.url })));
    exporters.push(`otlp ${plan.otlp.url}`);
  }
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': plan.serviceName,
      'service.namespace': 'kernel-styles',
      'kstyles.style': plan.style,
      'process.pid': process.pid,
      ...resource,
    }),
    sampler: samplerOf(plan.sampler),
    spanProcessors: processors,
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  markTracingRegistered(true);
  const sampler = plan.sampler.name.includes('ratio')
    ? `${plan.sampler.name} ${plan.sampler.ratio}`
    : plan.sampler.name;
  let stopped: Promise<void> | undefined;
  return {
    summary: { serviceName: plan.serviceName, exporters, sampler },
    flush: () => provider.forceFlush(),
    shutdown: () => {
      stopped ??= provider.shutdown().finally(() => {
        markTracingRegistered(false);
        trace.disable();
        propagation.disable();
        context.disable();
      });
      return stopped;
    },
  };
}
