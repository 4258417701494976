import { intFlag, parseCommand, UsageError } from '../../cli/args.ts';
import { ProcessErrorCode } from '../contract/errors.ts';
import { FAULT_SIGNALS, UNDO_SIGNALS } from '../contract/faults.ts';
import {
  type ControlClientOptions,
  clientOptionsFromState,
  SupervisorControlClient,
  SupervisorControlError,
  SupervisorUnavailableError,
} from './control-client.ts';
import { listRuntimeStates, runtimeStateDir } from './runtime-state.ts';
import { DEFAULT_CRASH_STARTS, MAX_CRASH_STARTS } from './subjects.ts';

/**
 * The signal behind each kind this command sends: the signal-borne faults of the fault menu
 * (docs/architecture.md, 'Faults'), and `resume`, which ends a hang.
 */
export const CHAOS_SIGNALS = { ...FAULT_SIGNALS, resume: UNDO_SIGNALS.hang } as const;
/** The signal kinds, and `crashloop`: the control API's own operation (the next N starts exit at once). */
export type ChaosKind = keyof typeof CHAOS_SIGNALS | 'crashloop';

export const CHAOS_KINDS = [...Object.keys(CHAOS_SIGNALS), 'crashloop'] as ChaosKind[];

const COMMAND = {
  name: 'chaos',
  summary: 'inject a fault into a supervised service through its supervisor',
  usage: `kstyles chaos TARGET KIND [--times N] [--nats URL]   (TARGET = <supervisor>:<service>, KIND = ${CHAOS_KINDS.join(' | ')})`,
  flags: {
    nats: {
      type: 'string',
      env: 'NATS_URL',
      value: 'URL',
      description: 'the NATS of the supervisor (default: from its runtime-state file on this machine)',
    },
    times: {
      type: 'string',
      value: 'N',
      default: String(DEFAULT_CRASH_STARTS),
      description: 'crashloop: how many of the next starts exit at once',
    },
  },
  details: [
    `kinds: ${Object.entries(CHAOS_SIGNALS)
      .map(([kind, signal]) => `${kind} = ${signal}`)
      .join(', ')} (slow toggles the driver's added latency; send it again to switch it off)`,
    "crashloop: the service's next N starts exit at once, then it is SIGKILLed (a service with a",
    "crash-at-start hook: the microkernel's driver with --chaos); watch the backoff grow, and past the",
    'restart intensity the supervisor give up',
    'examples: kstyles chaos microkernel:driver kill',
    '          kstyles chaos lab:monolith hang',
    '          kstyles chaos microkernel:driver crashloop --times 3',
  ].join('\n'),
  positionals: true,
} as const;

/** Parses `<supervisor>:<service>` and the kind, or throws a UsageError naming the problem. */
export function parseChaosArgs(positionals: string[]): {
  supervisorId: string;
  service: string;
  kind: ChaosKind;
} {
  const [target, kind, extra] = positionals;
  if (target === undefined || kind === undefined || extra !== undefined) {
    throw new UsageError(
      `kstyles chaos: expected TARGET KIND, e.g. 'kstyles chaos microkernel:driver kill'.`,
    );
  }
  const match = /^([A-Za-z0-9_-]+):([A-Za-z0-9_-]+)$/.exec(target);
  if (!match) {
    throw new UsageError(
      `kstyles chaos: target '${target}' must be <supervisor>:<service>, e.g. microkernel:driver or lab:monolith.`,
    );
  }
  if (!CHAOS_KINDS.includes(kind as ChaosKind)) {
    throw new UsageError(`kstyles chaos: unknown kind '${kind}'; valid kinds: ${CHAOS_KINDS.join(', ')}.`);
  }
  return { supervisorId: match[1]!, service: match[2]!, kind: kind as ChaosKind };
}

function connectionFor(supervisorId: string, nats: string | undefined): ControlClientOptions {
  if (nats) return { servers: nats };
  const states = listRuntimeStates();
  const state = states.find((s) => s.id === supervisorId);
  if (!state) {
    const running = states.map((s) => s.id);
    throw new UsageError(
      `kstyles chaos: no running supervisor '${supervisorId}' found in ${runtimeStateDir()}; ` +
        (running.length ? `running supervisors: ${running.join(', ')}.` : 'none is running.') +
        ' Start it, or pass --nats URL.',
    );
  }
  const options = clientOptionsFromState(state);
  if (!options)
    throw new UsageError(`kstyles chaos: supervisor '${supervisorId}' runs without NATS: no control API.`);
  return options;
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(COMMAND, argv);
  if (!parsed) return 0;
  const { supervisorId, service, kind } = parseChaosArgs(parsed.positionals);
  const options = connectionFor(supervisorId, parsed.flags.nats);
  let client: SupervisorControlClient | undefined;
  try {
    const starts = intFlag('chaos', 'times', parsed.flags.times, 1, MAX_CRASH_STARTS);
    client = await SupervisorControlClient.connect(options);
    if (kind === 'crashloop') {
      const armed = await client.crashloop(supervisorId, service, starts);
      process.stdout.write(
        `chaos: crashloop → ${supervisorId}:${service}'s next ${armed.starts} start(s) exit at once; ${armed.pid === null ? 'it was not running' : `SIGKILL sent to pid ${armed.pid}`}\n`,
      );
      return 0;
    }
    const result = await client.kill(supervisorId, service, CHAOS_SIGNALS[kind]);
    process.stdout.write(
      `chaos: ${kind} → sent ${result.signal} to ${supervisorId}:${service} (pid ${result.pid})\n`,
    );
    return 0;
  } catch (err) {
    if (err instanceof SupervisorControlError && err.code === ProcessErrorCode.CONTROL_UNKNOWN_SERVICE)
      throw new UsageError(`kstyles chaos: ${err.message}`);
    if (err instanceof SupervisorControlError || err instanceof SupervisorUnavailableError) {
      process.stderr.write(`kstyles chaos: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    await client?.close();
  }
}
