/**
 * One request/reply hop to a supervised server, made to survive that server's restarts: requests are
 * idempotent, so one that met no responders, a timeout or a NATS outage is retried with backoff inside
 * the request's deadline (docs/architecture.md, 'The microkernel'). The file server uses it towards the
 * driver, the gateway towards the file server.
 *
 * Poison requests: a request that was in flight when the server crashed twice gets INTERNAL (500) and is
 * not retried again. "In flight during a crash" means: the attempt timed out, and the instance that
 * could have held it has vanished from NATS (its `$SRV.PING.<service>.<id>` meets no responders). A hung
 * (SIGSTOPped) server still subscribes, so its timeouts do not count; once the supervisor kills it they
 * count once. Requests that have seen one crash are retried one at a time ("suspect lane"), so a poison
 * request that kills the next instance takes no innocent request down with it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  errors as natsErrors,
  type Payload,
} from '@nats-io/nats-core';
import { InternalError, type ServiceError, TimeoutError } from '../contract/errors.ts';
import {
  ATTR,
  endSpan,
  injectHeaders,
  inSpan,
  type Span,
  SpanKind,
  startMessagingClientSpan,
} from '../telemetry/spans.ts';
import { HEADERS, HOP_ALLOWANCE_MS, remainingMs } from './headers.ts';
import { type Hop, type IpcCall, IpcClient, type IpcMetrics, IpcOutcome, type IpcResult } from './ipc.ts';
import { pingSubject, type ServiceName } from './subjects.ts';

export const RETRY_DEFAULTS = {
  /** How long one attempt may wait. Default 1000 ms (a chunk normally takes ~2 ms). */
  attemptTimeoutMs: 1000,
  backoff: { initialMs: 20, maxMs: 250 },
  /** A PING either answers within this or the instance is hung (or gone). */
  probeTimeoutMs: 250,
  /** How often the attempts in flight are looked at for one due a crash check (one timer for all). */
  watchTickMs: 50,
  /** How long a PING's "still there" verdict is shared by the attempts that ask. */
  probeReuseMs: 50,
  /** Crashes a request may witness before it is declared poison. */
  poisonCrashes: 2,
  /** Instance ids remembered as vanished (bounded memory). */
  vanishedMemory: 64,
  /** Instances probed after a timeout: the replicas of the moment, plus a few earlier ones. */
  knownMemory: 8,
} as const;

export type ResilientRequesterOptions = {
  /** The service whose instances answer (and are PINGed). */
  service: ServiceName;
  /** The server in messages: 'storage driver', 'file server'. */
  server: string;
  /** The hop's `from` and `to` labels; each request names its `op`. */
  hop: Omit<Hop, 'op'>;
  metrics?: IpcMetrics;
  /** How long one attempt may wait for the server. */
  attemptTimeoutMs?: number;
  /** Backoff of the PINGs that wait for a restarting server: initialMs doubling up to maxMs. */
  backoff?: { initialMs: number; maxMs: number };
  /** The error when the deadline passes before an answer (default TIMEOUT), given the last failure. */
  outOfTime?: (message: string, lastFailure: string) => ServiceError;
};

/** An attempt in flight, watched for a crash of the instances that could hold it. */
type Attempt = {
  call: IpcCall;
  snapshot: string[];
  /** When to probe its instances next. */
  checkAt: number;
  checking: boolean;
  /** Set when a probe found an instance gone and the attempt was abandoned. */
  crashed: boolean;
};

/** One at a time, in arrival order; waiting ends with TIMEOUT at the deadline. */
class Lane {
  #busy = false;
  #waiting: Array<() => void> = [];

  async acquire(deadline: number): Promise<() => void> {
    if (this.#busy) {
      let resolveTurn!: () => void;
      const turn = new Promise<void>((resolve) => {
        resolveTurn = resolve;
      });
      this.#waiting.push(resolveTurn);
      const left = remainingMs(deadline);
      const timer = new AbortController();
      const expired = await Promise.race([
        turn.then(() => false),
        sleep(Math.max(0, left), true, { signal: timer.signal }).catch(() => false),
      ]);
      timer.abort();
      if (expired) {
        const index = this.#waiting.indexOf(resolveTurn);
        if (index >= 0) this.#waiting.splice(index, 1);
        else this.#release(); // The turn came just as the deadline did: pass it on.
        throw new TimeoutError('deadline passed while the read waited to be retried after a driver crash');
      }
    }
    this.#busy = true;
    let released = false;
    return () => {
      if (!released) {
        released = true;
        this.#release();
      }
    };
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#busy = false;
  }
}

/** How an attempt ended, on its span: the outcome, and for an error reply its code. */
function endAttemptSpan(span: Span, result: IpcResult | 'crashed'): void {
  if (result === 'crashed') {
    span.setAttribute(ATTR.outcome, 'crashed');
    endSpan(span, { code: 'crashed', message: 'the instance holding the request vanished from NATS' });
    return;
  }
  span.setAttribute(ATTR.outcome, result.outcome);
  if (result.outcome === IpcOutcome.ok) {
    span.setAttribute(ATTR.messagingBodySize, result.msg.data.byteLength);
    // A grant's delivery names the driver that sent the bytes.
    if (result.msg.headers?.get(HEADERS.grantedBy)) span.setAttribute(ATTR.transfer, 'grant');
    endSpan(span);
  } else endSpan(span, result.outcome === IpcOutcome.error ? result.error : result.cause);
}

export class ResilientRequester {
  readonly #nc: NatsConnection;
  readonly #service: ServiceName;
  readonly #server: string;
  readonly #attemptTimeoutMs: number;
  readonly #backoff: { initialMs: number; maxMs: number };
  readonly #hop: Omit<Hop, 'op'>;
  readonly #outOfTime: (message: string, lastFailure: string) => ServiceError;
  /** Instances that answered recently. */
  readonly #known = new Set<string>();
  /** Instances seen gone from NATS. */
  readonly #vanished = new Set<string>();
  readonly #probes = new Map<string, Promise<boolean>>();
  readonly #suspects = new Lane();
  /** Resolves when an instance answers again; shared by every request waiting for one. */
  #serverBack: Promise<void> | undefined;
  /** Ends the poller's current backoff sleep (nudge). */
  #wakePoller: (() => void) | undefined;
  /** The attempts in flight, watched for crashes by one ticker (running while there are any). */
  readonly #attempts = new Set<Attempt>();
  #ticker: NodeJS.Timeout | undefined;
  readonly #ipc: IpcClient;
  /** The hop labels of each op, built once. */
  readonly #hopOf = new Map<string, Hop>();
  #waiters = 0;

  constructor(nc: NatsConnection, options: ResilientRequesterOptions) {
    this.#nc = nc;
    this.#service = options.service;
    this.#server = options.server;
    this.#attemptTimeoutMs = options.attemptTimeoutMs ?? RETRY_DEFAULTS.attemptTimeoutMs;
    this.#backoff = options.backoff ?? RETRY_DEFAULTS.backoff;
    this.#hop = options.hop;
    this.#outOfTime = options.outOfTime ?? ((message) => new TimeoutError(message));
    this.#ipc = new IpcClient(nc, options.metrics);
  }

  #hops(op: string): Hop {
    let hop = this.#hopOf.get(op);
    if (!hop) {
      hop = { ...this.#hop, op };
      this.#hopOf.set(op, hop);
    }
    return hop;
  }

  /**
   * Sends `subject` until an answer, an error reply, a poison verdict or the deadline. `headers` is
   * called per attempt (each carries the time left); `what` names the request in errors.
   */
  async request(
    op: string,
    subject: string,
    payload: Payload | undefined,
    headers: () => MsgHdrs,
    deadline: number,
    what: string,
  ): Promise<Msg> {
    let crashes = 0;
    let lastFailure = 'no attempt made';
    for (let attempt = 1; ; attempt++) {
      const left = remainingMs(deadline) - HOP_ALLOWANCE_MS;
      if (left <= 0) {
        throw this.#outOfTime(
          `the ${this.#server} did not answer ${what} within the deadline (${attempt - 1} attempts, last: ${lastFailure})`,
          lastFailure,
        );
      }
      const release = crashes > 0 ? await this.#suspects.acquire(deadline) : () => {};
      let outcome: IpcOutcome = IpcOutcome.timeout;
      let snapshot: string[] = [];
      let crashSeen = false;
      try {
        // A suspect first learns which instance it is about to meet, so a crash it causes is attributed
        // (unless an answer already named a live one: suspects go one at a time, each PING counts).
        if (
          crashes > 0 &&
          this.#known.size === 0 &&
          !(await this.#discover(Math.min(left, RETRY_DEFAULTS.probeTimeoutMs)))
        ) {
          outcome = IpcOutcome.noResponders;
        } else {
          snapshot = [...this.#known];
          // Each attempt is a CLIENT span of its own, so a retry shows beside the attempt that failed.
          const span = startMessagingClientSpan('nats', subject, attempt);
          const h = headers();
          if (span) injectHeaders(span, h);
          const call = this.#ipc.request(this.#hops(op), subject, payload, {
            headers: h,
            timeoutMs: Math.min(this.#attemptTimeoutMs, remainingMs(deadline) - HOP_ALLOWANCE_MS),
          });
          const watched = this.#watch(call, snapshot);
          const result = await call.result;
          this.#unwatch(watched);
          const crashed = watched.crashed && result.outcome === IpcOutcome.timeout;
          if (span) endAttemptSpan(span, crashed ? 'crashed' : result);
          if (crashed) {
            // The instance holding the attempt died: no need to wait for the attempt's timeout.
            crashSeen = true;
          } else {
            outcome = result.outcome;
            if (result.outcome === IpcOutcome.ok || result.outcome === IpcOutcome.error) {
              const instance = result.msg.headers?.get(HEADERS.instance);
              if (instance) this.#remember(instance);
            }
            if (result.outcome === IpcOutcome.ok) return result.msg;
            if (result.outcome === IpcOutcome.error) throw result.error;
            if (result.outcome === IpcOutcome.denied) {
              throw new InternalError(
                `NATS refused the ${this.#hop.from} request on ${subject}: check the ${this.#hop.from} user's permissions`,
              );
            }
          }
        }
      } finally {
        release();
      }
      lastFailure = outcome;
      if (outcome === IpcOutcome.timeout) {
        if (crashSeen || (await this.#crashedSince(snapshot))) crashes++;
        if (crashes >= RETRY_DEFAULTS.poisonCrashes) {
          throw new InternalError(
            `poison request: ${what} was in flight during ${crashes} ${this.#server} crashes; not retried again`,
          );
        }
        continue;
      }
      // No responders or NATS away: the server is restarting. Wait for it, inside the deadline.
      await inSpan(`wait for the ${this.#server}`, SpanKind.INTERNAL, () => this.#waitForServer(deadline));
    }
  }

  /**
   * Waits until some instance answers its PING again, or the deadline. One poller (with backoff) serves
   * every waiting request, so hundreds of requests queued behind a restarting server cost a few PINGs
   * a second, not a storm of retries.
   */
  async #waitForServer(deadline: number): Promise<void> {
    this.#waiters++;
    this.#serverBack ??= this.#pollUntilServerAnswers().finally(() => {
      this.#serverBack = undefined;
    });
    const timer = new AbortController();
    try {
      await Promise.race([
        this.#serverBack,
        sleep(Math.max(0, remainingMs(deadline) - HOP_ALLOWANCE_MS), undefined, {
          signal: timer.signal,
        }).catch(() => {}),
      ]);
    } finally {
      timer.abort();
      this.#waiters--;
    }
  }

  async #pollUntilServerAnswers(): Promise<void> {
    let delay = this.#backoff.initialMs;
    for (;;) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.#wakePoller = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wakePoller = undefined;
      if (this.#waiters === 0 || (await this.#discover(RETRY_DEFAULTS.probeTimeoutMs))) return;
      delay = Math.min(delay * 2, this.#backoff.maxMs);
    }
  }

  /** Whether some instance answers its service-API PING. */
  async ready(): Promise<boolean> {
    return this.#discover(RETRY_DEFAULTS.probeTimeoutMs * 2);
  }

  /** Asks any instance for its identity and remembers it; false when none answers. */
  async #discover(timeoutMs: number): Promise<boolean> {
    try {
      const reply = await this.#nc.request(pingSubject(this.#service), '', {
        timeout: Math.max(1, timeoutMs),
      });
      const id = reply.json<{ id?: string }>().id;
      if (id && !this.#vanished.has(id)) this.#remember(id);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Watches the attempt for a crash of the instance that could hold it: once the attempt is slower than
   * a normal read (probeTimeoutMs), and again every probeTimeoutMs, its instances are probed, and a
   * vanished one abandons the attempt (no need to wait for its timeout). One shared ticker serves every
   * attempt in flight instead of a timer and a promise per attempt: this runs for every read.
   */
  #watch(call: IpcCall, snapshot: string[]): Attempt {
    const attempt: Attempt = {
      call,
      snapshot,
      checkAt: Date.now() + RETRY_DEFAULTS.probeTimeoutMs,
      checking: false,
      crashed: false,
    };
    this.#attempts.add(attempt);
    this.#ticker ??= setInterval(() => this.#checkAttempts(false), RETRY_DEFAULTS.watchTickMs).unref();
    return attempt;
  }

  #unwatch(attempt: Attempt): void {
    this.#attempts.delete(attempt);
  }

  /** Probes the attempts due for a check (all of them when `now`); stops the ticker when none is left. */
  #checkAttempts(now: boolean): void {
    if (this.#attempts.size === 0) {
      clearInterval(this.#ticker);
      this.#ticker = undefined;
      return;
    }
    const time = Date.now();
    for (const attempt of this.#attempts) {
      if (attempt.checking || (!now && time < attempt.checkAt)) continue;
      attempt.checking = true;
      void this.#crashedSince(attempt.snapshot).then((gone) => {
        attempt.checking = false;
        attempt.checkAt = Date.now() + RETRY_DEFAULTS.probeTimeoutMs;
        if (!gone || !this.#attempts.has(attempt)) return;
        attempt.crashed = true; // Read only if the abandon below is what settled the attempt.
        attempt.call.abandon(`the ${this.#server} instance holding the request vanished`);
      });
    }
  }

  /**
   * News from the supervisor (MINIX 3's reincarnation server telling VFS): an instance of the server
   * exited, or one is ready again. Attempts in flight probe their instances now, so a read held by the
   * dead one is reissued at once instead of at its next check, and requests waiting for a server try
   * again now instead of at the poller's next backoff step.
   */
  nudge(): void {
    this.#probes.clear();
    this.#checkAttempts(true);
    this.#wakePoller?.();
  }

  /** Whether an instance that could have held the timed-out attempt is gone from NATS. */
  async #crashedSince(snapshot: string[]): Promise<boolean> {
    if (snapshot.length === 0) {
      // Nobody known: a crash shows as no instance at all. Then none of the instances remembered since
      // (the PINGs of this very watch remember the one that answered) is alive: forget them, or the
      // retry's snapshot would hold the dead one and its next check would count the same crash again.
      if (await this.#discover(RETRY_DEFAULTS.probeTimeoutMs)) return false;
      this.#known.clear();
      return true;
    }
    const verdicts = await Promise.all(snapshot.map((id) => this.#probe(id)));
    return verdicts.some(Boolean);
  }

  /** True when instance `id` has vanished (no responders on its own PING subject). */
  #probe(id: string): Promise<boolean> {
    if (this.#vanished.has(id)) return Promise.resolve(true);
    let probe = this.#probes.get(id);
    if (!probe) {
      probe = this.#nc
        .request(pingSubject(this.#service, id), '', {
          timeout: RETRY_DEFAULTS.probeTimeoutMs,
        })
        .then(
          () => false,
          (err: unknown) =>
            err instanceof natsErrors.RequestError && err.isNoResponders() && this.#markVanished(id),
        )
        // Every slow attempt probes: under overload, hundreds at once. They share one PING per instance
        // and reuse its verdict briefly (a vanished one is remembered anyway).
        .finally(() => setTimeout(() => this.#probes.delete(id), RETRY_DEFAULTS.probeReuseMs).unref());
      this.#probes.set(id, probe);
    }
    return probe;
  }

  /** Keeps the most recently seen instances (bounded: restarts keep minting new ids). */
  #remember(id: string): void {
    this.#known.delete(id);
    this.#known.add(id);
    if (this.#known.size > RETRY_DEFAULTS.knownMemory) {
      const oldest = this.#known.values().next().value;
      if (oldest !== undefined) this.#known.delete(oldest);
    }
  }

  #markVanished(id: string): true {
    this.#known.delete(id);
    this.#vanished.add(id);
    if (this.#vanished.size > RETRY_DEFAULTS.vanishedMemory) {
      const oldest = this.#vanished.values().next().value;
      if (oldest !== undefined) this.#vanished.delete(oldest);
    }
    return true;
  }
}
