import { STYLES, type Style } from '../cli/kit/defaults.ts';
import { securityCell } from './security-report.ts';
import type { LoadResults, TargetFacts, TargetResult } from './types.ts';
import { formatCount, formatMicros, formatMs, formatPercent } from './units.ts';

/** Columns of the seed's comparison table (seed/kernel-architectures.md): the styles measured here. */
export { STYLES, type Style };

export const STYLE_HEADINGS: Record<Style, string> = {
  monolith: 'Monolithic kernel (e.g., Linux) → monolith',
  microkernel: 'Microkernel (e.g., QNX) → microkernel',
  unikernel: 'Unikernel (e.g., MirageOS) → unikernel',
};

/** The rows of the seed's table this project can measure, with the seed's words for each style. */
export const SEED_CLAIMS = {
  performance: {
    monolith: 'Very High (direct function calls)',
    microkernel: 'Lower (message passing overhead)',
    unikernel: 'Very High (no context switching)',
  },
  stability: {
    monolith: 'Lower (a driver crash can crash the OS)',
    microkernel: 'Higher (servers are isolated)',
    unikernel: 'N/A (single process)',
  },
  security: {
    monolith: 'Lower (large attack surface)',
    microkernel: 'Higher (isolated services)',
    unikernel: 'Extremely High (minimal surface)',
  },
  useCase: {
    monolith: 'General Purpose (Desktops, Servers)',
    microkernel: 'High-Reliability (Cars, Medical)',
    unikernel: 'Specialized Cloud/Edge (IoT, Serverless)',
  },
} as const satisfies Record<string, Record<Style, string>>;

export const ROW_HEADINGS: Record<keyof typeof SEED_CLAIMS, string> = {
  performance: 'Performance',
  stability: 'Stability',
  security: 'Security',
  useCase: 'Use case',
};

export type ComparisonCell = { claim: string; measured: string[] };
export type ComparisonRow = {
  key: keyof typeof SEED_CLAIMS;
  heading: string;
  cells: Record<Style, ComparisonCell>;
};

/** The load target that stands for a style: its exact name, else the first name containing it. */
export function targetForStyle(results: LoadResults, style: Style): TargetResult | undefined {
  return (
    results.targets.find((t) => t.name === style) ??
    results.targets.find((t) => t.name.toLowerCase().includes(style.slice(0, 4)))
  );
}

function factsFor(
  results: LoadResults,
  style: Style,
  target: TargetResult | undefined,
): TargetFacts | undefined {
  return results.facts?.[style] ?? (target ? results.facts?.[target.name] : undefined);
}

function stabilityLines(results: LoadResults, target: TargetResult): string[] {
  const resilience = results.faults
    .flatMap((f) => f.resilience.map((r) => ({ fault: f, r })))
    .filter((x) => x.r.target === target.name);
  if (resilience.length === 0)
    return [`no fault injected; availability ${formatPercent(target.availability, 3)}`];
  const requests = resilience.reduce((sum, x) => sum + x.r.requests, 0);
  const failed = resilience.reduce((sum, x) => sum + x.r.failed, 0);
  const blast = Math.max(...resilience.map((x) => x.r.blastRadius));
  const firstSuccess = resilience.filter((x) => x.r.failed > 0).map((x) => x.r.firstSuccessAfterFailureMs);
  const p99 = resilience.map((x) => x.r.p99RecoveryMs);
  const worst = (values: (number | null)[]) =>
    values.length === 0
      ? 'no failure'
      : values.includes(null)
        ? 'never'
        : formatMs(Math.max(...(values as number[])));
  return [
    `${resilience.length} fault${resilience.length > 1 ? 's' : ''}: availability under faults ${formatPercent(requests ? (requests - failed) / requests : 1, 2)}`,
    `${formatCount(failed)} failed request${failed === 1 ? '' : 's'} of ${formatCount(requests)} in fault windows`,
    `blast radius ${formatPercent(blast, 1)} (worst fault window)`,
    firstSuccess.length === 0
      ? `no request failed; p99 back within 2× after ${worst(p99)}`
      : `recovery: first success after failure ${worst(firstSuccess)}, p99 back within 2× after ${worst(p99)}`,
  ];
}

/** The seed's table with each claim next to what this run measured. */
export function seedComparison(results: LoadResults): ComparisonRow[] {
  const fastestP50 = Math.min(
    ...results.targets.filter((t) => t.latency.count > 0).map((t) => t.latency.p50),
  );
  return (Object.keys(SEED_CLAIMS) as (keyof typeof SEED_CLAIMS)[]).map((key) => {
    const cells = {} as Record<Style, ComparisonCell>;
    for (const style of STYLES) {
      const target = targetForStyle(results, style);
      const facts = factsFor(results, style, target);
      const measured: string[] = [];
      if (key === 'performance') {
        if (target) {
          measured.push(`p50 ${formatMicros(target.latency.p50)}, p99 ${formatMicros(target.latency.p99)}`);
          measured.push(`${target.throughput.toFixed(0)} ok/s at ${results.rate} req/s offered`);
          if (Number.isFinite(fastestP50) && fastestP50 > 0 && target.latency.p50 > fastestP50 * 1.05) {
            measured.push(`p50 ${(target.latency.p50 / fastestP50).toFixed(1)}× the fastest style`);
          }
        }
      } else if (key === 'stability') {
        if (target) measured.push(...stabilityLines(results, target));
      } else if (key === 'security') {
        measured.push(...securityCell(facts, style));
      } else {
        if (facts?.bootMs !== undefined) measured.push(`boot to first 200 in ${formatMs(facts.bootMs)}`);
        if (target) measured.push(`served ${formatCount(target.outcomes.ok)} verified files`);
      }
      if (!target && key !== 'security' && measured.length === 0) measured.push('not in this run');
      cells[style] = { claim: SEED_CLAIMS[key][style], measured };
    }
    return { key, heading: ROW_HEADINGS[key], cells };
  });
}
