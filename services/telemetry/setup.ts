/**
 * Tracing for a process entry (monolith, the microkernel's servers, the unikernel and its pool workers):
 * reads the environment, and only when it names an exporter loads the OpenTelemetry SDK (sdk.ts, by a
 * dynamic import) and registers it. With no exporter configured nothing of the SDK is loaded and the
 * spans of spans.ts cost one boolean test each (services/telemetry/README.md).
 */
import path from 'node:path';
import { makeDirectory } from '../../cli/kit/make-directory.ts';
import { ProcessError, ProcessErrorCode } from '../contract/errors.ts';

/** The environment variables tracing reads: OpenTelemetry's standard ones, and the project's file exporter. */
export const TRACING_ENV = {
  /** Append finished spans to this file as OTLP/JSON lines (one ExportTraceServiceRequest per line). */
  file: 'KSTYLES_TRACES_FILE',
  /** Past this size the file is moved to `<file>.1` (replacing it) and a new one begun. */
  fileMaxBytes: 'KSTYLES_TRACES_FILE_MAX_BYTES',
  endpoint: 'OTEL_EXPORTER_OTLP_ENDPOINT',
  tracesEndpoint: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
  protocol: 'OTEL_EXPORTER_OTLP_PROTOCOL',
  tracesProtocol: 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL',
  sampler: 'OTEL_TRACES_SAMPLER',
  samplerArg: 'OTEL_TRACES_SAMPLER_ARG',
  disabled: 'OTEL_SDK_DISABLED',
} as const;

export const DEFAULT_TRACES_FILE_MAX_BYTES = 64 * 1024 * 1024;

/** The samplers of the OpenTelemetry specification's OTEL_TRACES_SAMPLER. */
export const SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;
export type SamplerName = (typeof SAMPLERS)[number];
const DEFAULT_SAMPLER: SamplerName = 'parentbased_always_on';

/** A tracing variable that cannot be used: names it, its value and what would do. */
export class TracingConfigError extends ProcessError {
  override readonly name = 'TracingConfigError';
  readonly code = ProcessErrorCode.TRACING_CONFIG_INVALID;
}

/** Which component records: `service.name` is `<style>` or `<style>-<component>` (microkernel-fs). */
export type TracedComponent = { style: string; component?: string };

export function serviceNameOf({ style, component }: TracedComponent): string {
  return component ? `${style}-${component}` : style;
}

export type TracingPlan = {
  serviceName: string;
  style: string;
  file?: { path: string; maxBytes: number };
  /** The OTLP/HTTP traces URL (…/v1/traces). */
  otlp?: { url: string };
  sampler: { name: SamplerName; ratio: number };
};

/** An OpenTelemetry variable counts as unset when empty (the specification's rule). */
function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

function otlpTracesUrl(env: NodeJS.ProcessEnv): string | undefined {
  const traces = envValue(env, TRACING_ENV.tracesEndpoint);
  const base = envValue(env, TRACING_ENV.endpoint);
  if (!traces && !base) return undefined;
  const name = traces ? TRACING_ENV.tracesEndpoint : TRACING_ENV.endpoint;
  const raw = (traces ?? base) as string;
  // The specification's rule: the general endpoint gets the signal's path, the traces one is used as is.
  const url = traces ?? `${raw.replace(/\/+$/, '')}/v1/traces`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TracingConfigError(`${name}=${raw} is not a URL: use e.g. http://127.0.0.1:4318`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new TracingConfigError(
      `${name}=${raw}: OTLP over HTTP needs an http:// or https:// URL (e.g. http://jaeger:4318)`,
    );
  }
  for (const variable of [TRACING_ENV.tracesProtocol, TRACING_ENV.protocol]) {
    const protocol = envValue(env, variable);
    if (protocol && protocol !== 'http/json') {
      throw new TracingConfigError(
        `${variable}=${protocol}: this project exports OTLP as http/json only; unset it or set http/json (the collector's port 4318)`,
      );
    }
  }
  return url;
}

function samplerOf(env: NodeJS.ProcessEnv): TracingPlan['sampler'] {
  const raw = envValue(env, TRACING_ENV.sampler) ?? DEFAULT_SAMPLER;
  if (!(SAMPLERS as readonly string[]).includes(raw)) {
    throw new TracingConfigError(
      `${TRACING_ENV.sampler}=${raw} is not a sampler: use one of ${SAMPLERS.join(', ')}`,
    );
  }
  const arg = envValue(env, TRACING_ENV.samplerArg);
  const ratio = arg === undefined ? 1 : Number(arg);
  if (!(Number.isFinite(ratio) && ratio >= 0 && ratio <= 1)) {
    throw new TracingConfigError(
      `${TRACING_ENV.samplerArg}=${arg} is not a ratio: give a number from 0 to 1 (0.1 records one trace in ten)`,
    );
  }
  return { name: raw as SamplerName, ratio };
}

/**
 * What the environment asks for, or null when tracing is off: no exporter named, or OTEL_SDK_DISABLED.
 * Throws TracingConfigError for a value that cannot be used, whether or not an exporter is named.
 */
export function tracingPlan(
  who: TracedComponent,
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): TracingPlan | null {
  const sampler = samplerOf(env);
  const otlp = otlpTracesUrl(env);
  const file = envValue(env, TRACING_ENV.file);
  const maxRaw = envValue(env, TRACING_ENV.fileMaxBytes);
  const maxBytes = maxRaw === undefined ? DEFAULT_TRACES_FILE_MAX_BYTES : Number(maxRaw);
  if (!(Number.isSafeInteger(maxBytes) && maxBytes >= 4096)) {
    throw new TracingConfigError(
      `${TRACING_ENV.fileMaxBytes}=${maxRaw} is not a size in bytes of at least 4096 (default ${DEFAULT_TRACES_FILE_MAX_BYTES})`,
    );
  }
  if (envValue(env, TRACING_ENV.disabled)?.toLowerCase() === 'true') return null;
  if (!otlp && !file) return null;
  return {
    serviceName: serviceNameOf(who),
    style: who.style,
    ...(file ? { file: { path: path.resolve(cwd, file), maxBytes } } : {}),
    ...(otlp ? { otlp: { url: otlp } } : {}),
    sampler,
  };
}

/** A process's tracing: what it exports where, and how to flush and stop it. */
export type Tracing = {
  /** null when tracing is off; else the exporters and sampler, for the process's start log line. */
  summary: { serviceName: string; exporters: string[]; sampler: string } | null;
  /** Exports the spans finished so far. */
  flush(): Promise<void>;
  /** Flushes, then unregisters the SDK. */
  shutdown(): Promise<void>;
};

export const TRACING_OFF: Tracing = {
  summary: null,
  flush: async () => {},
  shutdown: async () => {},
};

/**
 * Registers tracing for this thread as the environment asks, or does nothing (TRACING_OFF). Call it once,
 * before the first request; `resource` adds attributes to the service's resource (e.g. a worker thread's).
 */
export async function startTracing(
  who: TracedComponent,
  options: { env?: NodeJS.ProcessEnv; resource?: Record<string, string | number> } = {},
): Promise<Tracing> {
  const plan = tracingPlan(who, options.env ?? process.env);
  if (!plan) return TRACING_OFF;
  if (plan.file) {
    const dir = path.dirname(plan.file.path);
    try {
      makeDirectory(dir);
    } catch (err) {
      throw new TracingConfigError(
        `${TRACING_ENV.file}=${plan.file.path}: cannot create ${dir} (${(err as NodeJS.ErrnoException).code ?? err}); choose a writable place`,
      );
    }
  }
  const { registerTracing } = await import('./sdk.ts');
  return registerTracing(plan, options.resource ?? {});
}

/**
 * KSTYLES_TRACES_FILE made absolute against this process's working directory, for processes that start
 * others elsewhere (the microkernel's supervisor runs its servers from the repository root).
 */
export function absoluteTracesFileEnv(
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): Record<string, string> {
  const file = envValue(env, TRACING_ENV.file);
  return file ? { [TRACING_ENV.file]: path.resolve(cwd, file) } : {};
}
