/**
 * Each supervisor's process tree, kept current from its events (`kstyles.sup.events.<id>`): an event
 * asks that supervisor for its status over the control API, so the tree changes when a process does,
 * without asking on a timer.
 */
import {
  type ControlClientOptions,
  SupervisorControlClient,
} from '../../services/supervisor/control-client.ts';
import type { SupervisorEvent, SupervisorStatus } from '../../services/supervisor/supervisor.ts';

export type TreeSnapshot = {
  id: string;
  /** Unix ms when `status` was read: the page adds the time since to the uptimes. */
  readAt: number;
  /** The last status read; kept while the supervisor does not answer (then `error` says why). */
  status: SupervisorStatus | null;
  error?: string;
};

/** A supervisor that did not answer is asked again after this long. */
const RETRY_MS = 2000;
/** Events kept, newest last: the page's event list and each child's last event come from them. */
export const EVENTS_KEPT = 200;

export class SupervisorWatch {
  readonly trees = new Map<string, TreeSnapshot>();
  readonly events: SupervisorEvent[] = [];
  /** Counts changes of `trees` and `events`: a push sends them only when it moved. */
  version = 0;
  private readonly unsubscribes: (() => void)[] = [];
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private closed = false;

  private constructor(
    private readonly ids: string[],
    private readonly control: SupervisorControlClient,
    private readonly onChange: () => void,
  ) {}

  static async start(
    ids: string[],
    options: ControlClientOptions,
    onChange: () => void,
  ): Promise<SupervisorWatch> {
    const control = await SupervisorControlClient.connect(options);
    const watch = new SupervisorWatch(ids, control, onChange);
    for (const id of ids) {
      watch.trees.set(id, { id, readAt: Date.now(), status: null });
      const unsubscribe = control.onEvents(id, (event) => {
        watch.events.push(event);
        if (watch.events.length > EVENTS_KEPT) watch.events.shift();
        watch.version++;
        watch.refresh(id);
        // A restarted supervisor child (the microkernel under the lab) is a new tree to read.
        if (ids.includes(event.service)) watch.refresh(event.service);
      });
      watch.unsubscribes.push(unsubscribe);
      watch.refresh(id);
    }
    return watch;
  }

  private refresh(id: string, delayMs = 0): void {
    if (this.closed || this.pending.has(id)) return;
    const timer = setTimeout(async () => {
      this.pending.delete(id);
      try {
        const status = await this.control.status(id);
        this.trees.set(id, { id, readAt: Date.now(), status });
        this.version++;
      } catch (err) {
        // A supervisor that gave up or is restarting: its last known tree stays on the page, marked.
        const last = this.trees.get(id);
        this.trees.set(id, {
          id,
          readAt: last?.status ? last.readAt : Date.now(),
          status: last?.status ?? null,
          error: (err as Error).message,
        });
        this.version++;
        this.refresh(id, RETRY_MS);
      }
      this.onChange();
    }, delayMs);
    timer.unref();
    this.pending.set(id, timer);
  }

  get supervisorIds(): string[] {
    return this.ids;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.pending.values()) clearTimeout(timer);
    for (const unsubscribe of this.unsubscribes) unsubscribe();
    await this.control.close().catch(() => undefined);
  }
}
