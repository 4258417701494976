import { ProcessError, ProcessErrorCode } from '../services/contract/errors.ts';
import type { LoadResults, TargetResult, ThresholdOutcome } from './types.ts';
import { formatCount, formatMs, formatPercent } from './units.ts';

/** A threshold that cannot be read; the message says what is wrong and shows the grammar. */
export class ThresholdError extends ProcessError {
  override readonly name = 'ThresholdError';
  readonly code = ProcessErrorCode.THRESHOLD_INVALID;
}

const COUNT_METRICS = [
  'errors',
  'data_loss',
  'ok',
  '4xx',
  '5xx',
  'refused',
  'reset',
  'timeout',
  'sent',
] as const;
const RATIO_METRICS = ['availability', 'error_rate', 'fault_availability', 'blast_radius'] as const;
const LATENCY_METRICS = ['p50', 'p90', 'p99', 'p999', 'max', 'mean'] as const;
const TIME_METRICS = ['recovery', 'first_success'] as const;
const RATE_METRICS = ['rps'] as const;
type Metric =
  | (typeof COUNT_METRICS)[number]
  | (typeof RATIO_METRICS)[number]
  | (typeof LATENCY_METRICS)[number]
  | (typeof TIME_METRICS)[number]
  | (typeof RATE_METRICS)[number];
const ALL_METRICS: readonly Metric[] = [
  ...COUNT_METRICS,
  ...RATIO_METRICS,
  ...LATENCY_METRICS,
  ...TIME_METRICS,
  ...RATE_METRICS,
];

const OPS = ['<=', '>=', '==', '!=', '<', '>'] as const;
type Op = (typeof OPS)[number];

export type Threshold = { expression: string; scope: string; metric: Metric; op: Op; value: number };

export const THRESHOLD_GRAMMAR = `TARGET:METRIC OP VALUE, TARGET a load target name or * (every target)
  counts        errors data_loss ok 4xx 5xx refused reset timeout sent      e.g. microkernel:errors==0
  ratios        availability error_rate (whole run), fault_availability (worst fault window),
                blast_radius (worst share failed in a fault window)         e.g. '*:availability>=99.9%'
  latency       p50 p90 p99 p999 max mean (corrected), unit us|ms|s, ms if none  e.g. monolith:p99<50ms
  time          recovery (p99 back within 2x after faults), first_success   e.g. microkernel:recovery<=5s
  rate          rps (successful responses per second)
  operators     < <= > >= == !=`;

const LATENCY_UNITS: Record<string, number> = { us: 0.001, µs: 0.001, ms: 1, s: 1000, '': 1 };

/** Parses `monolith:p99<50ms`, `*:availability>=99.9%`, `unikernel:data_loss==0`. Values are kept in ms / ratios / counts. */
export function parseThreshold(text: string): Threshold {
  const fail = (why: string): never => {
    throw new ThresholdError(`--threshold '${text}': ${why}\n${THRESHOLD_GRAMMAR}`);
  };
  const match =
    /^\s*([^:\s]+)\s*:\s*([a-z0-9_]+)\s*(<=|>=|==|!=|<|>|=)\s*([0-9]*\.?[0-9]+)\s*(%|us|µs|ms|s)?\s*$/.exec(
      text,
    );
  if (!match) {
    const metricOnly = /^\s*([^:\s]+)\s*:\s*([a-z0-9_]+)/.exec(text);
    if (!text.includes(':')) fail("it must start with a target name or '*' and a colon");
    if (metricOnly && !ALL_METRICS.includes(metricOnly[2] as Metric))
      fail(`unknown metric '${metricOnly[2]}'`);
    fail('expected TARGET:METRIC OP VALUE with one of the operators < <= > >= == !=');
  }
  const [, scope, metricText, opText, numberText, unit = ''] = match!;
  if (opText === '=') fail("use '==' for equality");
  const metric = metricText as Metric;
  if (!ALL_METRICS.includes(metric)) fail(`unknown metric '${metricText}'`);
  let value = Number(numberText);
  if (
    (COUNT_METRICS as readonly string[]).includes(metric) ||
    (RATE_METRICS as readonly string[]).includes(metric)
  ) {
    if (unit) fail(`${metric} is a plain number; drop the unit '${unit}'`);
  } else if ((RATIO_METRICS as readonly string[]).includes(metric)) {
    if (unit === '%') value = Number((value / 100).toPrecision(12));
    else if (unit) fail(`${metric} is a ratio: write it as a percentage (99.9%) or a fraction (0.999)`);
    else if (value > 1) fail(`${metric} is a ratio: write ${numberText}% or ${value / 100}`);
  } else {
    if (unit === '%') fail(`${metric} is a time: use us, ms or s`);
    value *= LATENCY_UNITS[unit]!;
  }
  return { expression: text.trim(), scope: scope!, metric, op: opText as Op, value };
}

function compare(actual: number, op: Op, expected: number): boolean {
  switch (op) {
    case '<':
      return actual < expected;
    case '<=':
      return actual <= expected;
    case '>':
      return actual > expected;
    case '>=':
      return actual >= expected;
    case '==':
      return actual === expected;
    case '!=':
      return actual !== expected;
  }
}

/** The measured value of a metric (ms for times, ratio for ratios) and how to print it. */
function measure(
  results: LoadResults,
  target: TargetResult,
  metric: Metric,
): { value: number; text: string } {
  const resilience = results.faults.flatMap((f) => f.resilience).filter((r) => r.target === target.name);
  switch (metric) {
    case 'errors': {
      const errors = target.completed - target.outcomes.ok;
      return { value: errors, text: formatCount(errors) };
    }
    case 'sent':
      return { value: target.sent, text: formatCount(target.sent) };
    case 'availability':
      return { value: target.availability, text: formatPercent(target.availability, 3) };
    case 'error_rate':
      return { value: 1 - target.availability, text: formatPercent(1 - target.availability, 3) };
    case 'fault_availability': {
      const worst = Math.min(1, ...resilience.map((r) => r.availability));
      return { value: worst, text: formatPercent(worst, 3) };
    }
    case 'blast_radius': {
      const worst = Math.max(0, ...resilience.map((r) => r.blastRadius));
      return { value: worst, text: formatPercent(worst, 3) };
    }
    case 'p50':
    case 'p90':
    case 'p99':
    case 'p999':
    case 'max':
    case 'mean':
      return { value: target.latency[metric] / 1000, text: formatMs(target.latency[metric] / 1000) };
    case 'recovery': {
      const times = resilience.map((r) => r.p99RecoveryMs);
      const worst = times.includes(null) ? Number.POSITIVE_INFINITY : Math.max(0, ...(times as number[]));
      return { value: worst, text: Number.isFinite(worst) ? formatMs(worst) : 'never recovered' };
    }
    case 'first_success': {
      const times = resilience.filter((r) => r.failed > 0).map((r) => r.firstSuccessAfterFailureMs);
      const worst = times.includes(null) ? Number.POSITIVE_INFINITY : Math.max(0, ...(times as number[]));
      return {
        value: worst,
        text: Number.isFinite(worst) ? formatMs(worst) : 'no success after the failure',
      };
    }
    case 'rps':
      return { value: target.throughput, text: `${target.throughput.toFixed(1)}/s` };
    default:
      return { value: target.outcomes[metric], text: formatCount(target.outcomes[metric]) };
  }
}

/** Checks that each threshold names a load target or '*'. */
export function checkThresholdTargets(thresholds: Threshold[], targetNames: string[]): void {
  for (const t of thresholds) {
    if (t.scope !== '*' && !targetNames.includes(t.scope)) {
      throw new ThresholdError(
        `--threshold '${t.expression}': '${t.scope}' is not a load target (targets: ${targetNames.join(', ')}, or *)`,
      );
    }
  }
}

/** One checklist line per threshold and target ('*' expands to every target). */
export function evaluateThresholds(results: LoadResults, thresholds: Threshold[]): ThresholdOutcome[] {
  const out: ThresholdOutcome[] = [];
  for (const t of thresholds) {
    const targets = t.scope === '*' ? results.targets : results.targets.filter((r) => r.name === t.scope);
    if (targets.length === 0)
      out.push({ expression: t.expression, actual: `no target named '${t.scope}'`, pass: false });
    for (const target of targets) {
      const { value, text } = measure(results, target, t.metric);
      const expression = t.scope === '*' ? `${t.expression} [${target.name}]` : t.expression;
      out.push({ expression, actual: text, pass: compare(value, t.op, t.value) });
    }
  }
  return out;
}

/** Exit code of a run: 0 when every threshold holds, 1 otherwise. */
export function thresholdExitCode(outcomes: ThresholdOutcome[]): 0 | 1 {
  return outcomes.every((o) => o.pass) ? 0 : 1;
}
