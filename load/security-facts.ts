/**
 * The Security row's measurements of each target, taken as a client while the report is made (before
 * any fault): the hostile battery (hostile-battery.ts), the request parser's own `kstyles_security_*`
 * gauges from its /metrics (wherever it runs: a local process, a container, another machine), the
 * process itself from /proc when it listens here (process-facts.ts; an observer's view wins over the
 * process's word for what both can see), and, for a target that has a supervisor of the same name (the
 * microkernel), its NATS isolation probe through the control API. Nothing here imports a style's code.
 */
import { realpathSync } from 'node:fs';
import { request } from 'undici';
import type { CodeInventory } from '../services/contract/code-inventory.ts';
import { NATS_ISOLATION_PROBE, type NatsIsolation } from '../services/contract/isolation.ts';
import type { ProcessInspection } from '../services/contract/process-inspection.ts';
import { type SecurityFacts, securityFactsOf } from '../services/contract/security-metrics.ts';
import { controlClientOptionsFor, SupervisorControlClient } from '../services/supervisor/control-client.ts';
import { type HostileOutcome, type RangeFile, runHostileBattery } from './hostile-battery.ts';
import { listenerFacts } from './process-facts.ts';
import type { TargetFacts } from './types.ts';

/** What the report knows about a target's request parser and, for the microkernel, its bus. */
export type MeasuredSecurity = Partial<Omit<SecurityFacts, keyof ProcessInspection>> &
  Partial<Omit<ProcessInspection, 'capEff'>> & {
    /** Where the process facts came from: /proc on this machine, and/or the process's own /metrics. */
    sources: ('proc' | 'metrics')[];
    code?: CodeInventory;
    /** The microkernel's NATS isolation, tried live by its supervisor when the report was made. */
    isolation?: NatsIsolation;
    /** The processes its supervisor runs (name, pid), from the control API's status. */
    processes?: { name: string; pid: number | null }[];
    /** Why a part could not be measured (no gauges, control API unreachable, …). */
    notes?: string[];
  };

export type SecurityMeasurementOptions = {
  /** The corpus on this machine: the parser's descriptors on files under it are counted. */
  corpusDir?: string;
  /** A corpus file for the battery's range probes. */
  rangeFile?: RangeFile;
  timeoutMs: number;
  /** Send the hostile battery (default true). */
  hostileBattery?: boolean;
  /** Measure the parser and the bus (default true); false leaves only the battery. */
  measure?: boolean;
  /** NATS of the supervisors' control API (else from their runtime-state files). */
  natsUrl?: string;
  stateDir?: string;
  /** Where a supervisor seed may be found without runtime state (default process.env). */
  env?: NodeJS.ProcessEnv;
};

/** The target's /metrics gauges; undefined (with a note) when it serves none. */
async function metricsFacts(
  url: string,
  timeoutMs: number,
  notes: string[],
): Promise<SecurityFacts | undefined> {
  try {
    const response = await request(new URL('/metrics', url), {
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const text = await response.body.text();
    if (response.statusCode !== 200) {
      notes.push(`/metrics answered ${response.statusCode}`);
      return undefined;
    }
    const facts = securityFactsOf(text);
    if (!facts) notes.push('/metrics has no kstyles_security_* gauges');
    return facts;
  } catch (err) {
    notes.push(`/metrics unreachable: ${(err as Error).message}`);
    return undefined;
  }
}

/** The isolation probe and process list of supervisor `name`, when one by that name can be reached. */
async function supervisorFacts(
  name: string,
  options: SecurityMeasurementOptions,
  notes: string[],
): Promise<Pick<MeasuredSecurity, 'isolation' | 'processes'>> {
  let connection: ReturnType<typeof controlClientOptionsFor>;
  try {
    connection = controlClientOptionsFor(name, {
      ...(options.natsUrl ? { natsUrl: options.natsUrl } : {}),
      ...(options.stateDir ? { stateDir: options.stateDir } : {}),
      ...(options.env ? { env: options.env } : {}),
    });
  } catch (err) {
    notes.push(`supervisor '${name}': ${(err as Error).message}`);
    return {};
  }
  if (!connection) return {}; // No supervisor of that name here: not a microkernel, or not ours to ask.
  let client: SupervisorControlClient | undefined;
  try {
    client = await SupervisorControlClient.connect({ ...connection, timeoutMs: options.timeoutMs });
    const status = await client.status(name);
    const isolation = (await client.probe(name, NATS_ISOLATION_PROBE)) as NatsIsolation;
    return { isolation, processes: status.children.map((c) => ({ name: c.name, pid: c.pid })) };
  } catch (err) {
    notes.push(`supervisor '${name}': ${(err as Error).message}`);
    return {};
  } finally {
    await client?.close().catch(() => {});
  }
}

function realCorpus(dir: string | undefined): string | undefined {
  if (!dir) return undefined;
  try {
    return realpathSync(dir);
  } catch {
    return undefined;
  }
}

/** Everything measured of one target's security; the battery first, so the parser has read a data file. */
export async function measureTargetSecurity(
  target: { name: string; url: string },
  options: SecurityMeasurementOptions,
): Promise<{ hostile?: HostileOutcome; security?: MeasuredSecurity }> {
  const hostile =
    (options.hostileBattery ?? true)
      ? await runHostileBattery(target.url, options.rangeFile, options.timeoutMs)
      : undefined;
  if (options.measure === false) return hostile ? { hostile } : {};
  const notes: string[] = [];
  const fromMetrics = await metricsFacts(target.url, options.timeoutMs, notes);
  const observed = listenerFacts(target.url, realCorpus(options.corpusDir), fromMetrics?.pid);
  const { capEff: _mask, ...process } = observed ?? ({} as Partial<ProcessInspection>);
  const security: MeasuredSecurity = {
    ...fromMetrics,
    ...process,
    sources: [...(observed ? (['proc'] as const) : []), ...(fromMetrics ? (['metrics'] as const) : [])],
    ...(await supervisorFacts(target.name, options, notes)),
  };
  if (notes.length > 0) security.notes = notes;
  return { ...(hostile ? { hostile } : {}), security };
}

/**
 * The Security row's measurements of every target, at once (one function the benchmark can call too):
 * per target name, the hostile battery's outcome and what was measured of its request parser.
 */
export async function measureSecurity(
  targets: { name: string; url: string }[],
  options: SecurityMeasurementOptions,
): Promise<Record<string, { hostile?: HostileOutcome; security?: MeasuredSecurity }>> {
  const measured = await Promise.all(targets.map((target) => measureTargetSecurity(target, options)));
  return Object.fromEntries(targets.map((target, i) => [target.name, measured[i]!]));
}

/**
 * The given facts (`--facts`, by hand: a given fact wins) with everything measured of every target
 * merged in under its name: `hostile` and `security`. What runLoad records in results.json.
 */
export async function withSecurityFacts(
  targets: { name: string; url: string }[],
  given: Record<string, TargetFacts> | undefined,
  options: SecurityMeasurementOptions,
): Promise<{ facts?: Record<string, TargetFacts> }> {
  const measured = await measureSecurity(targets, options);
  const facts: Record<string, TargetFacts> = {};
  for (const [name, { hostile, security }] of Object.entries(measured)) {
    if (hostile || security)
      facts[name] = { ...(hostile ? { hostile } : {}), ...(security ? { security } : {}) };
  }
  for (const [name, value] of Object.entries(given ?? {})) facts[name] = { ...facts[name], ...value };
  return Object.keys(facts).length > 0 ? { facts } : {};
}
