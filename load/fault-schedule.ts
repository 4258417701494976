/**
 * The faults of a load: fires the scheduled ones when due and, while running, any added on the spot (the
 * lab console's buttons); tracks which requests each may affect (its window on each affected target),
 * undoes temporary ones after their `for`, and records what happened and how each target recovered.
 */
import { performance } from 'node:perf_hooks';
import type { FaultDriver, FaultInjection } from './fault-drivers.ts';
import type { LoadMetrics } from './load-metrics.ts';
import { computeP99Recovery, FaultTracker } from './resilience.ts';
import type { CompletionObserver } from './target-runner.ts';
import type { FaultRecord, FaultSpec, SecondStats } from './types.ts';

/** Splits a fault target into the load targets it can affect: `microkernel:driver` → microkernel. */
export function affectedTargets(fault: Pick<FaultSpec, 'target' | 'affects'>, names: string[]): string[] {
  if (fault.affects?.length) return fault.affects.filter((n) => names.includes(n));
  const parts = fault.target.split(':').filter((p) => names.includes(p));
  return parts.length > 0 ? [parts[0]!] : names;
}

/** A load target whose completions fault windows can watch. */
export type WatchedTarget = { readonly observers: CompletionObserver[] };

/** The load the faults are measured against: its t0 (this thread's clock), its targets, its length. */
export type WatchedLoad = { t0: number; targets: Map<string, WatchedTarget>; endMs: number };

export type FaultScheduleOptions = {
  /** Fired when due (their `atMs` after t0), while the load sends. */
  faults?: FaultSpec[];
  drivers: FaultDriver[];
  metrics?: LoadMetrics | null;
  /** How long after a fault its requests count for resilience (cut at the next fault on the target). */
  faultWindowMs: number;
};

export class FaultSchedule {
  readonly records: FaultRecord[] = [];
  private readonly faults: FaultSpec[];
  private next = 0;
  private load: WatchedLoad | null = null;
  private readonly windows: { record: FaultRecord; tracker: FaultTracker }[] = [];
  private readonly pending: Promise<unknown>[] = [];
  private readonly resumes: { timer: NodeJS.Timeout; run: () => Promise<void>; done: boolean }[] = [];

  constructor(private readonly options: FaultScheduleOptions) {
    this.faults = [...(options.faults ?? [])].sort((a, b) => a.atMs - b.atMs);
  }

  /** Measures faults from now on against this load (null: none runs; faults are only injected). */
  watch(load: WatchedLoad | null): void {
    this.load = load;
  }

  /** Fires the scheduled faults due by `elapsedMs`, while the load sends. */
  tick(elapsedMs: number, sending: boolean): void {
    while (sending && this.next < this.faults.length && this.faults[this.next]!.atMs <= elapsedMs) {
      this.pending.push(this.inject(this.faults[this.next]!));
      this.next++;
    }
  }

  /** Fires a fault now (the console's buttons); resolves once the driver has answered. */
  fire(fault: Omit<FaultSpec, 'atMs'>): Promise<FaultRecord> {
    const atMs = this.load ? performance.now() - this.load.t0 : 0;
    const injected = this.inject({ ...fault, atMs });
    this.pending.push(injected);
    return injected;
  }

  /** Undoes every temporary fault now, its time up or not (the load has ended). */
  resumeAll(): void {
    for (const resume of this.resumes) {
      if (resume.done) continue;
      clearTimeout(resume.timer);
      this.pending.push(resume.run());
    }
  }

  get resumed(): boolean {
    return this.resumes.every((r) => r.done);
  }

  /** Whether the fault's window is still open on one of its targets. */
  isOpen(record: FaultRecord): boolean {
    return this.windows.some((w) => w.record === record);
  }

  /**
   * Closes the windows that ended by `untilMs` (all, by default): each adds its target's resilience to
   * its fault's record, the p99 recovery read from `timelineOf` the target.
   */
  closeWindows(timelineOf: (target: string) => SecondStats[], untilMs = Number.POSITIVE_INFINITY): void {
    const open: typeof this.windows = [];
    for (const window of this.windows) {
      const { record, tracker } = window;
      if (tracker.endMs > untilMs) {
        open.push(window);
        continue;
      }
      const observers = this.load?.targets.get(tracker.target)?.observers;
      if (observers?.includes(tracker)) observers.splice(observers.indexOf(tracker), 1);
      record.resilience.push(tracker.result(computeP99Recovery(timelineOf(tracker.target), tracker.startMs)));
    }
    this.windows.splice(0, this.windows.length, ...open);
  }

  /** Waits for every injection and undo. */
  async settle(): Promise<void> {
    await Promise.allSettled(this.pending);
  }

  private async inject(spec: FaultSpec): Promise<FaultRecord> {
    const load = this.load;
    const firedAtMs = load ? performance.now() - load.t0 : 0;
    const driver = this.options.drivers.find((d) => d.supports(spec.target, spec.kind));
    const affected = load ? affectedTargets(spec, [...load.targets.keys()]) : [];
    const record: FaultRecord = {
      ...spec,
      firedAtMs,
      driver: driver?.name ?? 'none',
      ok: false,
      message: '',
      resilience: [],
    };
    this.records.push(record);
    if (load) this.track(load, record, affected, firedAtMs);
    if (!driver) {
      record.message = `no fault driver supports ${spec.kind} on '${spec.target}': kill/term/hang take pid:N, docker:NAME, SUPERVISOR:SERVICE or a name with a runtime-state file; poison takes a load target name; nats takes SUPERVISOR; slow (SIGUSR2) goes to the same targets as kill; crashloop takes SUPERVISOR:SERVICE of a service with a crash-at-start hook (the microkernel's driver with chaos on)`;
      return record;
    }
    try {
      const injection: FaultInjection = await driver.inject(spec.target, spec.kind, {
        ...(spec.forMs !== undefined ? { forMs: spec.forMs } : {}),
        ...(spec.latencyMs !== undefined ? { latencyMs: spec.latencyMs } : {}),
        ...(spec.times !== undefined ? { times: spec.times } : {}),
      });
      record.ok = true;
      record.message = injection.message;
      for (const name of affected) this.options.metrics?.fault(name, spec.target, spec.kind);
      if (injection.resume) this.scheduleResume(record, spec.forMs ?? 0, injection.resume);
    } catch (err) {
      record.message = (err as Error).message;
    }
    return record;
  }

  /** Opens the fault's window on each affected target; a new fault there closes the previous one's. */
  private track(load: WatchedLoad, record: FaultRecord, affected: string[], firedAtMs: number): void {
    for (const prev of this.windows) {
      if (affected.includes(prev.tracker.target) && prev.tracker.endMs > firedAtMs)
        prev.tracker.endMs = firedAtMs;
    }
    for (const name of affected) {
      const end = Math.min(firedAtMs + this.options.faultWindowMs, load.endMs);
      const tracker = new FaultTracker(name, firedAtMs, end);
      load.targets.get(name)!.observers.push(tracker);
      this.windows.push({ record, tracker });
    }
  }

  private scheduleResume(record: FaultRecord, afterMs: number, resume: () => Promise<string>): void {
    const entry = {
      done: false,
      timer: setTimeout(() => this.pending.push(entry.run()), afterMs),
      run: async () => {
        if (entry.done) return;
        entry.done = true;
        try {
          record.message += `; ${await resume()}`;
        } catch (err) {
          record.message += `; resume FAILED: ${(err as Error).message}`;
          record.ok = false;
        }
      },
    };
    this.resumes.push(entry);
  }
}
