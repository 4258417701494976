import path from 'node:path';
import { Client, request } from 'undici';
import {
  FAULT_SIGNALS,
  type FaultKind,
  isSignalFault,
  type SignalFaultKind,
  UNDO_SIGNALS,
} from '../services/contract/faults.ts';
import {
  type ControlClientOptions,
  clientOptionsFromState,
  SupervisorControlClient,
  SupervisorControlError,
} from '../services/supervisor/control-client.ts';
import { readRuntimeState, runtimeStateDir } from '../services/supervisor/runtime-state.ts';
import {
  DEFAULT_CRASH_STARTS,
  MAX_CRASH_STARTS,
  SUPERVISOR_SUBJECTS,
} from '../services/supervisor/subjects.ts';

/** Options of one injection, from the scenario. */
export type FaultOptions = { forMs?: number; latencyMs?: number; times?: number };

/** What an injection did; `resume` undoes a temporary fault (hang: SIGCONT) after `forMs`. */
export type FaultInjection = { message: string; resume?: () => Promise<string> };

/** A way to inject faults. The engine asks each driver in order whether it supports a target and kind. */
export interface FaultDriver {
  readonly name: string;
  supports(target: string, kind: FaultKind): boolean;
  inject(target: string, kind: FaultKind, opts: FaultOptions): Promise<FaultInjection>;
  close?(): Promise<void>;
}

function signalProcess(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'ESRCH'
        ? `no process with PID ${pid}: it has already exited or the PID is wrong`
        : code === 'EPERM'
          ? `not allowed to signal PID ${pid}: run the load generator as the same user as the target`
          : `cannot send ${signal} to PID ${pid}: ${(err as Error).message}`,
    );
  }
}

/** Whether a fault is undone after its `for`: a hang always ends; a slowdown only when it has a duration. */
function undoSignal(kind: SignalFaultKind, opts: FaultOptions): NodeJS.Signals | undefined {
  if (kind === 'hang') return UNDO_SIGNALS.hang;
  return kind === 'slow' && opts.forMs !== undefined ? UNDO_SIGNALS.slow : undefined;
}

function signalInjection(
  pid: number,
  kind: SignalFaultKind,
  what: string,
  opts: FaultOptions,
): FaultInjection {
  signalProcess(pid, FAULT_SIGNALS[kind]);
  const message = `${FAULT_SIGNALS[kind]} sent to ${what} (PID ${pid})`;
  const undo = undoSignal(kind, opts);
  if (!undo) return { message };
  return {
    message,
    resume: async () => {
      signalProcess(pid, undo);
      return `${undo} sent to ${what} (PID ${pid})`;
    },
  };
}

/**
 * (b) Signals to local processes: `pid:1234`, or a bare name whose runtime-state file
 * `<tmpdir>/kstyles/run/<name>.json` gives the PID of the whole process (monolith, unikernel).
 */
export class SignalFaultDriver implements FaultDriver {
  readonly name = 'signal';
  constructor(private readonly stateDir = runtimeStateDir()) {}

  supports(target: string, kind: FaultKind): boolean {
    return isSignalFault(kind) && (/^pid:\d+$/.test(target) || /^[\w.-]+$/.test(target));
  }

  async inject(target: string, kind: FaultKind, opts: FaultOptions): Promise<FaultInjection> {
    if (!isSignalFault(kind)) throw new Error(`the signal driver cannot inject '${kind}'`);
    const pidMatch = /^pid:(\d+)$/.exec(target);
    if (pidMatch) return signalInjection(Number(pidMatch[1]), kind, target, opts);
    const state = readRuntimeState(target, this.stateDir);
    if (!state) {
      throw new Error(
        `no runtime state ${path.join(this.stateDir, `${target}.json`)}: is '${target}' running? Name it as pid:N, docker:NAME or SUPERVISOR:SERVICE instead`,
      );
    }
    return signalInjection(state.pid, kind, target, opts);
  }
}

/** What the supervisor answered, short: the PID it acted on, else its JSON reply. */
function describeAnswer(answer: unknown): string {
  const pid = (answer as { pid?: unknown } | null)?.pid;
  if (typeof pid === 'number') return `PID ${pid}`;
  if (pid === null) return 'not running';
  const text = JSON.stringify(answer) ?? String(answer);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/**
 * (a) The supervisor's control API, through its client (`SupervisorControlClient`).
 * `microkernel:driver` → supervisor `microkernel`, service `driver`. kill/term/hang become `kill` with
 * SIGKILL/SIGTERM/SIGSTOP (hang later sends SIGCONT), slow with SIGUSR2; `nats` becomes `restart` of the supervisor's
 * `nats` child (`microkernel` or `microkernel:nats`); `crashloop` becomes `crashloop`: the service's next
 * `times` starts (default 3) exit at once and its process is SIGKILLed (a service with a crash-at-start
 * hook: the microkernel's driver with chaos on).
 */
export class SupervisorFaultDriver implements FaultDriver {
  readonly name = 'supervisor';
  /** One client per supervisor: each may sit on its own NATS with its own credentials. */
  private readonly clients = new Map<string, Promise<SupervisorControlClient>>();

  /**
   * `control`, when given, reaches every supervisor (servers, credentials, NATS role: the console's
   * user in compose, where no runtime-state file exists); else each supervisor's runtime-state file
   * gives its credentials, and `natsUrl` its servers.
   */
  constructor(
    private readonly natsUrl: string | undefined,
    private readonly stateDir = runtimeStateDir(),
    private readonly timeoutMs = 3000,
    private readonly control?: ControlClientOptions,
  ) {}

  supports(target: string, kind: FaultKind): boolean {
    if (/^(pid|docker):/.test(target)) return false;
    if (kind === 'nats') return /^[\w.-]+(:nats)?$/.test(target);
    return /^[\w.-]+:[\w.-]+$/.test(target) && (isSignalFault(kind) || kind === 'crashloop');
  }

  /** --nats wins over the runtime-state file's servers; the file's credentials apply either way. */
  private connectionFor(supervisorId: string): ControlClientOptions {
    if (this.control) return { ...this.control, timeoutMs: this.timeoutMs };
    const state = readRuntimeState(supervisorId, this.stateDir);
    const fromState = state ? clientOptionsFromState(state) : undefined;
    const servers = this.natsUrl?.split(',') ?? fromState?.servers;
    if (!servers || servers.length === 0) {
      throw new Error(
        `no NATS URL for supervisor '${supervisorId}': pass --nats URL (or NATS_URL), or start it so that ${path.join(this.stateDir, `${supervisorId}.json`)} exists`,
      );
    }
    return { ...fromState, servers, timeoutMs: this.timeoutMs };
  }

  private client(supervisorId: string): Promise<SupervisorControlClient> {
    let client = this.clients.get(supervisorId);
    if (!client) {
      client = (async () => SupervisorControlClient.connect(this.connectionFor(supervisorId)))();
      this.clients.set(supervisorId, client);
      client.catch(() => this.clients.delete(supervisorId));
    }
    return client;
  }

  async inject(target: string, kind: FaultKind, opts: FaultOptions): Promise<FaultInjection> {
    const [supervisorId, service = 'nats'] = target.split(':') as [string, string?];
    const client = await this.client(supervisorId);
    /** Names the subject in every failure, and says which answers came from the supervisor itself. */
    const call = async (
      op: 'kill' | 'restart' | 'crashloop',
      run: () => Promise<unknown>,
    ): Promise<string> => {
      const subject = SUPERVISOR_SUBJECTS.control(supervisorId, op);
      try {
        return describeAnswer(await run());
      } catch (err) {
        if (err instanceof SupervisorControlError) {
          throw new Error(`${subject}: supervisor answered ${err.message} (code ${err.code})`);
        }
        throw new Error(`${subject}: ${(err as Error).message}`);
      }
    };
    if (isSignalFault(kind)) {
      const signal = FAULT_SIGNALS[kind];
      const answer = await call('kill', () => client.kill(supervisorId, service, signal));
      const message = `supervisor ${supervisorId}: ${signal} ${service} → ${answer}`;
      const undo = undoSignal(kind, opts);
      if (!undo) return { message };
      return {
        message,
        resume: async () =>
          `supervisor ${supervisorId}: ${undo} ${service} → ${await call('kill', () => client.kill(supervisorId, service, undo))}`,
      };
    }
    if (kind === 'crashloop') {
      const starts = opts.times ?? DEFAULT_CRASH_STARTS;
      if (starts > MAX_CRASH_STARTS) {
        throw new Error(`crashloop: times must be at most ${MAX_CRASH_STARTS}, got ${starts}`);
      }
      const answer = await call('crashloop', () => client.crashloop(supervisorId, service, starts));
      return {
        message: `supervisor ${supervisorId}: crashloop ${service}, its next ${starts} start(s) exit at once; SIGKILL → ${answer}`,
      };
    }
    if (kind !== 'nats') throw new Error(`the supervisor control API has no '${kind}' operation`);
    const answer = await call('restart', () => client.restart(supervisorId, service));
    return { message: `supervisor ${supervisorId}: restart ${service} → ${answer}` };
  }

  async close(): Promise<void> {
    const pending = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(pending.map((c) => c.then((client) => client.close()).catch(() => undefined)));
  }
}

type DockerContainer = { Id: string; Names: string[]; State: string };

/**
 * (c) The Docker engine API over its unix socket: `docker:NAME` (container name or compose service).
 * It signals the container's host PID rather than calling `docker kill`, because the engine treats
 * `docker kill` as a manual stop and does not apply the restart policy.
 */
export class DockerFaultDriver implements FaultDriver {
  readonly name = 'docker';
  constructor(private readonly socketPath = '/var/run/docker.sock') {}

  supports(target: string, kind: FaultKind): boolean {
    return target.startsWith('docker:') && isSignalFault(kind);
  }

  private async api<T>(apiPath: string): Promise<T> {
    const client = new Client('http://docker', { socketPath: this.socketPath });
    try {
      const res = await client.request({ path: apiPath, method: 'GET' });
      const text = await res.body.text();
      if (res.statusCode !== 200)
        throw new Error(`Docker engine ${apiPath}: HTTP ${res.statusCode} ${text.trim()}`);
      return JSON.parse(text) as T;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'EACCES') {
        throw new Error(
          `cannot reach the Docker engine at ${this.socketPath} (${code}): is dockerd running?`,
        );
      }
      throw err;
    } finally {
      await client.close();
    }
  }

  /** Why the engine cannot be used (a message), or undefined when it answers. */
  async unavailable(): Promise<string | undefined> {
    try {
      await this.api<unknown>('/version');
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }

  async findPid(name: string): Promise<{ id: string; pid: number }> {
    const all = await this.api<DockerContainer[]>('/containers/json');
    const byName = all.find((c) => c.Names.some((n) => n.replace(/^\//, '') === name));
    let found = byName;
    if (!found) {
      const filters = encodeURIComponent(JSON.stringify({ label: [`com.docker.compose.service=${name}`] }));
      const byService = await this.api<DockerContainer[]>(`/containers/json?filters=${filters}`);
      found = byService[0];
    }
    if (!found) throw new Error(`no running container named '${name}' or with compose service '${name}'`);
    const info = await this.api<{ State: { Pid: number } }>(`/containers/${found.Id}/json`);
    if (!info.State.Pid) throw new Error(`container '${name}' has no running process`);
    return { id: found.Id.slice(0, 12), pid: info.State.Pid };
  }

  async inject(target: string, kind: FaultKind, opts: FaultOptions): Promise<FaultInjection> {
    if (!isSignalFault(kind)) throw new Error(`the docker driver cannot inject '${kind}'`);
    const name = target.slice('docker:'.length);
    const { id, pid } = await this.findPid(name);
    return signalInjection(pid, kind, `container ${name} (${id})`, opts);
  }
}

/** (d) Poison: GET the corpus's poison file on the target, which makes a chaos-enabled driver crash. */
export class PoisonFaultDriver implements FaultDriver {
  readonly name = 'poison';
  constructor(
    private readonly targets: ReadonlyMap<string, string>,
    private readonly poisonUrlPath: string | null,
    private readonly timeoutMs = 5000,
  ) {}

  supports(target: string, kind: FaultKind): boolean {
    return kind === 'poison' && this.targets.has(target.split(':')[0]!);
  }

  async inject(target: string, _kind: FaultKind, _opts: FaultOptions): Promise<FaultInjection> {
    if (!this.poisonUrlPath)
      throw new Error('the corpus manifest flags no poison file; regenerate it with kstyles corpus');
    const name = target.split(':')[0]!;
    const base = this.targets.get(name)!;
    const url = new URL(this.poisonUrlPath, base).toString();
    try {
      const res = await request(url, { headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs });
      await res.body.dump();
      return { message: `poison request ${this.poisonUrlPath} on ${name} answered HTTP ${res.statusCode}` };
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      return {
        message: `poison request ${this.poisonUrlPath} on ${name} failed: ${e.code ?? e.message} (the target went down)`,
      };
    }
  }
}

export type DriverContext = {
  targets: ReadonlyMap<string, string>;
  poisonUrlPath: string | null;
  natsUrl?: string;
  stateDir?: string;
  /** How to reach every supervisor's control API instead of their runtime-state files. */
  control?: ControlClientOptions;
  dockerSocket?: string;
};

/** The default drivers, most specific first. */
export function defaultFaultDrivers(ctx: DriverContext): FaultDriver[] {
  return [
    new PoisonFaultDriver(ctx.targets, ctx.poisonUrlPath),
    new DockerFaultDriver(ctx.dockerSocket),
    new SupervisorFaultDriver(ctx.natsUrl, ctx.stateDir, undefined, ctx.control),
    new SignalFaultDriver(ctx.stateDir),
  ];
}
