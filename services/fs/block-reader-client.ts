/**
 * The file server's view of the storage driver over NATS: a BlockReader whose reads are `kstyles.drv.read`
 * requests. Reads are idempotent, so a read that met no responders, a timeout or a NATS outage is retried
 * with backoff inside the request's deadline (docs/architecture.md, 'The microkernel').
 *
 * Poison requests: a read that was in flight when the driver crashed twice gets INTERNAL (500) and is
 * not retried again. "In flight during a crash" means: the attempt timed out, and the driver instance
 * that could have held it has vanished from NATS (its `$SRV.PING.kstyles-driver.<id>` meets no
 * responders). A hung (SIGSTOPped) driver still subscribes, so its timeouts do not count; once the
 * supervisor kills it they count once. Reads that have seen one crash are retried one at a time
 * ("suspect lane"), so a poison read that kills the next driver takes no innocent read down with it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type Msg, type NatsConnection, errors as natsErrors } from '@nats-io/nats-core';
import { InternalError, TimeoutError } from '../contract/errors.ts';
import { type CallOptions, DEFAULT_DEADLINE_MS } from '../contract/file-service.ts';
import type { BlockReader, FileRef } from '../driver/block-reader.ts';
import { HEADERS, HOP_ALLOWANCE_MS, putFileRef, putSpan, remainingMs, withDeadline } from '../ipc/headers.ts';
import { type Hop, type IpcMetrics, IpcOutcome, ipcRequest } from '../ipc/ipc.ts';
import { pingSubject, SERVICE_NAMES, SUBJECTS } from '../ipc/subjects.ts';

export type NatsBlockReaderOptions = {
  /** How long one attempt may wait for the driver. Default 1000 ms (a chunk normally takes ~2 ms). */
  attemptTimeoutMs?: number;
  /** Backoff of the PINGs that wait for a restarting driver: initialMs doubling up to maxMs. */
  backoff?: { initialMs: number; maxMs: number };
  metrics?: IpcMetrics;
  /** Who calls, for the `from` label. Default 'fs'. */
  from?: string;
};

export const BLOCK_READER_DEFAULTS = {
  attemptTimeoutMs: 1000,
  backoff: { initialMs: 20, maxMs: 250 },
  /** A PING either answers within this or the instance is hung (or gone). */
  probeTimeoutMs: 250,
  /** Crashes a read may witness before it is declared poison. */
  poisonCrashes: 2,
  /** Instance ids remembered as vanished (bounded memory). */
  vanishedMemory: 64,
  /** Driver instances probed after a timeout: the replicas of the moment, plus a few earlier ones. */
  knownMemory: 8,
} as const;

const CRASHED = Symbol('driver crashed during the attempt');

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

export class NatsBlockReader implements BlockReader {
  readonly #nc: NatsConnection;
  readonly #attemptTimeoutMs: number;
  readonly #backoff: { initialMs: number; maxMs: number };
  readonly #metrics: IpcMetrics | undefined;
  readonly #hop: Hop;
  /** Driver instances that answered recently. */
  readonly #known = new Set<string>();
  /** Driver instances seen gone from NATS. */
  readonly #vanished = new Set<string>();
  readonly #probes = new Map<string, Promise<boolean>>();
  readonly #suspects = new Lane();
  /** Resolves when a driver answers again; shared by every read waiting for one. */
  #driverBack: Promise<void> | undefined;
  #waiters = 0;

  constructor(nc: NatsConnection, options: NatsBlockReaderOptions = {}) {
    this.#nc = nc;
    this.#attemptTimeoutMs = options.attemptTimeoutMs ?? BLOCK_READER_DEFAULTS.attemptTimeoutMs;
    this.#backoff = options.backoff ?? BLOCK_READER_DEFAULTS.backoff;
    this.#metrics = options.metrics;
    this.#hop = { from: options.from ?? 'fs', to: 'driver', op: 'read' };
  }

  async read(file: FileRef, position: number, length: number, options?: CallOptions): Promise<Uint8Array> {
    return (await this.#request(file, position, length, options)).data;
  }

  /**
   * A grant transfer: the driver sends the bytes straight to `replyTo` (the gateway's reply subject) and
   * answers this file server with an empty acknowledgement, so the retries and the poison rule of `read`
   * hold while the bytes never pass through this process. A retried attempt may deliver twice; the
   * requester keeps the first reply.
   */
  async grant(
    file: FileRef,
    position: number,
    length: number,
    replyTo: string,
    options?: CallOptions,
  ): Promise<void> {
    await this.#request(file, position, length, options, replyTo);
  }

  async #request(
    file: FileRef,
    position: number,
    length: number,
    options: CallOptions | undefined,
    grantTo?: string,
  ): Promise<Msg> {
    const deadline = options?.deadline ?? Date.now() + DEFAULT_DEADLINE_MS;
    let crashes = 0;
    let lastFailure = 'no attempt made';
    for (let attempt = 1; ; attempt++) {
      const left = remainingMs(deadline) - HOP_ALLOWANCE_MS;
      if (left <= 0) {
        throw new TimeoutError(
          `the storage driver did not deliver ${file.relPath} within the deadline (${attempt - 1} attempts, last: ${lastFailure})`,
        );
      }
      const release = crashes > 0 ? await this.#suspects.acquire(deadline) : () => {};
      let outcome: IpcOutcome = IpcOutcome.timeout;
      let snapshot: string[] = [];
      let crashSeen = false;
      try {
        // A suspect first learns which driver it is about to meet, so a crash it causes is attributed.
        if (crashes > 0 && !(await this.#discover(Math.min(left, BLOCK_READER_DEFAULTS.probeTimeoutMs)))) {
          outcome = IpcOutcome.noResponders;
        } else {
          snapshot = [...this.#known];
          const headers = putSpan(position, length, putFileRef(file, withDeadline(deadline)));
          if (grantTo !== undefined) headers.set(HEADERS.grantTo, grantTo);
          const pending = ipcRequest(this.#nc, this.#hop, this.#metrics, SUBJECTS.drvRead, undefined, {
            headers,
            timeoutMs: Math.min(this.#attemptTimeoutMs, remainingMs(deadline) - HOP_ALLOWANCE_MS),
          });
          const watch = this.#watchForCrash(snapshot);
          const result = await Promise.race([pending, watch.crashed]);
          watch.stop();
          if (result === CRASHED) {
            // The driver holding the attempt died: no need to wait for the attempt's timeout.
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
                `NATS refused the file server's request on ${SUBJECTS.drvRead}: check the fs user's permissions`,
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
        if (crashes >= BLOCK_READER_DEFAULTS.poisonCrashes) {
          throw new InternalError(
            `poison request: reading ${file.relPath} was in flight during ${crashes} storage driver crashes; not retried again`,
          );
        }
        continue;
      }
      // No responders or NATS away: the driver is restarting. Wait for it, inside the deadline.
      await this.#waitForDriver(deadline);
    }
  }

  /**
   * Waits until some driver answers its PING again, or the deadline. One poller (with backoff) serves
   * every waiting read, so hundreds of reads queued behind a restarting driver cost a few PINGs a
   * second, not a storm of retries.
   */
  async #waitForDriver(deadline: number): Promise<void> {
    this.#waiters++;
    this.#driverBack ??= this.#pollUntilDriverAnswers().finally(() => {
      this.#driverBack = undefined;
    });
    const timer = new AbortController();
    try {
      await Promise.race([
        this.#driverBack,
        sleep(Math.max(0, remainingMs(deadline) - HOP_ALLOWANCE_MS), undefined, {
          signal: timer.signal,
        }).catch(() => {}),
      ]);
    } finally {
      timer.abort();
      this.#waiters--;
    }
  }

  async #pollUntilDriverAnswers(): Promise<void> {
    let delay = this.#backoff.initialMs;
    for (;;) {
      await sleep(delay);
      if (this.#waiters === 0 || (await this.#discover(BLOCK_READER_DEFAULTS.probeTimeoutMs))) return;
      delay = Math.min(delay * 2, this.#backoff.maxMs);
    }
  }

  /** Whether some driver answers its service-API PING. */
  async ready(): Promise<boolean> {
    return this.#discover(BLOCK_READER_DEFAULTS.probeTimeoutMs * 2);
  }

  async close(): Promise<void> {
    // The NATS connection belongs to whoever opened it.
  }

  /** Asks any driver for its identity and remembers it; false when none answers. */
  async #discover(timeoutMs: number): Promise<boolean> {
    try {
      const reply = await this.#nc.request(pingSubject(SERVICE_NAMES.driver), '', {
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
   * `crashed` resolves CRASHED as soon as a driver that could hold the attempt has vanished; it checks
   * only once the attempt is slower than a normal read (probeTimeoutMs), then every probeTimeoutMs, and
   * never resolves otherwise or after stop(). A plain timer rather than an AbortSignal: this runs for
   * every read, and an aborted signal costs an AbortError each time.
   */
  #watchForCrash(snapshot: string[]): { crashed: Promise<typeof CRASHED>; stop(): void } {
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const crashed = new Promise<typeof CRASHED>((resolve) => {
      const check = async () => {
        if (await this.#crashedSince(snapshot)) {
          if (!stopped) resolve(CRASHED);
        } else if (!stopped) {
          timer = setTimeout(check, BLOCK_READER_DEFAULTS.probeTimeoutMs);
        }
      };
      timer = setTimeout(check, BLOCK_READER_DEFAULTS.probeTimeoutMs);
    });
    return {
      crashed,
      stop: () => {
        stopped = true;
        clearTimeout(timer);
      },
    };
  }

  /** Whether a driver instance that could have held the timed-out attempt is gone from NATS. */
  async #crashedSince(snapshot: string[]): Promise<boolean> {
    if (snapshot.length === 0) {
      // Nobody known: a crash shows as no driver at all.
      return !(await this.#discover(BLOCK_READER_DEFAULTS.probeTimeoutMs));
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
        .request(pingSubject(SERVICE_NAMES.driver, id), '', {
          timeout: BLOCK_READER_DEFAULTS.probeTimeoutMs,
        })
        .then(
          () => false,
          (err: unknown) =>
            err instanceof natsErrors.RequestError && err.isNoResponders() && this.#markVanished(id),
        )
        .finally(() => this.#probes.delete(id));
      this.#probes.set(id, probe);
    }
    return probe;
  }

  /** Keeps the most recently seen driver instances (bounded: restarts keep minting new ids). */
  #remember(id: string): void {
    this.#known.delete(id);
    this.#known.add(id);
    if (this.#known.size > BLOCK_READER_DEFAULTS.knownMemory) {
      const oldest = this.#known.values().next().value;
      if (oldest !== undefined) this.#known.delete(oldest);
    }
  }

  #markVanished(id: string): true {
    this.#known.delete(id);
    this.#vanished.add(id);
    if (this.#vanished.size > BLOCK_READER_DEFAULTS.vanishedMemory) {
      const oldest = this.#vanished.values().next().value;
      if (oldest !== undefined) this.#vanished.delete(oldest);
    }
    return true;
  }
}
