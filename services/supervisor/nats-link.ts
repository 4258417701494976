import type { NatsConnection } from '@nats-io/nats-core';
import { type ServiceMsg, Svcm } from '@nats-io/services';
import { connectNats, inboxPrefixOf } from '../ipc/connect.ts';
import { ControlError } from './control-error.ts';
import type { NatsSpec } from './spec.ts';
import { CONTROL_OPS, type ControlOp, SUPERVISOR_SUBJECTS } from './subjects.ts';

export type ControlHandler = (op: ControlOp, request: unknown) => unknown | Promise<unknown>;

/**
 * The supervisor's optional NATS side: publishes events, serves the control API, and lends its
 * connection to nats-ping health checks. NATS may come up after the supervisor (it may even be the
 * supervisor's first child): the link connects in the background and never gives up reconnecting.
 */
export class NatsLink {
  #nc: NatsConnection | undefined;
  #connectedSince: number | undefined;
  #closed = false;

  constructor(
    private readonly supervisorId: string,
    private readonly spec: NatsSpec,
    private readonly handle: ControlHandler,
    private readonly log: (line: string) => void,
  ) {}

  /** Starts connecting; returns at once. */
  open(): void {
    const { servers, seed, user, pass, reconnectTimeWaitMs } = this.spec;
    connectNats({
      servers,
      ...(seed !== undefined ? { seed } : {}),
      ...(user !== undefined ? { user } : {}),
      ...(pass !== undefined ? { pass } : {}),
      // The supervisor role's own inbox: the only one its NATS user may subscribe to.
      inboxPrefix: inboxPrefixOf('supervisor'),
      ...(reconnectTimeWaitMs !== undefined ? { reconnectTimeWaitMs } : {}),
      name: `kstyles-supervisor-${this.supervisorId}`,
      firstConnectTimeoutMs: Number.POSITIVE_INFINITY,
    })
      .then((nc) => this.#onConnected(nc))
      .catch((err: unknown) =>
        this.log(
          `NATS set-up failed: ${String(err)}; supervising by exit codes only, without the control API`,
        ),
      );
  }

  /** The connection while it is usable, else undefined. */
  get connection(): NatsConnection | undefined {
    return this.#connectedSince !== undefined ? this.#nc : undefined;
  }

  /** When the current connection was (re)established (ms since epoch); undefined while down. */
  get connectedSince(): number | undefined {
    return this.#connectedSince;
  }

  get url(): string | undefined {
    return this.#nc?.getServer();
  }

  publish(subject: string, data: unknown): void {
    if (!this.#nc || this.#nc.isClosed()) return;
    try {
      this.#nc.publish(subject, JSON.stringify(data));
    } catch {
      // Events are best effort while NATS is away; the local emitter still has them.
    }
  }

  async #onConnected(nc: NatsConnection): Promise<void> {
    if (this.#closed) {
      await nc.close();
      return;
    }
    this.#nc = nc;
    this.#connectedSince = Date.now();
    this.log(`connected to NATS at ${nc.getServer()}`);
    void this.#watchStatus(nc);
    const service = await new Svcm(nc).add({
      name: SUPERVISOR_SUBJECTS.serviceName,
      version: '1.0.0',
      description: `kernel-styles supervisor '${this.supervisorId}': status, kill, restart, crashloop, probe`,
      metadata: { [SUPERVISOR_SUBJECTS.idMetadataKey]: this.supervisorId },
    });
    const group = service.addGroup(SUPERVISOR_SUBJECTS.controlGroup(this.supervisorId));
    for (const op of CONTROL_OPS) {
      group.addEndpoint(op, (err, msg) => {
        if (!err) void this.#serve(op, msg);
      });
    }
  }

  /** The service API does not await handlers: this does, and turns every failure into an error reply. */
  async #serve(op: ControlOp, msg: ServiceMsg): Promise<void> {
    try {
      let request: unknown = {};
      if (msg.data.length > 0) {
        try {
          request = msg.json();
        } catch {
          throw new ControlError(400, `${op}: the request body is not JSON`);
        }
      }
      msg.respond(JSON.stringify(await this.handle(op, request)));
    } catch (err) {
      const code = err instanceof ControlError ? err.status : 500;
      msg.respondError(code, err instanceof Error ? err.message : String(err));
    }
  }

  async #watchStatus(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') {
        this.#connectedSince = undefined;
        this.log('NATS disconnected; supervising by exit codes until it is back');
      } else if (status.type === 'reconnect') {
        this.#connectedSince = Date.now();
        this.log(`reconnected to NATS at ${nc.getServer()}`);
      }
    }
  }

  /** Flushes pending events (briefly: NATS may already be gone) and closes. */
  async close(): Promise<void> {
    this.#closed = true;
    const nc = this.#nc;
    if (!nc || nc.isClosed()) return;
    const bounded = (p: Promise<unknown>) =>
      Promise.race([p.catch(() => {}), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
    if (this.#connectedSince !== undefined) await bounded(nc.flush());
    await bounded(nc.close());
  }
}
