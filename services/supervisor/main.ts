/**
 * The supervisor as a process: `node --import tsx services/supervisor/main.ts --spec FILE`.
 * FILE is a JSON SupervisorSpec (see spec.ts). Exit codes: 0 after SIGTERM/SIGINT (children stopped
 * in reverse order), 1 when it gave up (restart intensity exhausted: an outer restarter takes over),
 * 2 for a bad command line or spec.
 */
import { readFileSync } from 'node:fs';
import { parseCommand, UsageError } from '../../cli/args.ts';
import { removeRuntimeState, runtimeNatsOf, writeRuntimeState } from './runtime-state.ts';
import { parseSupervisorSpec, type ResolvedSupervisorSpec, SpecError } from './spec.ts';
import { Supervisor } from './supervisor.ts';

export const SUPERVISOR_EXIT_CODES = { stopped: 0, gaveUp: 1, usage: 2 } as const;

const COMMAND = {
  name: 'supervisor',
  summary: 'run children from a JSON spec and keep them running (OTP-style)',
  usage: 'node --import tsx services/supervisor/main.ts --spec FILE',
  flags: {
    spec: {
      type: 'string',
      value: 'FILE',
      env: 'KSTYLES_SUPERVISOR_SPEC',
      description: 'JSON supervisor spec',
    },
  },
} as const;

function loadSpec(file: string | undefined): ResolvedSupervisorSpec {
  if (!file) throw new UsageError('supervisor: --spec FILE is required (a JSON supervisor spec).');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`supervisor: cannot read spec file '${file}': ${(err as Error).message}`);
  }
  try {
    return parseSupervisorSpec(JSON.parse(text));
  } catch (err) {
    if (err instanceof SpecError || err instanceof SyntaxError) {
      throw new UsageError(`supervisor: ${file}: ${err.message}`);
    }
    throw err;
  }
}

async function main(argv: string[]): Promise<number> {
  const parsed = parseCommand(COMMAND, argv);
  if (!parsed) return SUPERVISOR_EXIT_CODES.stopped;
  const spec = loadSpec(parsed.flags.spec);
  const supervisor = new Supervisor(spec);
  const stop = () => void supervisor.stop();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('exit', () => removeRuntimeState(spec.id));
  await supervisor.start();
  writeRuntimeState({
    id: spec.id,
    pid: process.pid,
    startedAt: new Date().toISOString(),
    ...(spec.nats ? { nats: runtimeNatsOf(spec.nats) } : {}),
    ...(supervisor.metricsUrl ? { metricsUrl: supervisor.metricsUrl } : {}),
    info: spec.info,
  });
  const outcome = await supervisor.done;
  if (outcome === 'gave_up') {
    process.stderr.write(
      `supervisor '${spec.id}' gave up: more than ${spec.intensity.maxRestarts} restarts within ` +
        `${spec.intensity.periodMs} ms; all children stopped. Exiting ${SUPERVISOR_EXIT_CODES.gaveUp} for an outer restarter.\n`,
    );
    return SUPERVISOR_EXIT_CODES.gaveUp;
  }
  return SUPERVISOR_EXIT_CODES.stopped;
}

let code: number;
try {
  code = await main(process.argv.slice(2));
} catch (err) {
  if (err instanceof UsageError) {
    process.stderr.write(`${err.message}\n`);
    code = err.exitCode;
  } else {
    process.stderr.write(`supervisor: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    code = 1;
  }
}
// A NATS connection still waiting for its first server would keep the process alive.
process.exit(code);
