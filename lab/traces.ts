/**
 * The lab's traces (services/telemetry): where each style writes them and how much it samples. Apart
 * from lab.ts so the console (which also runs beside a deployment, `kstyles console`) reads the files
 * without loading the lab and every style's launcher.
 */
import path from 'node:path';
import type { Style } from '../cli/kit/defaults.ts';
import { REPO_ROOT } from '../cli/kit/repo.ts';

/**
 * Where and how much the lab's styles trace (services/telemetry): each style appends its spans to
 * `<dir>/<style>.jsonl`, sampling `ratio` of the requests that carry no trace context (parent-based:
 * a request with a sampled `traceparent` is always traced); the console draws the newest from there.
 */
export type LabTraces = { dir: string; ratio: number };

/** `kstyles up`'s traces: beside the default corpus, in the lab's own state folder. */
export const DEFAULT_TRACES_DIR = path.join(REPO_ROOT, '.kstyles', 'traces');
/** One request in a hundred, per style: a trace a second at the console's default 100 req/s. */
export const DEFAULT_TRACES_RATIO = 0.01;

/** The traces file of one style in the lab's traces directory. */
export function labTracesFile(dir: string, style: Style): string {
  return path.join(dir, `${style}.jsonl`);
}

/** The environment that makes one style of the lab trace (nothing without LabTraces). */
export function tracesEnv(traces: LabTraces | undefined, style: Style): Record<string, string> {
  if (!traces) return {};
  return {
    KSTYLES_TRACES_FILE: labTracesFile(traces.dir, style),
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: String(traces.ratio),
  };
}
