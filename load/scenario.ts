import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { isMap, isSeq, LineCounter, type Node, parseDocument, type YAMLMap } from 'yaml';
import { ProcessError, ProcessErrorCode } from '../services/contract/errors.ts';
import { FAULT_KINDS, type FaultKind, type FaultSpec } from './types.ts';
import { parseDurationMs } from './units.ts';

/** A scenario file that cannot be used; the message names the file, line and field. */
export class ScenarioError extends ProcessError {
  override readonly name = 'ScenarioError';
  readonly code = ProcessErrorCode.SCENARIO_INVALID;
}

export type Scenario = {
  faults: FaultSpec[];
  /** How long after a fault its requests count for resilience. */
  windowMs?: number;
};

const FAULT_FIELDS = ['at', 'target', 'fault', 'for', 'latency', 'times', 'affects'] as const;
const TOP_FIELDS = ['faults', 'window', 'description'] as const;

export const SCENARIO_EXAMPLE = `faults:
  - { at: 10s, target: microkernel:driver, fault: kill }
  - { at: 20s, target: monolith, fault: poison }
  - { at: 30s, target: pid:4242, fault: hang, for: 2s, affects: unikernel }`;

/**
 * Parses a chaos schedule (YAML, or JSON, which is YAML too):
 * `faults: [{ at: 10s, target: microkernel:driver, fault: kill }, …]`, optional `window: 10s`.
 */
export function parseScenario(text: string, source = 'scenario'): Scenario {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const where = (node: Node | null | undefined): string => {
    const offset = node?.range?.[0];
    return offset === undefined ? source : `${source}:${lines.linePos(offset).line}`;
  };
  if (doc.errors.length > 0) {
    const err = doc.errors[0]!;
    throw new ScenarioError(
      `${source}:${lines.linePos(err.pos[0]).line}: not valid YAML/JSON: ${err.message.split('\n')[0]}`,
    );
  }
  const root = doc.contents;
  if (!isMap(root)) {
    throw new ScenarioError(
      `${where(root)}: a scenario is a mapping with a 'faults' list, e.g.\n${SCENARIO_EXAMPLE}`,
    );
  }
  checkKeys(root, TOP_FIELDS, '', where);
  const scenario: Scenario = { faults: [] };
  const windowNode = root.get('window', true) as Node | undefined;
  if (windowNode !== undefined) {
    const ms = parseDurationMs((windowNode as { value?: unknown }).value as string);
    if (ms === null || ms <= 0)
      throw new ScenarioError(`${where(windowNode)}: window: use a duration such as 10s`);
    scenario.windowMs = ms;
  }
  const faults = root.get('faults', true) as Node | undefined;
  if (faults === undefined)
    throw new ScenarioError(`${where(root)}: 'faults' is missing, e.g.\n${SCENARIO_EXAMPLE}`);
  if (!isSeq(faults)) throw new ScenarioError(`${where(faults)}: 'faults' must be a list`);
  faults.items.forEach((item, i) => {
    const field = `faults[${i}]`;
    if (!isMap(item))
      throw new ScenarioError(
        `${where(item as Node)}: ${field} must be a mapping like { at: 10s, target: monolith, fault: kill }`,
      );
    checkKeys(item, FAULT_FIELDS, `${field}.`, where);
    const value = (key: string) => (item.get(key, true) as { value?: unknown } | undefined)?.value;
    const at = item.get('at', true) as Node | undefined;
    if (at === undefined) throw new ScenarioError(`${where(item)}: ${field}.at is missing (when, e.g. 10s)`);
    const atMs = parseDurationMs(value('at') as string);
    if (atMs === null)
      throw new ScenarioError(
        `${where(at)}: ${field}.at: '${String(value('at'))}' is not a duration (use 10s, 500ms, 1m)`,
      );
    const target = value('target');
    if (typeof target !== 'string' || target.trim() === '') {
      throw new ScenarioError(
        `${where((item.get('target', true) as Node | undefined) ?? item)}: ${field}.target must be a string such as microkernel:driver, monolith, pid:1234 or docker:NAME`,
      );
    }
    const kind = value('fault');
    if (typeof kind !== 'string' || !(FAULT_KINDS as readonly string[]).includes(kind)) {
      throw new ScenarioError(
        `${where((item.get('fault', true) as Node | undefined) ?? item)}: ${field}.fault: ${kind === undefined ? 'missing' : `'${String(kind)}' is not a fault kind`}; use one of ${FAULT_KINDS.join(', ')}`,
      );
    }
    const spec: FaultSpec = { atMs, target: target.trim(), kind: kind as FaultKind, source: where(item) };
    const forNode = item.get('for', true) as Node | undefined;
    if (forNode !== undefined) {
      const ms = parseDurationMs(value('for') as string);
      if (ms === null || ms <= 0)
        throw new ScenarioError(`${where(forNode)}: ${field}.for: use a duration such as 2s`);
      spec.forMs = ms;
    } else if (kind === 'hang') {
      throw new ScenarioError(
        `${where(item)}: ${field}: a hang needs 'for' (how long the process stays stopped, e.g. for: 2s)`,
      );
    }
    const latencyNode = item.get('latency', true) as Node | undefined;
    if (latencyNode !== undefined) {
      const ms = parseDurationMs(value('latency') as string);
      if (ms === null)
        throw new ScenarioError(`${where(latencyNode)}: ${field}.latency: use a duration such as 200ms`);
      spec.latencyMs = ms;
    }
    const timesNode = item.get('times', true) as Node | undefined;
    if (timesNode !== undefined) {
      const times = value('times');
      if (typeof times !== 'number' || !Number.isInteger(times) || times < 1) {
        throw new ScenarioError(`${where(timesNode)}: ${field}.times must be a whole number ≥ 1`);
      }
      spec.times = times;
    }
    const affectsNode = item.get('affects', true) as Node | undefined;
    if (affectsNode !== undefined) {
      const raw = isSeq(affectsNode)
        ? affectsNode.items.map((n) => (n as { value?: unknown }).value)
        : [value('affects')];
      if (raw.some((v) => typeof v !== 'string' || v === '')) {
        throw new ScenarioError(
          `${where(affectsNode)}: ${field}.affects must be a load target name or a list of them`,
        );
      }
      spec.affects = raw as string[];
    }
    scenario.faults.push(spec);
  });
  return scenario;
}

function checkKeys(
  map: YAMLMap,
  allowed: readonly string[],
  prefix: string,
  where: (n: Node) => string,
): void {
  for (const pair of map.items) {
    const key = (pair.key as { value?: unknown }).value;
    if (typeof key !== 'string' || !allowed.includes(key)) {
      throw new ScenarioError(
        `${where(pair.key as Node)}: unknown field '${prefix}${String(key)}'; allowed: ${allowed.map((k) => prefix + k).join(', ')}`,
      );
    }
  }
}

/** Reads and parses a scenario file; errors name the file and line. */
export async function loadScenario(file: string): Promise<Scenario> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ScenarioError(
      `cannot read scenario ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
  return parseScenario(text, path.basename(file));
}

/** Checks that every fault's `affects` names a load target, so typos surface before the run. */
export function checkScenarioTargets(scenario: Scenario, targetNames: string[]): void {
  for (const fault of scenario.faults) {
    for (const name of fault.affects ?? []) {
      if (!targetNames.includes(name)) {
        throw new ScenarioError(
          `${fault.source ?? 'scenario'}: affects: '${name}' is not a load target (targets: ${targetNames.join(', ')})`,
        );
      }
    }
  }
}

/** Checks that every fault fires inside the run: one scheduled at or after its end would never fire. */
export function checkScenarioFitsRun(scenario: Scenario, durationMs: number): void {
  for (const fault of scenario.faults) {
    if (fault.atMs >= durationMs) {
      throw new ScenarioError(
        `${fault.source ?? 'scenario'}: ${fault.kind} of ${fault.target} at ${formatSeconds(fault.atMs)} would never fire: the run ends at ${formatSeconds(durationMs)} (--duration); lengthen the run or move the fault`,
      );
    }
  }
}

const formatSeconds = (ms: number) => `${Number((ms / 1000).toFixed(3))}s`;
