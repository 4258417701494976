import { parseCommand } from '../../cli/args.ts';
import {
  type ControlClientOptions,
  clientOptionsFromState,
  SupervisorControlClient,
  SupervisorUnavailableError,
  splitServerCredentials,
} from './control-client.ts';
import { listRuntimeStates, type RuntimeState, runtimeStateDir } from './runtime-state.ts';
import type { ChildStatus, SupervisorStatus } from './supervisor.ts';

const COMMAND = {
  name: 'ps',
  summary: 'show what runs: supervisors, their services, PIDs, states, restarts',
  usage: 'kstyles ps [--json] [--nats URL] [--id ID]',
  flags: {
    json: { type: 'boolean', description: 'print machine-readable JSON' },
    nats: {
      type: 'string',
      env: 'NATS_URL',
      value: 'URL',
      description: 'ask the supervisors on this NATS (default: the running ones found on this machine)',
    },
    id: { type: 'string', value: 'ID', description: 'only this supervisor' },
  },
  details: `Without --nats, supervisors are found from their runtime-state files in ${runtimeStateDir()}.`,
} as const;

/** One supervisor as ps reports it: its status, or why it could not be asked. */
export type PsEntry = {
  id: string;
  pid?: number;
  metricsUrl?: string;
  info?: Record<string, unknown>;
  status?: SupervisorStatus;
  error?: string;
};

async function ask(entries: PsEntry[], options: ControlClientOptions): Promise<void> {
  let client: SupervisorControlClient;
  try {
    client = await SupervisorControlClient.connect(options);
  } catch (err) {
    for (const e of entries) e.error = (err as Error).message;
    return;
  }
  try {
    await Promise.all(
      entries.map(async (e) => {
        try {
          e.status = await client.status(e.id);
        } catch (err) {
          e.error = (err as Error).message;
        }
      }),
    );
  } finally {
    await client.close();
  }
}

/** Collects the status of the running supervisors (see the command's flags). */
export async function collectPs(opts: { nats?: string; id?: string }): Promise<PsEntry[]> {
  if (opts.nats) {
    const options = { servers: opts.nats };
    let ids: string[];
    if (opts.id) {
      ids = [opts.id];
    } else {
      const client = await SupervisorControlClient.connect(options);
      ids = await client.discover().finally(() => client.close());
    }
    const entries: PsEntry[] = ids.map((id) => ({ id }));
    await ask(entries, options);
    return entries;
  }
  const states = listRuntimeStates().filter((s) => !opts.id || s.id === opts.id);
  const entries = states.map(
    (s: RuntimeState): PsEntry => ({
      id: s.id,
      pid: s.pid,
      ...(s.metricsUrl ? { metricsUrl: s.metricsUrl } : {}),
      info: s.info,
    }),
  );
  await Promise.all(
    states.map((state, i) => {
      const entry = entries[i]!;
      const options = clientOptionsFromState(state);
      if (!options) {
        entry.error = 'runs without NATS: no control API to ask';
        return undefined;
      }
      return ask([entry], options);
    }),
  );
  return entries;
}

export function formatDuration(ms: number | null): string {
  if (ms === null) return '-';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

function lastExit(child: ChildStatus, now: number): string {
  const exit = child.lastExit;
  if (!exit) return '-';
  const how = exit.signal ?? `code ${exit.code}`;
  return `${how} (${exit.reason}) ${formatDuration(now - Date.parse(exit.time))} ago`;
}

export function formatPsTable(entries: PsEntry[], now = Date.now()): string {
  const rows = [['SUPERVISOR', 'SERVICE', 'PID', 'SPARE', 'STATE', 'RESTARTS', 'LAST EXIT', 'UPTIME']];
  for (const e of entries) {
    if (!e.status) {
      rows.push([e.id, '-', e.pid ? String(e.pid) : '-', '-', 'unreachable', '-', e.error ?? '-', '-']);
      continue;
    }
    const supervisorState = e.status.phase === 'running' ? 'up' : e.status.phase;
    rows.push([e.id, '(supervisor)', String(e.status.pid), '-', supervisorState, '-', '-', '-']);
    for (const c of e.status.children) {
      rows.push([
        e.id,
        c.name,
        c.pid === null ? '-' : String(c.pid),
        // Absent from the status of a supervisor older than warm spares.
        c.sparePid == null ? '-' : String(c.sparePid),
        c.state,
        String(c.restarts),
        lastExit(c, now),
        formatDuration(c.uptimeMs),
      ]);
    }
  }
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
  return `${rows.map((r) => r.map((cell, col) => (col === r.length - 1 ? cell : cell.padEnd(widths[col]!))).join('  ')).join('\n')}\n`;
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(COMMAND, argv);
  if (!parsed) return 0;
  const { json, nats, id } = parsed.flags;
  let entries: PsEntry[];
  try {
    entries = await collectPs({ ...(nats ? { nats } : {}), ...(id ? { id } : {}) });
  } catch (err) {
    if (!(err instanceof SupervisorUnavailableError)) throw err;
    process.stderr.write(`kstyles ps: ${err.message}\n`);
    return 1;
  }
  if (json) {
    process.stdout.write(`${JSON.stringify({ supervisors: entries }, null, 2)}\n`);
  } else if (entries.length === 0) {
    const where = nats
      ? `on NATS ${splitServerCredentials(nats).servers.join(', ')}`
      : `in ${runtimeStateDir()}`;
    process.stdout.write(`no running supervisor${id ? ` '${id}'` : ''} found ${where}\n`);
  } else {
    process.stdout.write(formatPsTable(entries));
  }
  return entries.some((e) => e.error) ? 1 : 0;
}
