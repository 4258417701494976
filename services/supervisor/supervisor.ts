/**
 * The supervisor's contract with its children (after MINIX 3's reincarnation server and Erlang/OTP):
 * - it starts them in spec order, each once the one before is ready, watches each with its health
 *   check, and restarts crashed or hung ones with backoff, within a restart intensity;
 * - each child runs in its own process group (a signal reaches the child's own children too);
 * - each child dies with the supervisor, however the supervisor dies: on Linux the kernel SIGKILLs it
 *   (parent-death.ts), so a SIGKILLed supervisor leaves no process and no port behind;
 * - a child with a `socket` gets the listening socket the supervisor holds as fd 3 (held-socket.ts):
 *   the socket outlives each incarnation, so a restart refuses no connection;
 * - a child whose spec asks for a `spare` has one more process of its command booted and waiting, and
 *   a restart activates it instead of spawning (warm-spare.ts): the restart skips the runtime's boot;
 * - on stop, children go in reverse order: SIGTERM, SIGKILL after their shutdownMs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { EventEmitter, on } from 'node:events';
import { getPriority, constants as osConstants } from 'node:os';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { type MetricsEndpoint, serveMetricsEndpoint } from '../contract/metrics-server.ts';
import { PROC_TICKS_PER_SECOND, readProcStat } from '../contract/proc-stat.ts';
import { SUPERVISED_INSTANCE_ENV } from './child-identity.ts';
import { ControlError } from './control-error.ts';
import { checkTcp, HttpHealthChecks, type NatsIdentity, pingNatsService } from './health.ts';
import { type HeldSocket, holdSocket, LISTEN_FD, LISTEN_FD_ENV } from './held-socket.ts';
import { createSupervisorMetrics, type SupervisorMetrics } from './metrics.ts';
import { NatsLink } from './nats-link.ts';
import { findSetpriv, linkedToParent } from './parent-death.ts';
import { signalProcessGroup } from './runtime-state.ts';
import { atNice, DEFAULT_SPARE_NICE, findSpareNice, raisePriority } from './spare-priority.ts';
import {
  type BackoffSpec,
  parseSupervisorSpec,
  type ResolvedChildSpec,
  type ResolvedSupervisorSpec,
  type SupervisorSpec,
} from './spec.ts';
import { type ControlOp, MAX_CRASH_STARTS, SUPERVISOR_SUBJECTS } from './subjects.ts';
import { activationLine, SPARE_DELAY_MS, WARM_SPARE_ENV } from './warm-spare.ts';

export type ChildState = 'starting' | 'up' | 'hung' | 'restarting' | 'stopped' | 'failed';
/** Why a child was restarted: the `reason` label of kstyles_supervisor_restarts_total. */
export type RestartReason = 'crashed' | 'exited' | 'hung' | 'manual' | 'sibling';
/** Why a child process ended: a restart reason, or 'shutdown' when the supervisor stopped it. */
export type ExitReason = 'crashed' | 'exited' | 'hung' | 'shutdown';
/** `busy`: a ready child silent for its hang window while using CPU, given its busy window (#watch). */
export type SupervisorEventType = 'started' | 'exited' | 'busy' | 'hung' | 'restarting' | 'ready' | 'gave_up';

export type SupervisorEvent = {
  type: SupervisorEventType;
  supervisorId: string;
  service: string;
  /** ISO time. */
  time: string;
  pid: number | null;
  /** Restarts of this child so far. */
  restarts: number;
  reason?: RestartReason | ExitReason;
  code?: number | null;
  signal?: string | null;
  /** restarting: the backoff before the new start. */
  delayMs?: number;
  /** ready after a fault: fault detected → healthy again. */
  recoveryMs?: number;
  message?: string;
};

export type LastExit = { code: number | null; signal: string | null; reason: ExitReason; time: string };

export type ChildStatus = {
  name: string;
  pid: number | null;
  state: ChildState;
  restarts: number;
  lastExit: LastExit | null;
  /** Since the current process was spawned. */
  uptimeMs: number | null;
  /** Since the current process first answered its health check. */
  readyForMs: number | null;
  /** Starts still armed to exit at once (the control API's `crashloop`); 0 when none. */
  crashStartsLeft: number;
  /** The warm spare waiting to be activated at the next restart (warm-spare.ts); null when none. */
  sparePid: number | null;
};

export type SupervisorPhase = 'running' | 'stopping' | 'stopped' | 'gave_up';

export type SupervisorStatus = {
  supervisorId: string;
  pid: number;
  strategy: string;
  phase: SupervisorPhase;
  startedAt: string;
  /** The spec's extra facts (the microkernel's transfer mode, the lab's URLs). */
  info: Record<string, unknown>;
  children: ChildStatus[];
};

export type SupervisorOptions = {
  /** Where prefixed child stdout lines go. Default process.stdout. */
  stdout?: NodeJS.WritableStream;
  /** Where prefixed child stderr lines and the supervisor's own log go. Default process.stderr. */
  stderr?: NodeJS.WritableStream;
  /** Registry for the supervisor metrics. Default: a new one that also holds prom-client's process metrics. */
  registry?: Registry;
  /** Source of backoff jitter. Default Math.random. */
  random?: () => number;
  /**
   * Checks its owner registers by name, run on request through the control API's `probe` op (e.g. the
   * microkernel's NATS isolation probe, which needs every role's credentials that only its owner holds).
   * The supervisor knows nothing of what they check.
   */
  probes?: Record<string, () => Promise<unknown>>;
};

/** How the supervisor ended: stopped on request, or gave up after exhausting its restart intensity. */
export type SupervisorOutcome = 'stopped' | 'gave_up';

/**
 * The readiness poll of a starting child: fast, because the ready event releases the reads the file
 * server holds. At 50 ms the event came 25-42 ms after a warm spare's own ready line, at 10 ms 6-11 ms;
 * a failing check of a starting server is a no-responders reply or a refused connection, cheap.
 */
const READINESS_POLL_MS = 10;
/** A process's CPU time in ms, read at a moment (Date.now()). */
type CpuSample = { ms: number; at: number };
/** A silent child using at least this share of a core is busy rather than stopped or blocked (#watch). */
const BUSY_CPU_SHARE = 0.1;

/** The path beside a supervisor's /metrics that answers 200 once its whole tree has started. */
export const STARTED_PATH = '/started';

/** Spawned and not yet exited (its exit event may still be on its way). */
function isRunning(proc: ChildProcess): proc is ChildProcess & { pid: number } {
  return proc.pid !== undefined && proc.exitCode === null && proc.signalCode === null;
}

/** The backoff before restart number `consecutive` (0 = first restart, immediate). */
export function backoffDelayMs(
  consecutive: number,
  backoff: BackoffSpec,
  random: () => number = Math.random,
): number {
  if (consecutive <= 0) return 0;
  const base = Math.min(backoff.maxMs, backoff.initialMs * backoff.factor ** (consecutive - 1));
  return Math.round(base * (1 + backoff.jitter * (2 * random() - 1)));
}

type Child = {
  spec: ResolvedChildSpec;
  index: number;
  proc: ChildProcess | null;
  pid: number | null;
  state: ChildState;
  /** Whether the supervisor wants this child running. */
  wanted: boolean;
  restarts: number;
  /** Restarts since the child last stayed ready for backoff.resetAfterMs: drives the backoff. */
  consecutive: number;
  notBefore: number;
  restartTimer: NodeJS.Timeout | null;
  lastExit: LastExit | null;
  spawnedAt: number | null;
  readyAt: number | null;
  /** When the fault being recovered from was detected; cleared when the child is ready again. */
  faultAt: number | null;
  /** Why the supervisor itself is ending the current process. */
  stopIntent: 'shutdown' | 'hung' | null;
  watch: AbortController | null;
  identity: NatsIdentity;
  /** The armed crash loop: starts left to fail, of how many armed. */
  crashloop: { left: number; armed: number };
  /** The booted process waiting to become the next incarnation (spec.spare), and its start timer. */
  spare: ChildProcess | null;
  spareTimer: NodeJS.Timeout | null;
};

/** Erlang/OTP-style supervisor of OS processes (after MINIX 3's reincarnation server). */
export class Supervisor extends EventEmitter {
  readonly spec: ResolvedSupervisorSpec;
  readonly registry: Registry;
  readonly done: Promise<SupervisorOutcome>;
  #resolveDone!: (outcome: SupervisorOutcome) => void;
  #children: Child[];
  #phase: SupervisorPhase = 'running';
  #startedAt = new Date();
  #metrics: SupervisorMetrics;
  #nats: NatsLink | undefined;
  #metricsServer: MetricsEndpoint | undefined;
  #restartTimes: number[] = [];
  #batches = 0;
  /** Whether every child has been ready once: the end of the ordered first start. */
  #startedAll = false;
  #batchChain: Promise<void> = Promise.resolve();
  #allReady: { promise: Promise<void>; resolve(): void; reject(err: Error): void };
  #stdout: NodeJS.WritableStream;
  #stderr: NodeJS.WritableStream;
  #random: () => number;
  #probes: Record<string, () => Promise<unknown>>;
  /** Links each child to this process so that it dies with it (parent-death.ts); absent off Linux. */
  #setpriv = findSetpriv();
  /** Boots spares at their spec's nice value (spare-priority.ts); absent where they could not be raised again. */
  #spareNice = findSpareNice();
  /** The listening sockets held for children with a `socket` (held-socket.ts), by child name. */
  #sockets = new Map<string, HeldSocket>();
  #httpChecks = new HttpHealthChecks();

  constructor(spec: SupervisorSpec, options: SupervisorOptions = {}) {
    super();
    this.spec = parseSupervisorSpec(spec);
    this.#stdout = options.stdout ?? process.stdout;
    this.#stderr = options.stderr ?? process.stderr;
    this.#random = options.random ?? Math.random;
    this.#probes = options.probes ?? {};
    if (options.registry) {
      this.registry = options.registry;
    } else {
      this.registry = new Registry();
      collectDefaultMetrics({ register: this.registry });
    }
    this.#metrics = createSupervisorMetrics(this.registry);
    this.#children = this.spec.children.map((childSpec, index) => ({
      spec: childSpec,
      index,
      proc: null,
      pid: null,
      state: 'stopped',
      wanted: true,
      restarts: 0,
      consecutive: 0,
      notBefore: 0,
      restartTimer: null,
      lastExit: null,
      spawnedAt: null,
      readyAt: null,
      faultAt: null,
      stopIntent: null,
      watch: null,
      identity: { token: '', staleIds: new Set() },
      crashloop: { left: 0, armed: 0 },
      spare: null,
      spareTimer: null,
    }));
    for (const child of this.#children) this.#metrics.up.set({ service: child.spec.name }, 0);
    this.done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
    let resolveReady!: () => void;
    let rejectReady!: (err: Error) => void;
    const promise = new Promise<void>((resolve, reject) => {
      resolveReady = resolve;
      rejectReady = reject;
    });
    promise.catch(() => {});
    this.#allReady = { promise, resolve: resolveReady, reject: rejectReady };
  }

  get id(): string {
    return this.spec.id;
  }

  get metricsUrl(): string | undefined {
    return this.#metricsServer?.url;
  }

  /** The NATS server the supervisor is connected to, once it is. */
  get natsUrl(): string | undefined {
    return this.#nats?.url;
  }

  /**
   * Opens the metrics port, starts connecting to NATS in the background, and starts the children in
   * order (each after the one before is ready). Returns once the metrics port is open; see whenReady().
   */
  async start(): Promise<void> {
    try {
      for (const { name, socket } of this.spec.children) {
        if (socket) this.#sockets.set(name, holdSocket(socket.host, socket.port, name));
      }
    } catch (err) {
      this.#closeSockets();
      throw err;
    }
    if (!this.#setpriv) {
      this.#log(
        'no setpriv (util-linux) on this system: children that do not watch their parent outlive a SIGKILLed supervisor',
      );
    }
    if (this.spec.metricsPort !== undefined) {
      this.#metricsServer = await serveMetricsEndpoint(this.registry, this.spec.metricsPort, {
        host: this.spec.metricsHost,
        flag: "the supervisor spec's metricsPort",
        routes: { [STARTED_PATH]: () => this.#startedStatus() },
      });
    }
    if (this.spec.nats) {
      this.#nats = new NatsLink(
        this.id,
        this.spec.nats,
        (op, req) => this.#control(op, req),
        (l) => this.#log(l),
      );
      this.#nats.open();
    }
    this.#reconcile();
  }

  /**
   * GET /started beside /metrics: 200 once every child has been ready once, and from then on for as
   * long as this supervisor runs (a child it is restarting is its own business); 503 naming the children
   * it still waits for before that. A parent supervisor checks this to know the tree serves without
   * taking a child's restart for the tree's death.
   */
  #startedStatus(): { status: number; text: string } {
    if (this.#startedAll) return { status: 200, text: 'started\n' };
    const waiting = this.#children.filter((c) => c.wanted && c.state !== 'up').map((c) => c.spec.name);
    return { status: 503, text: `starting: waiting for ${waiting.join(', ')} to be ready\n` };
  }

  /** Resolves once every child has become ready after start(); rejects if the supervisor ends first. */
  whenReady(): Promise<void> {
    return this.#allReady.promise;
  }

  /** Stops every child in reverse start order (SIGTERM, SIGKILL after its shutdown timeout). */
  async stop(): Promise<void> {
    if (this.#phase === 'running') {
      this.#phase = 'stopping';
      await this.#shutdown('stopped');
    }
    await this.done;
  }

  status(): SupervisorStatus {
    const now = Date.now();
    return {
      supervisorId: this.id,
      pid: process.pid,
      strategy: this.spec.strategy,
      phase: this.#phase,
      startedAt: this.#startedAt.toISOString(),
      info: this.spec.info,
      children: this.#children.map((c) => ({
        name: c.spec.name,
        pid: c.proc ? c.pid : null,
        state: c.state,
        restarts: c.restarts,
        lastExit: c.lastExit,
        uptimeMs: c.proc && c.spawnedAt !== null ? now - c.spawnedAt : null,
        readyForMs: c.state === 'up' && c.readyAt !== null ? now - c.readyAt : null,
        crashStartsLeft: c.crashloop.left,
        sparePid: c.spare?.pid ?? null,
      })),
    };
  }

  /** Runs the probe registered under `name` (SupervisorOptions.probes) and resolves its answer. */
  probe(name: unknown): Promise<unknown> {
    const known = Object.keys(this.#probes);
    if (typeof name !== 'string' || !Object.hasOwn(this.#probes, name)) {
      return Promise.reject(
        new ControlError(
          400,
          `probe: the request needs {"name": "<probe>"}; supervisor '${this.id}' has ${known.length > 0 ? `the probes ${known.join(', ')}` : 'no probes'}`,
        ),
      );
    }
    return this.#probes[name]!();
  }

  /** Sends any signal to a child's process group (default SIGKILL): the chaos entry point. */
  kill(service: string, signal = 'SIGKILL'): { service: string; pid: number; signal: string } {
    const child = this.#child(service);
    if (!(signal in osConstants.signals)) {
      throw new ControlError(
        400,
        `unknown signal '${signal}': use a name such as SIGKILL, SIGTERM, SIGSTOP, SIGCONT`,
      );
    }
    if (!child.proc || child.pid === null) {
      throw new ControlError(
        409,
        `service '${service}' has no running process (state ${child.state}); nothing to signal`,
      );
    }
    this.#signal(child, signal as NodeJS.Signals);
    return { service, pid: child.pid, signal };
  }

  /** Stops a child gracefully and starts it again (with the children after it, under rest_for_one). */
  async restart(service: string): Promise<{ service: string; pid: number | null }> {
    const child = this.#child(service);
    if (this.#phase !== 'running') throw new ControlError(409, `supervisor '${this.id}' is ${this.#phase}`);
    await this.#stopBatch(this.#planRestart(child, 'manual', 0));
    return { service, pid: child.proc ? child.pid : null };
  }

  /**
   * A crash loop on demand: the next `starts` starts of a child exit at once (the supervisor sets the
   * child's crash-at-start variable, `crashAtStartEnv`, for each), and its running process is SIGKILLed.
   * The restarts, their growing backoff and the restart intensity then do what they do for a real one.
   */
  crashloop(service: string, starts: number): { service: string; pid: number | null; starts: number } {
    const child = this.#child(service);
    if (!child.spec.crashAtStartEnv) {
      throw new ControlError(
        409,
        `service '${service}' has no crash-at-start hook (its child spec names no crashAtStartEnv; the microkernel's driver has one when it runs with --chaos)`,
      );
    }
    if (!Number.isInteger(starts) || starts < 1 || starts > MAX_CRASH_STARTS) {
      throw new ControlError(
        400,
        `crashloop: "starts" must be a whole number from 1 to ${MAX_CRASH_STARTS}, got ${JSON.stringify(starts)}`,
      );
    }
    if (this.#phase !== 'running') throw new ControlError(409, `supervisor '${this.id}' is ${this.#phase}`);
    child.crashloop = { left: starts, armed: starts };
    const pid = child.proc ? child.pid : null;
    if (pid !== null) this.#signal(child, 'SIGKILL');
    this.#log(`${service} crashloop armed: its next ${starts} start(s) exit at once`);
    return { service, pid, starts };
  }

  /** Every event from now on, until the signal aborts. */
  async *events(signal?: AbortSignal): AsyncGenerator<SupervisorEvent> {
    try {
      for await (const [event] of on(this, 'event', signal ? { signal } : {})) yield event as SupervisorEvent;
    } catch (err) {
      if (!(err instanceof Error && err.name === 'AbortError')) throw err;
    }
  }

  #child(service: string): Child {
    const child = this.#children.find((c) => c.spec.name === service);
    if (!child) {
      const known = this.#children.map((c) => c.spec.name).join(', ');
      throw new ControlError(
        404,
        `unknown service '${service}' in supervisor '${this.id}'; known services: ${known}`,
      );
    }
    return child;
  }

  #control(op: ControlOp, request: unknown): unknown {
    const req = (typeof request === 'object' && request !== null ? request : {}) as Record<string, unknown>;
    if (op === 'status') return this.status();
    if (op === 'probe') return this.probe(req['name']);
    if (typeof req['service'] !== 'string') {
      throw new ControlError(400, `${op}: the request needs {"service": "<name>"}`);
    }
    if (op === 'kill') {
      if (req['signal'] !== undefined && typeof req['signal'] !== 'string') {
        throw new ControlError(400, 'kill: "signal" must be a signal name such as SIGSTOP');
      }
      return this.kill(req['service'], req['signal'] as string | undefined);
    }
    if (op === 'crashloop') return this.crashloop(req['service'], req['starts'] as number);
    return this.restart(req['service']);
  }

  #log(line: string): void {
    this.#stderr.write(`[supervisor ${this.id}] ${line}\n`);
  }

  #emit(child: Child, type: SupervisorEventType, extra: Partial<SupervisorEvent> = {}): void {
    const event: SupervisorEvent = {
      type,
      supervisorId: this.id,
      service: child.spec.name,
      time: new Date().toISOString(),
      pid: child.pid,
      restarts: child.restarts,
      ...extra,
    };
    const details = Object.entries(extra)
      .filter(([, v]) => v !== undefined && v !== null)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    this.#log(
      `${child.spec.name} ${type} pid=${child.pid ?? '-'} restarts=${child.restarts}${details ? ` ${details}` : ''}`,
    );
    this.emit('event', event);
    this.emit(type, event);
    this.#nats?.publish(SUPERVISOR_SUBJECTS.events(this.id), event);
  }

  /**
   * Starts the wanted children that are not running. During the first start, and always under
   * rest_for_one, a child starts only once every child before it is ready (dependency order);
   * afterwards one_for_one restarts each child on its own clock.
   */
  #reconcile(): void {
    if (this.#phase !== 'running' || this.#batches > 0) return;
    const now = Date.now();
    const ordered = this.spec.strategy === 'rest_for_one' || !this.#startedAll;
    for (const child of this.#children) {
      if (!child.wanted || (child.proc && child.state === 'up')) continue;
      if (!child.proc && now >= child.notBefore) this.#spawn(child);
      if (ordered) return;
    }
    if (this.#children.every((c) => !c.wanted || (c.proc && c.state === 'up'))) {
      this.#startedAll = true;
      this.#allReady.resolve();
    }
  }

  #spawn(child: Child): void {
    const { spec } = child;
    if (child.identity.pinnedId) child.identity.staleIds.add(child.identity.pinnedId);
    child.identity = { token: `${this.id}.${spec.name}.${randomUUID()}`, staleIds: child.identity.staleIds };
    const crashing = this.#takeCrashStart(child);
    const incarnation = this.#incarnationEnv(child, crashing);
    const spare = this.#takeSpare(child);
    let proc: ChildProcess;
    if (spare) {
      spare.stdin?.end(activationLine({ env: incarnation }));
      proc = spare;
    } else {
      proc = this.#launch(child, { ...this.#baseEnv(child), ...incarnation }, 'incarnation');
      // The first start boots each spare beside its child: the tree starts one child at a time, so a
      // core is free then, while a spare booted after the start competes with the first requests.
      if (!this.#startedAll) this.#startSpare(child);
    }
    child.proc = proc;
    child.pid = proc.pid ?? null;
    child.state = 'starting';
    child.spawnedAt = Date.now();
    child.readyAt = null;
    child.stopIntent = null;
    const started = () => {
      const notes = [
        crashing ? `crashloop: start ${crashing} exits at once` : '',
        spare ? 'a warm spare activated' : '',
      ].filter(Boolean);
      this.#emit(child, 'started', notes.length > 0 ? { message: notes.join('; ') } : {});
      if (spec.health.kind === 'none') this.#markReady(child);
      else void this.#watch(child, proc);
    };
    if (spare) started();
    else proc.once('spawn', started);
  }

  /**
   * A new process of the child's command in its own process group, its output forwarded and its exit
   * watched: the child's incarnation, or its spare (at its low priority, its stdin kept for the
   * activation line).
   */
  #launch(child: Child, env: NodeJS.ProcessEnv, role: 'incarnation' | 'spare'): ChildProcess {
    const { spec } = child;
    const socket = this.#sockets.get(spec.name);
    const linked = linkedToParent(spec.command, spec.args, this.#setpriv);
    const launch = role === 'spare' ? atNice(linked, this.#spareNiceOf(child), this.#spareNice) : linked;
    const proc = spawn(launch.command, launch.args, {
      ...(spec.cwd ? { cwd: spec.cwd } : {}),
      env,
      // A held socket lands at index LISTEN_FD (3) of the child's descriptors.
      stdio: [role === 'spare' ? 'pipe' : 'ignore', 'pipe', 'pipe', ...(socket ? [socket.fd] : [])],
      // Its own process group: signals reach the child's own children too, and a Ctrl-C in the
      // terminal reaches only the supervisor, which then stops the children in order.
      detached: true,
    });
    // A spare that died before its activation line was written: its exit says so, not an EPIPE.
    proc.stdin?.on('error', () => {});
    this.#forward(proc.stdout, this.#stdout, spec.name);
    this.#forward(proc.stderr, this.#stderr, spec.name);
    proc.once('exit', (code, signal) => {
      if (child.spare === proc) this.#onSpareExit(child, code, signal);
      else this.#onExit(child, proc, code, signal);
    });
    proc.on('error', (err) => {
      if (proc.pid !== undefined) return;
      if (child.spare === proc) this.#onSpareExit(child, null, null, err.message);
      else this.#onExit(child, proc, null, null, `cannot start '${spec.command}': ${err.message}`);
    });
    return proc;
  }

  /** `k of N` when this start is one of an armed crash loop's (and counts it), else undefined. */
  #takeCrashStart(child: Child): string | undefined {
    const { left, armed } = child.crashloop;
    if (left <= 0 || !child.spec.crashAtStartEnv) return undefined;
    child.crashloop = { left: left - 1, armed };
    return `${armed - left + 1} of ${armed}`;
  }

  /** The environment every process of the child starts with, spare or not. */
  #baseEnv(child: Child): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, ...child.spec.env };
    // Never inherited: a child without a held socket must not take fd 3 for one, and only the
    // supervisor decides which process is a spare and which start crashes.
    if (this.#sockets.has(child.spec.name)) env[LISTEN_FD_ENV] = String(LISTEN_FD);
    else delete env[LISTEN_FD_ENV];
    delete env[WARM_SPARE_ENV];
    delete env[SUPERVISED_INSTANCE_ENV];
    if (child.spec.crashAtStartEnv) delete env[child.spec.crashAtStartEnv];
    return env;
  }

  /** What belongs to one incarnation: its identity token, and the crash-at-start of an armed start. */
  #incarnationEnv(child: Child, crashing: string | undefined): Record<string, string> {
    const crashVar = child.spec.crashAtStartEnv;
    return {
      [SUPERVISED_INSTANCE_ENV]: child.identity.token,
      ...(crashVar && crashing ? { [crashVar]: crashing } : {}),
    };
  }

  /** Starts the child's spare SPARE_DELAY_MS after it is ready, when its spec asks for one. */
  #scheduleSpare(child: Child): void {
    if (!child.spec.spare || child.spare) return;
    if (child.spareTimer) clearTimeout(child.spareTimer);
    child.spareTimer = setTimeout(() => {
      child.spareTimer = null;
      if (this.#phase === 'running' && child.state === 'up') this.#startSpare(child);
    }, SPARE_DELAY_MS);
  }

  #startSpare(child: Child): void {
    if (!child.spec.spare || child.spare) return;
    const spare = this.#launch(child, { ...this.#baseEnv(child), [WARM_SPARE_ENV]: '1' }, 'spare');
    child.spare = spare;
    const nice = this.#spareNiceOf(child);
    this.#log(`${child.spec.name} spare booting pid=${spare.pid ?? '-'}${nice ? ` at nice ${nice}` : ''}`);
  }

  /** The nice value the child's spare boots at here: its spec's, or 0 where spares cannot be raised again. */
  #spareNiceOf(child: Child): number {
    return this.#spareNice ? (child.spec.spareNice ?? DEFAULT_SPARE_NICE) : 0;
  }

  /**
   * The child's spare if one is alive, raised to this supervisor's priority (it leaves the spare slot
   * either way). One that cannot be raised is killed: it would serve at its boot priority.
   */
  #takeSpare(child: Child): ChildProcess | undefined {
    const spare = child.spare;
    child.spare = null;
    if (!spare || !isRunning(spare)) return undefined;
    if (this.#spareNiceOf(child) > 0 && !raisePriority(spare.pid, getPriority())) {
      this.#log(
        `${child.spec.name} spare pid=${spare.pid} could not be raised from its boot priority: starting anew`,
      );
      signalProcessGroup(spare.pid, 'SIGKILL');
      return undefined;
    }
    return spare;
  }

  /** A spare that ended before its activation: the next restart spawns, and the next ready starts a new one. */
  #onSpareExit(child: Child, code: number | null, signal: string | null, message?: string): void {
    const pid = child.spare?.pid ?? '-';
    child.spare = null;
    if (this.#phase !== 'running') return;
    this.#log(
      `${child.spec.name} spare pid=${pid} ended before it was needed (code=${code} signal=${signal}${message ? ` ${message}` : ''})`,
    );
  }

  /** Ends the child's spare, if any (the supervisor is stopping). */
  async #dropSpare(child: Child): Promise<void> {
    if (child.spareTimer) clearTimeout(child.spareTimer);
    child.spareTimer = null;
    const spare = child.spare;
    child.spare = null;
    if (!spare || !isRunning(spare)) return;
    const exited = new Promise<void>((resolve) => spare.once('exit', () => resolve()));
    signalProcessGroup(spare.pid, 'SIGKILL');
    await exited;
  }

  #forward(stream: NodeJS.ReadableStream | null, out: NodeJS.WritableStream, name: string): void {
    if (!stream) return;
    createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) =>
      out.write(`${name} | ${line}\n`),
    );
  }

  #markReady(child: Child): void {
    const now = Date.now();
    child.state = 'up';
    child.readyAt = now;
    this.#metrics.up.set({ service: child.spec.name }, 1);
    let recoveryMs: number | undefined;
    if (child.faultAt !== null) {
      recoveryMs = now - child.faultAt;
      this.#metrics.recovery.observe(recoveryMs / 1000);
      child.faultAt = null;
    }
    this.#emit(child, 'ready', recoveryMs !== undefined ? { recoveryMs } : {});
    this.#scheduleSpare(child);
    this.#reconcile();
  }

  /**
   * One health check that waits up to waitMs for its answer, and at least the child's health timeout
   * (else the heartbeat's). 'unknown' when the check cannot be made (NATS down or just back): it neither
   * passes nor misses.
   */
  async #check(child: Child, waitMs: number): Promise<'ok' | 'fail' | 'unknown'> {
    const { health } = child.spec;
    const { natsGraceMs } = this.spec.heartbeat;
    const timeoutMs = Math.max(waitMs, health.timeoutMs ?? this.spec.heartbeat.timeoutMs);
    switch (health.kind) {
      case 'http':
        return (await this.#httpChecks.check(health.url, timeoutMs)) ? 'ok' : 'fail';
      case 'tcp':
        return (await checkTcp(health.host, health.port, timeoutMs)) ? 'ok' : 'fail';
      case 'nats-ping': {
        const nc = this.#nats?.connection;
        if (!nc) return 'unknown';
        const since = this.#nats?.connectedSince ?? 0;
        const ok = (await pingNatsService(nc, health.service, child.identity, timeoutMs)) !== null;
        if (ok) return 'ok';
        // A child that was ready before NATS came back reconnects at its own pace: give it a grace period.
        const reconnecting = (child.readyAt ?? 0) < since && Date.now() - since < natsGraceMs;
        return reconnecting ? 'unknown' : 'fail';
      }
      default:
        return 'ok';
    }
  }

  /**
   * Readiness, then heartbeat, for one process; ends when the process does. A ready child is hung when
   * it has answered no check for its hang window (misses × intervalMs): each check waits for its answer
   * until the window closes, so a child that answers late, behind its own backlog (a server whose health
   * check shares an event loop or a NATS connection with its work), is overloaded, not hung, and a
   * SIGKILL would only add a restart to the overload. A child silent for the window that used CPU over
   * it (BUSY_CPU_SHARE of a core) is busy, not stopped or blocked: a backlog longer than the window,
   * which a cold server meets on a starved machine, or a loop that spins. It gets its busy window
   * (busyMisses × intervalMs) while it keeps using CPU. A check that could not be made (NATS away)
   * restarts the window: silence counts only while it can be heard.
   */
  async #watch(child: Child, proc: ChildProcess): Promise<void> {
    const watch = new AbortController();
    child.watch = watch;
    const { intervalMs, misses, busyMisses, startTimeoutMs } = this.spec.heartbeat;
    const windowMs = misses * intervalMs;
    const busyWindowMs = busyMisses * intervalMs;
    let failingMs = 0;
    let lastAt = Date.now();
    let heardAt = lastAt;
    let cpu: CpuSample | undefined;
    let busy = false;
    while (!watch.signal.aborted && child.proc === proc) {
      const began = Date.now();
      const starting = child.state === 'starting';
      const closesAt = heardAt + (busy ? busyWindowMs : windowMs);
      const result = await this.#check(child, starting ? 0 : Math.min(windowMs, closesAt - began));
      if (watch.signal.aborted || child.proc !== proc) return;
      const now = Date.now();
      if (child.state === 'starting') {
        if (result === 'ok') {
          this.#markReady(child);
          cpu = this.#cpuSample(proc);
        } else if (result === 'fail') failingMs += now - lastAt;
        if (failingMs >= startTimeoutMs) {
          this.#hung(child, `not ready within ${startTimeoutMs} ms`);
          return;
        }
        heardAt = now;
      } else if (child.state === 'up') {
        const silentMs = now - heardAt;
        if (result !== 'fail') {
          heardAt = now;
          busy = false;
          cpu = this.#cpuSample(proc);
        } else if (silentMs >= windowMs) {
          const before = cpu;
          cpu = this.#cpuSample(proc);
          // CPU used since the child was last heard (or, while busy, since the window before), as a
          // share of one core; unknown without /proc.
          const share = cpu && before ? (cpu.ms - before.ms) / Math.max(1, cpu.at - before.at) : undefined;
          const wasBusy = busy;
          busy = share !== undefined && share >= BUSY_CPU_SHARE;
          const used = share === undefined ? 'CPU use unknown' : `${Math.round(share * 100)}% of a core`;
          if (busy && !wasBusy && silentMs < busyWindowMs) {
            this.#emit(child, 'busy', {
              message: `no health check answered for ${silentMs} ms while busy (${used}): waiting up to ${busyWindowMs} ms`,
            });
          }
          if (!busy || silentMs >= busyWindowMs) {
            this.#hung(
              child,
              `no health check answered for ${silentMs} ms${busy ? ' while busy' : ''} (${used})`,
            );
            return;
          }
        }
      }
      lastAt = now;
      const period = child.state === 'starting' ? READINESS_POLL_MS : intervalMs;
      try {
        await sleep(Math.max(0, period - (Date.now() - began)), undefined, { signal: watch.signal });
      } catch {
        return;
      }
    }
  }

  /** The process's CPU time now, or undefined where /proc cannot say (not Linux, or gone). */
  #cpuSample(proc: ChildProcess): CpuSample | undefined {
    const stat = proc.pid === undefined ? null : readProcStat(proc.pid);
    return stat ? { ms: (stat.cpuTicks * 1000) / PROC_TICKS_PER_SECOND, at: Date.now() } : undefined;
  }

  #hung(child: Child, message: string): void {
    child.state = 'hung';
    child.faultAt = Date.now();
    child.stopIntent = 'hung';
    this.#metrics.up.set({ service: child.spec.name }, 0);
    this.#emit(child, 'hung', { reason: 'hung', message });
    this.#signal(child, 'SIGKILL');
  }

  #signal(child: Child, signal: NodeJS.Signals): void {
    if (child.pid !== null) signalProcessGroup(child.pid, signal);
  }

  #onExit(
    child: Child,
    proc: ChildProcess,
    code: number | null,
    signal: string | null,
    message?: string,
  ): void {
    if (child.proc !== proc) return;
    child.proc = null;
    child.watch?.abort();
    child.watch = null;
    this.#metrics.up.set({ service: child.spec.name }, 0);
    const intent = child.stopIntent;
    child.stopIntent = null;
    const reason: ExitReason = intent ?? (code === 0 ? 'exited' : 'crashed');
    child.lastExit = { code, signal, reason, time: new Date().toISOString() };
    this.#emit(child, 'exited', { reason, code, signal, ...(message ? { message } : {}) });
    child.pid = null;
    if (reason === 'shutdown' || this.#phase !== 'running') {
      if (child.state !== 'restarting') child.state = 'stopped';
      this.#reconcile();
      return;
    }
    if (reason === 'exited' ? child.spec.restart !== 'permanent' : child.spec.restart === 'temporary') {
      child.wanted = false;
      child.state = reason === 'exited' ? 'stopped' : 'failed';
      this.#reconcile();
      return;
    }
    this.#onFault(child, reason);
  }

  #onFault(child: Child, reason: 'crashed' | 'exited' | 'hung'): void {
    const now = Date.now();
    child.faultAt ??= now;
    const { maxRestarts, periodMs } = this.spec.intensity;
    this.#restartTimes = this.#restartTimes.filter((t) => now - t < periodMs);
    this.#restartTimes.push(now);
    if (this.#restartTimes.length > maxRestarts) {
      child.state = 'failed';
      child.wanted = false;
      this.#phase = 'gave_up';
      this.#emit(child, 'gave_up', {
        reason,
        message: `more than ${maxRestarts} restarts within ${periodMs} ms; stopping every child and giving up`,
      });
      void this.#shutdown('gave_up');
      return;
    }
    if (child.readyAt !== null && now - child.readyAt >= this.spec.backoff.resetAfterMs)
      child.consecutive = 0;
    const delayMs = backoffDelayMs(child.consecutive, this.spec.backoff, this.#random);
    child.consecutive += 1;
    const set = this.#planRestart(child, reason, delayMs);
    void this.#stopBatch(set.filter((c) => c !== child));
  }

  /** The child and, under rest_for_one, every running or wanted child after it. */
  #restartSet(child: Child): Child[] {
    if (this.spec.strategy === 'one_for_one') return [child];
    return this.#children.filter((c) => c === child || (c.index > child.index && (c.proc || c.wanted)));
  }

  /** Marks the restart set of `child` for restarting (counted, announced) and returns it. */
  #planRestart(child: Child, reason: RestartReason, delayMs: number): Child[] {
    const set = this.#restartSet(child);
    for (const c of set) {
      const own = c === child;
      c.wanted = true;
      c.restarts += 1;
      c.state = 'restarting';
      c.notBefore = Date.now() + (own ? delayMs : 0);
      if (c.restartTimer) clearTimeout(c.restartTimer);
      c.restartTimer = null;
      if (own && delayMs > 0) {
        // The timer, not a clock comparison, ends the wait: timers may fire a millisecond before Date.now() agrees.
        c.restartTimer = setTimeout(() => {
          c.restartTimer = null;
          c.notBefore = 0;
          this.#reconcile();
        }, delayMs);
      }
      const why: RestartReason = own ? reason : 'sibling';
      this.#metrics.restarts.inc({ service: c.spec.name, reason: why });
      this.#emit(c, 'restarting', { reason: why, delayMs: own ? delayMs : 0 });
    }
    return set;
  }

  /** Stops children in reverse order; nothing is (re)started until every pending batch is done. */
  #stopBatch(children: Child[]): Promise<void> {
    this.#batches += 1;
    const run = async () => {
      for (const c of [...children].reverse()) await this.#stopChild(c);
    };
    this.#batchChain = this.#batchChain
      .then(run)
      .catch((err: unknown) => this.#log(`stopping children failed: ${String(err)}`))
      .finally(() => {
        this.#batches -= 1;
        this.#reconcile();
      });
    return this.#batchChain;
  }

  async #stopChild(child: Child): Promise<void> {
    const proc = child.proc;
    if (!proc) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    if (child.stopIntent === null) child.stopIntent = 'shutdown';
    this.#signal(child, 'SIGTERM');
    // A stopped process holds SIGTERM until it runs again.
    this.#signal(child, 'SIGCONT');
    const timeout = new AbortController();
    const timedOut = await Promise.race([
      exited.then(() => false),
      sleep(child.spec.shutdownMs, true, { signal: timeout.signal }).catch(() => false),
    ]);
    timeout.abort();
    if (timedOut && child.proc === proc) {
      this.#log(`${child.spec.name} did not stop within ${child.spec.shutdownMs} ms of SIGTERM: SIGKILL`);
      this.#signal(child, 'SIGKILL');
      await exited;
    }
  }

  #closeSockets(): void {
    for (const socket of this.#sockets.values()) socket.close();
    this.#sockets.clear();
  }

  async #shutdown(outcome: SupervisorOutcome): Promise<void> {
    for (const child of this.#children) {
      if (child.restartTimer) clearTimeout(child.restartTimer);
      child.restartTimer = null;
    }
    await Promise.all(this.#children.map((c) => this.#dropSpare(c)));
    await this.#batchChain;
    for (const child of [...this.#children].reverse()) await this.#stopChild(child);
    for (const child of this.#children) if (child.state !== 'failed') child.state = 'stopped';
    this.#closeSockets();
    this.#httpChecks.close();
    await this.#nats?.close();
    await this.#metricsServer?.close();
    if (this.#phase === 'stopping') this.#phase = 'stopped';
    this.#allReady.reject(
      new Error(`supervisor '${this.id}' ${outcome === 'gave_up' ? 'gave up' : 'stopped'}`),
    );
    this.#resolveDone(outcome);
  }
}
