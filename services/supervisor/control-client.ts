import type { NatsConnection } from '@nats-io/nats-core';
import { ServiceError } from '@nats-io/services';
import { type ControlStatus, ProcessError, ProcessErrorCode } from '../contract/errors.ts';
import { connectNats, inboxPrefixOf } from '../ipc/connect.ts';
import { ControlError } from './control-error.ts';
import { type RuntimeState, readRuntimeState } from './runtime-state.ts';
import { type ControlOp, SUPERVISOR_SUBJECTS } from './subjects.ts';
import type { SupervisorEvent, SupervisorStatus } from './supervisor.ts';

/** No supervisor with that id answered: it is not running, or not on this NATS. */
export class SupervisorUnavailableError extends ProcessError {
  override readonly name = 'SupervisorUnavailableError';
  readonly code = ProcessErrorCode.SUPERVISOR_UNAVAILABLE;
}

/** The supervisor answered with an error (unknown service, bad request, ...): its ControlError, rebuilt. */
export class SupervisorControlError extends ControlError {
  override readonly name = 'SupervisorControlError';
}

export type ControlClientOptions = {
  servers: string | string[];
  /** The supervisor's nkey user seed (`SU…`), as its runtime state holds it. */
  seed?: string;
  user?: string;
  pass?: string;
  /** Per request, and for the first connection. Default 2000 ms. */
  timeoutMs?: number;
  /**
   * The NATS role these credentials belong to: replies arrive on its inbox prefix, the only one the
   * server lets it read (services/microkernel/nats-config.ts). Default `supervisor`.
   */
  role?: string;
};

/** `scheme://user:pass@rest` or `user:pass@rest`: the user-info part of a NATS server URL. */
const URL_CREDENTIALS = /^((?:[a-z][a-z0-9+.-]*:\/\/)?)([^@/]*):([^@/]*)@(.*)$/i;

/**
 * The servers without `user:pass@` (the NATS client refuses credentials in a URL) and the first
 * credentials found in them, percent-decoded. A comma-separated string is a list of servers.
 */
export function splitServerCredentials(servers: string | string[]): {
  servers: string[];
  user?: string;
  pass?: string;
} {
  const list = [servers].flat().flatMap((s) =>
    s
      .split(',')
      .map((one) => one.trim())
      .filter(Boolean),
  );
  let credentials: { user: string; pass: string } | undefined;
  const stripped = list.map((server) => {
    const match = URL_CREDENTIALS.exec(server);
    if (!match) return server;
    const [, scheme, user, pass, rest] = match as unknown as [string, string, string, string, string];
    try {
      credentials ??= { user: decodeURIComponent(user), pass: decodeURIComponent(pass) };
    } catch {
      throw new SupervisorUnavailableError(
        `the user or password in NATS server URL ${scheme}${rest} is not valid percent-encoding: encode '%' as %25`,
      );
    }
    return `${scheme}${rest}`;
  });
  return { servers: stripped, ...credentials };
}

/** How to reach the control API of a supervisor found in the runtime-state files; undefined without NATS. */
export function clientOptionsFromState(state: RuntimeState): ControlClientOptions | undefined {
  return state.nats ? { ...state.nats } : undefined;
}

/**
 * Where a deployment keeps the supervisor role's nkey seed (deploy/.env, a Kubernetes Secret): the
 * microkernel's NATS_KEY_ENV.seed('supervisor'), for a client on a machine without the runtime state.
 */
export const SUPERVISOR_SEED_ENV = 'KSTYLES_NATS_SUPERVISOR_SEED';

/**
 * How to reach supervisor `id`'s control API from here: the servers and credentials of its runtime-state
 * file (`natsUrl` overriding the servers); without a file, `natsUrl` with the seed in SUPERVISOR_SEED_ENV.
 * Undefined when neither says where NATS is.
 */
export function controlClientOptionsFor(
  id: string,
  where: { natsUrl?: string; stateDir?: string; env?: NodeJS.ProcessEnv },
): ControlClientOptions | undefined {
  const state = readRuntimeState(id, where.stateDir);
  const fromState = state ? clientOptionsFromState(state) : undefined;
  const servers = where.natsUrl?.split(',') ?? fromState?.servers;
  if (!servers || servers.length === 0) return undefined;
  if (fromState) return { ...fromState, servers };
  const seed = (where.env ?? process.env)[SUPERVISOR_SEED_ENV];
  return { servers, ...(seed ? { seed } : {}) };
}

/** Talks to supervisors' control API (kstyles.sup.ctl.<id>.*) over NATS request/reply. */
export class SupervisorControlClient {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs: number,
  ) {}

  /**
   * Connects to NATS; a NATS that cannot be reached is an error naming the servers (without passwords).
   * A server URL may carry `user:pass@`; `user`/`pass` given as options win over it.
   */
  static async connect(options: ControlClientOptions): Promise<SupervisorControlClient> {
    const { timeoutMs = 2000 } = options;
    const fromUrl = splitServerCredentials(options.servers);
    const servers = fromUrl.servers;
    const user = options.user ?? fromUrl.user;
    const pass = options.pass ?? fromUrl.pass;
    try {
      const nc = await connectNats({
        servers,
        ...(options.seed !== undefined ? { seed: options.seed } : {}),
        ...(user !== undefined ? { user } : {}),
        ...(pass !== undefined ? { pass } : {}),
        // Its callers hold a role's credentials (the supervisor's, or the console's), which may
        // subscribe to that role's inbox only.
        inboxPrefix: inboxPrefixOf(options.role ?? 'supervisor'),
        name: 'kstyles-supervisor-control',
        firstConnectTimeoutMs: timeoutMs,
        connectTimeoutMs: timeoutMs,
      });
      return new SupervisorControlClient(nc, timeoutMs);
    } catch (err) {
      throw new SupervisorUnavailableError(
        `cannot reach NATS at ${servers.join(', ')}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }

  status(supervisorId: string): Promise<SupervisorStatus> {
    return this.#request(supervisorId, 'status', {}) as Promise<SupervisorStatus>;
  }

  /** Sends a signal (default SIGKILL) to one of the supervisor's children. */
  kill(
    supervisorId: string,
    service: string,
    signal?: string,
  ): Promise<{ service: string; pid: number; signal: string }> {
    return this.#request(supervisorId, 'kill', { service, ...(signal ? { signal } : {}) }) as Promise<{
      service: string;
      pid: number;
      signal: string;
    }>;
  }

  restart(supervisorId: string, service: string): Promise<{ service: string; pid: number | null }> {
    return this.#request(supervisorId, 'restart', { service }) as Promise<{
      service: string;
      pid: number | null;
    }>;
  }

  /**
   * Runs a probe the supervisor's owner registered (`nats-isolation` on the microkernel's) and resolves
   * its answer; probes take longer than a control request, hence their own timeout (default 20 s).
   */
  probe(supervisorId: string, name: string, timeoutMs = 20_000): Promise<unknown> {
    return this.#request(supervisorId, 'probe', { name }, timeoutMs);
  }

  /**
   * Makes the next `starts` starts of one of the supervisor's children exit at once and SIGKILLs its
   * running process: a crash loop (the child needs a crash-at-start hook, e.g. the driver with chaos on).
   */
  crashloop(
    supervisorId: string,
    service: string,
    starts: number,
  ): Promise<{ service: string; pid: number | null; starts: number }> {
    return this.#request(supervisorId, 'crashloop', { service, starts }) as Promise<{
      service: string;
      pid: number | null;
      starts: number;
    }>;
  }

  /**
   * Calls `onEvent` with each event the supervisor publishes (`kstyles.sup.events.<id>`) from now on;
   * returns the unsubscribe.
   */
  onEvents(supervisorId: string, onEvent: (event: SupervisorEvent) => void): () => void {
    const sub = this.nc.subscribe(SUPERVISOR_SUBJECTS.events(supervisorId), {
      callback: (err, msg) => {
        if (!err) onEvent(msg.json<SupervisorEvent>());
      },
    });
    return () => sub.unsubscribe();
  }

  /** The ids of every supervisor whose control service answers a `$SRV.PING` on this NATS. */
  async discover(waitMs = 500): Promise<string[]> {
    const ids = new Set<string>();
    try {
      const replies = await this.nc.requestMany(`$SRV.PING.${SUPERVISOR_SUBJECTS.serviceName}`, '', {
        strategy: 'timer',
        maxWait: waitMs,
      });
      for await (const reply of replies) {
        const id = reply.json<{ metadata?: Record<string, string> }>().metadata?.[
          SUPERVISOR_SUBJECTS.idMetadataKey
        ];
        if (id) ids.add(id);
      }
    } catch {
      // No responders: no supervisor on this NATS.
    }
    return [...ids].sort();
  }

  async close(): Promise<void> {
    await this.nc.close();
  }

  async #request(
    supervisorId: string,
    op: ControlOp,
    body: unknown,
    timeoutMs = this.timeoutMs,
  ): Promise<unknown> {
    const subject = SUPERVISOR_SUBJECTS.control(supervisorId, op);
    let reply: Awaited<ReturnType<NatsConnection['request']>>;
    try {
      reply = await this.nc.request(subject, JSON.stringify(body), { timeout: timeoutMs });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const noResponders =
        (err as { isNoResponders?: () => boolean }).isNoResponders?.() === true ||
        /no responders/i.test(message);
      if (noResponders) {
        throw new SupervisorUnavailableError(
          `no supervisor '${supervisorId}' answered on ${subject}: it is not running (or uses another NATS than ${this.nc.getServer()})`,
        );
      }
      if (/timeout/i.test(message) || (err as Error).name === 'TimeoutError') {
        throw new SupervisorUnavailableError(
          `supervisor '${supervisorId}' did not answer ${op} within ${timeoutMs} ms (is it frozen or overloaded?)`,
        );
      }
      throw err;
    }
    const serviceError = ServiceError.toServiceError(reply);
    if (serviceError) {
      throw new SupervisorControlError(serviceError.code as ControlStatus, serviceError.message);
    }
    return reply.json();
  }
}
