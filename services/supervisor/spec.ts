/**
 * The supervisor's specification: what to run and how to keep it running. Plain data, so a spec can
 * live in a JSON file (`main.ts --spec FILE`) or be built in code. `parseSupervisorSpec` validates
 * untrusted input and names the first bad field.
 */

import { isIP } from 'node:net';
import { ProcessError, ProcessErrorCode } from '../contract/errors.ts';
import { DEFAULT_SPARE_NICE } from './spare-priority.ts';

export const RESTART_TYPES = ['permanent', 'transient', 'temporary'] as const;
/** OTP semantics: permanent always restarts, transient only after an abnormal exit, temporary never. */
export type RestartType = (typeof RESTART_TYPES)[number];

export const STRATEGIES = ['one_for_one', 'rest_for_one'] as const;
export type Strategy = (typeof STRATEGIES)[number];

export type HealthCheck =
  /** A `$SRV.PING.<service>` request through NATS; the answer must come from this child. */
  (
    | { kind: 'nats-ping'; service: string }
    /** A GET that must answer 200. */
    | { kind: 'http'; url: string }
    /** A TCP connect. Note: a SIGSTOPped process still accepts connections, so this cannot see hangs. */
    | { kind: 'tcp'; host: string; port: number }
    | { kind: 'none' }
  ) & {
    /**
     * How long one check of this child waits at least; default the heartbeat's timeoutMs. For a child
     * whose answer takes longer than its hang window even when it is well (at the price of seeing a
     * real hang later).
     */
    timeoutMs?: number;
  };

export type ChildSpec = {
  /** Subject-token safe ([A-Za-z0-9_-]): it appears in subjects, metrics labels and log prefixes. */
  name: string;
  command: string;
  args?: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** Default permanent. */
  restart?: RestartType;
  /** SIGTERM, then SIGKILL after this many ms. Default 5000. */
  shutdownMs?: number;
  /** Default none: the child counts as ready once spawned. */
  health?: HealthCheck;
  /**
   * A TCP address the supervisor binds once, at start, and hands to every incarnation of this child as
   * fd 3 (environment KSTYLES_LISTEN_FD=3; see held-socket.ts): connections that arrive while the
   * child restarts wait in the kernel's queue instead of being refused.
   */
  socket?: SocketSpec;
  /**
   * The environment variable of the child's crash-at-start hook (a chaos hook: the child exits at once
   * when it finds the variable set). The control API's `crashloop` sets it for the next N starts of
   * the child; absent = the child has no such hook and `crashloop` is refused. The supervisor never
   * passes it on from its own environment.
   */
  crashAtStartEnv?: string;
  /**
   * Keep a warm spare of this child (warm-spare.ts): one more process of its command, booted and
   * waiting, which a restart activates instead of spawning. Its command must call awaitActivation()
   * before it starts (the microkernel's servers do). Default false.
   */
  spare?: boolean;
  /**
   * The nice value (0-19) the spare boots at, raised to the supervisor's own when a restart activates
   * it, where the supervisor may raise priorities (spare-priority.ts). Default 19.
   */
  spareNice?: number;
};

export type SocketSpec = {
  /** An IP literal (127.0.0.1, 0.0.0.0, ::). */
  host: string;
  port: number;
};

export type IntensitySpec = {
  /** More than maxRestarts restarts within periodMs and the supervisor gives up. */
  maxRestarts: number;
  periodMs: number;
};

export type BackoffSpec = {
  /** The first restart is immediate; the second waits initialMs, then ×factor each time up to maxMs. */
  initialMs: number;
  maxMs: number;
  factor: number;
  /** Relative jitter: the delay is scaled by a random factor in [1 - jitter, 1 + jitter]. */
  jitter: number;
  /** A child that stayed ready this long starts again from an immediate restart. */
  resetAfterMs: number;
};

export type HeartbeatSpec = {
  /** How often a ready child is checked. */
  intervalMs: number;
  /** How long a check waits at least (a starting child's checks, and the last one of a window). */
  timeoutMs: number;
  /**
   * A ready child that answers no check for misses × intervalMs (its hang window) is declared hung and
   * SIGKILLed. A check waits for its answer until the window closes, so a late answer is not a miss.
   */
  misses: number;
  /**
   * A silent child that used CPU over its hang window (at least a tenth of a core: overloaded, still
   * cold, or spinning) is busy, not stopped or blocked: it is hung only once it has answered no check
   * for busyMisses × intervalMs (its busy window), or once it stops using CPU. Default 3 × misses.
   */
  busyMisses: number;
  /** A starting child whose check keeps failing this long is treated as hung. */
  startTimeoutMs: number;
  /** After the supervisor's NATS connection (re)connects, NATS checks do not count as misses this long. */
  natsGraceMs: number;
};

export type NatsSpec = {
  servers: string | string[];
  /** An nkey user seed (`SU…`); or user and password. */
  seed?: string;
  user?: string;
  pass?: string;
  /** Default 250 ms, so a nats-server started as a child is found quickly. */
  reconnectTimeWaitMs?: number;
};

export type SupervisorSpec = {
  /** Subject-token safe: the control API and events live under kstyles.sup.*.<id>. */
  id: string;
  strategy?: Strategy;
  intensity?: Partial<IntensitySpec>;
  backoff?: Partial<BackoffSpec>;
  heartbeat?: Partial<HeartbeatSpec>;
  nats?: NatsSpec;
  /** Serve Prometheus metrics on <metricsHost>:<port>/metrics (0 = any free port). Absent = no server. */
  metricsPort?: number;
  /**
   * The IP address the metrics server listens on. Default 127.0.0.1; 0.0.0.0 (or ::) when a scraper
   * outside the host or container must reach it.
   */
  metricsHost?: string;
  /** Extra facts for the runtime-state file (e.g. HTTP URLs of the children). */
  info?: Record<string, unknown>;
  /** Start order = list order = dependency order. */
  children: ChildSpec[];
};

/** The busy window's default length, in hang windows. */
const BUSY_MISSES_PER_MISS = 3;

export const DEFAULTS = {
  strategy: 'one_for_one',
  restart: 'permanent',
  shutdownMs: 5000,
  intensity: { maxRestarts: 5, periodMs: 10_000 },
  backoff: { initialMs: 100, maxMs: 5000, factor: 2, jitter: 0.2, resetAfterMs: 10_000 },
  heartbeat: { intervalMs: 500, timeoutMs: 250, misses: 3, startTimeoutMs: 15_000, natsGraceMs: 5000 },
  reconnectTimeWaitMs: 250,
  metricsHost: '127.0.0.1',
} as const;

export type ResolvedChildSpec = Required<Omit<ChildSpec, 'cwd' | 'socket' | 'crashAtStartEnv'>> & {
  cwd?: string;
  socket?: SocketSpec;
  crashAtStartEnv?: string;
};

export type ResolvedSupervisorSpec = {
  id: string;
  strategy: Strategy;
  intensity: IntensitySpec;
  backoff: BackoffSpec;
  heartbeat: HeartbeatSpec;
  nats?: NatsSpec;
  metricsPort?: number;
  metricsHost: string;
  info: Record<string, unknown>;
  children: ResolvedChildSpec[];
};

/** A spec that cannot run; the message names the field. */
export class SpecError extends ProcessError {
  override readonly name = 'SpecError';
  readonly code = ProcessErrorCode.SPEC_INVALID;
}

const TOKEN = /^[A-Za-z0-9_-]+$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function fail(field: string, problem: string): never {
  throw new SpecError(`invalid supervisor spec: ${field} ${problem}`);
}

function optionalObject(obj: Json, key: string, field: string): Json {
  const value = obj[key];
  if (value === undefined) return {};
  if (!isObject(value)) fail(field, `must be an object, got ${JSON.stringify(value)}`);
  return value;
}

function str(obj: Json, key: string, field: string, opts: { token?: boolean } = {}): string {
  const value = obj[key];
  if (typeof value !== 'string' || value === '')
    fail(field, `must be a non-empty string, got ${JSON.stringify(value)}`);
  if (opts.token && !TOKEN.test(value))
    fail(field, `must use only letters, digits, '_' and '-', got '${value}'`);
  return value;
}

function num(
  obj: Json,
  key: string,
  field: string,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
) {
  const value = obj[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    fail(field, `must be a number from ${min} to ${max}, got ${JSON.stringify(obj[key])}`);
  }
  return value;
}

/** An IP literal to listen on: a host name could resolve to an address this machine does not have. */
function listenAddress(obj: Json, key: string, field: string, fallback: string): string {
  const value = obj[key] ?? fallback;
  if (typeof value !== 'string' || isIP(value) === 0) {
    fail(
      field,
      `must be an IP address to listen on (127.0.0.1, 0.0.0.0, ::), got ${JSON.stringify(obj[key])}`,
    );
  }
  return value;
}

function oneOf<T extends string>(
  obj: Json,
  key: string,
  field: string,
  choices: readonly T[],
  fallback: T,
): T {
  const value = obj[key] ?? fallback;
  if (!choices.includes(value as T)) {
    fail(field, `must be one of ${choices.join(', ')}, got ${JSON.stringify(obj[key])}`);
  }
  return value as T;
}

/** A check slower than a minute is no heartbeat. */
const MAX_HEALTH_TIMEOUT_MS = 60_000;

function parseHealth(raw: unknown, field: string, hasNats: boolean): HealthCheck {
  if (raw === undefined) return { kind: 'none' };
  if (!isObject(raw)) fail(field, `must be an object, got ${JSON.stringify(raw)}`);
  const kind = oneOf(raw, 'kind', `${field}.kind`, ['nats-ping', 'http', 'tcp', 'none'] as const, 'none');
  if (kind === 'none') return { kind };
  const timeout =
    raw['timeoutMs'] === undefined
      ? {}
      : { timeoutMs: num(raw, 'timeoutMs', `${field}.timeoutMs`, -1, 1, MAX_HEALTH_TIMEOUT_MS) };
  switch (kind) {
    case 'nats-ping':
      if (!hasNats) fail(field, "is a nats-ping check, but the spec has no 'nats' connection options");
      return { kind, service: str(raw, 'service', `${field}.service`, { token: true }), ...timeout };
    case 'http': {
      const url = str(raw, 'url', `${field}.url`);
      if (!/^https?:\/\//.test(url)) fail(`${field}.url`, `must be an http:// or https:// URL, got '${url}'`);
      return { kind, url, ...timeout };
    }
    case 'tcp':
      return {
        kind,
        host: str(raw, 'host', `${field}.host`),
        port: num(raw, 'port', `${field}.port`, -1, 1, 65535),
        ...timeout,
      };
  }
}

function parseChild(raw: unknown, field: string, hasNats: boolean): ResolvedChildSpec {
  if (!isObject(raw)) fail(field, `must be an object, got ${JSON.stringify(raw)}`);
  const args = raw['args'] ?? [];
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string'))
    fail(`${field}.args`, 'must be an array of strings');
  const env = raw['env'] ?? {};
  if (!isObject(env) || !Object.values(env).every((v) => typeof v === 'string')) {
    fail(`${field}.env`, 'must be an object of string values');
  }
  const cwd = raw['cwd'];
  if (cwd !== undefined && (typeof cwd !== 'string' || cwd === ''))
    fail(`${field}.cwd`, 'must be a non-empty string');
  const socket = raw['socket'] === undefined ? undefined : parseSocket(raw['socket'], `${field}.socket`);
  const crashAtStartEnv = raw['crashAtStartEnv'];
  if (
    crashAtStartEnv !== undefined &&
    (typeof crashAtStartEnv !== 'string' || !ENV_NAME.test(crashAtStartEnv))
  ) {
    fail(
      `${field}.crashAtStartEnv`,
      `must be an environment variable name (letters, digits and '_', not starting with a digit), got ${JSON.stringify(crashAtStartEnv)}`,
    );
  }
  const spare = raw['spare'] ?? false;
  if (typeof spare !== 'boolean')
    fail(`${field}.spare`, `must be true or false, got ${JSON.stringify(spare)}`);
  const spareNice = raw['spareNice'] ?? DEFAULT_SPARE_NICE;
  if (!(Number.isInteger(spareNice) && (spareNice as number) >= 0 && (spareNice as number) <= 19))
    fail(`${field}.spareNice`, `must be a whole number from 0 to 19, got ${JSON.stringify(spareNice)}`);
  return {
    name: str(raw, 'name', `${field}.name`, { token: true }),
    command: str(raw, 'command', `${field}.command`),
    args: args as string[],
    env: env as Record<string, string>,
    ...(cwd !== undefined ? { cwd: cwd as string } : {}),
    restart: oneOf(raw, 'restart', `${field}.restart`, RESTART_TYPES, DEFAULTS.restart),
    shutdownMs: num(raw, 'shutdownMs', `${field}.shutdownMs`, DEFAULTS.shutdownMs, 0),
    health: parseHealth(raw['health'], `${field}.health`, hasNats),
    spare,
    spareNice: spareNice as number,
    ...(socket ? { socket } : {}),
    ...(crashAtStartEnv !== undefined ? { crashAtStartEnv: crashAtStartEnv as string } : {}),
  };
}

function parseSocket(raw: unknown, field: string): SocketSpec {
  if (!isObject(raw)) fail(field, `must be an object {host, port}, got ${JSON.stringify(raw)}`);
  return {
    host: listenAddress(raw, 'host', `${field}.host`, ''),
    // A fixed port: the child's health check and its clients must know where it is before it starts.
    port: num(raw, 'port', `${field}.port`, -1, 1, 65535),
  };
}

const NATS_STRING_KEYS = ['seed', 'user', 'pass'] as const;

function parseNats(raw: unknown): NatsSpec | undefined {
  if (raw === undefined) return undefined;
  if (!isObject(raw)) fail('nats', `must be an object, got ${JSON.stringify(raw)}`);
  const servers = raw['servers'];
  const list = Array.isArray(servers) ? servers : [servers];
  if (list.length === 0 || !list.every((s) => typeof s === 'string' && s !== '')) {
    fail('nats.servers', `must be a URL or a non-empty array of URLs, got ${JSON.stringify(servers)}`);
  }
  const strings: Partial<Record<(typeof NATS_STRING_KEYS)[number], string>> = {};
  for (const key of NATS_STRING_KEYS) {
    if (raw[key] === undefined) continue;
    if (typeof raw[key] !== 'string') fail(`nats.${key}`, 'must be a string');
    strings[key] = raw[key];
  }
  return {
    servers: servers as string | string[],
    ...strings,
    reconnectTimeWaitMs: num(
      raw,
      'reconnectTimeWaitMs',
      'nats.reconnectTimeWaitMs',
      DEFAULTS.reconnectTimeWaitMs,
      1,
    ),
  };
}

/** Validates a spec (e.g. parsed JSON) and fills in the defaults. Throws SpecError naming the bad field. */
export function parseSupervisorSpec(raw: unknown): ResolvedSupervisorSpec {
  if (!isObject(raw)) fail('(top level)', `must be an object, got ${JSON.stringify(raw)}`);
  const nats = parseNats(raw['nats']);
  const intensity = optionalObject(raw, 'intensity', 'intensity');
  const backoff = optionalObject(raw, 'backoff', 'backoff');
  const heartbeat = optionalObject(raw, 'heartbeat', 'heartbeat');
  const children = raw['children'];
  if (!Array.isArray(children) || children.length === 0)
    fail('children', 'must be a non-empty array of child specs');
  const parsedChildren = children.map((c, i) => parseChild(c, `children[${i}]`, nats !== undefined));
  const seen = new Set<string>();
  parsedChildren.forEach((c, i) => {
    if (seen.has(c.name))
      fail(`children[${i}].name`, `'${c.name}' is used twice; child names must be unique`);
    seen.add(c.name);
  });
  const D = DEFAULTS;
  const misses = num(heartbeat, 'misses', 'heartbeat.misses', D.heartbeat.misses, 1);
  const hb = {
    intervalMs: num(heartbeat, 'intervalMs', 'heartbeat.intervalMs', D.heartbeat.intervalMs, 10),
    timeoutMs: num(heartbeat, 'timeoutMs', 'heartbeat.timeoutMs', D.heartbeat.timeoutMs, 1),
    misses,
    busyMisses: num(heartbeat, 'busyMisses', 'heartbeat.busyMisses', BUSY_MISSES_PER_MISS * misses, misses),
    startTimeoutMs: num(
      heartbeat,
      'startTimeoutMs',
      'heartbeat.startTimeoutMs',
      D.heartbeat.startTimeoutMs,
      1,
    ),
    natsGraceMs: num(heartbeat, 'natsGraceMs', 'heartbeat.natsGraceMs', D.heartbeat.natsGraceMs, 0),
  };
  if (hb.timeoutMs >= hb.intervalMs)
    fail('heartbeat.timeoutMs', `must be below heartbeat.intervalMs (${hb.intervalMs})`);
  const info = raw['info'] ?? {};
  if (!isObject(info)) fail('info', 'must be an object');
  return {
    id: str(raw, 'id', 'id', { token: true }),
    strategy: oneOf(raw, 'strategy', 'strategy', STRATEGIES, DEFAULTS.strategy),
    intensity: {
      maxRestarts: num(intensity, 'maxRestarts', 'intensity.maxRestarts', D.intensity.maxRestarts, 0),
      periodMs: num(intensity, 'periodMs', 'intensity.periodMs', D.intensity.periodMs, 1),
    },
    backoff: {
      initialMs: num(backoff, 'initialMs', 'backoff.initialMs', D.backoff.initialMs, 0),
      maxMs: num(backoff, 'maxMs', 'backoff.maxMs', D.backoff.maxMs, 0),
      factor: num(backoff, 'factor', 'backoff.factor', D.backoff.factor, 1),
      jitter: num(backoff, 'jitter', 'backoff.jitter', D.backoff.jitter, 0, 1),
      resetAfterMs: num(backoff, 'resetAfterMs', 'backoff.resetAfterMs', D.backoff.resetAfterMs, 0),
    },
    heartbeat: hb,
    ...(nats ? { nats } : {}),
    ...(raw['metricsPort'] !== undefined
      ? { metricsPort: num(raw, 'metricsPort', 'metricsPort', 0, 0, 65535) }
      : {}),
    metricsHost: listenAddress(raw, 'metricsHost', 'metricsHost', DEFAULTS.metricsHost),
    info,
    children: parsedChildren,
  };
}
