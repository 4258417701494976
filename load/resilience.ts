import type { CompletionObserver } from './target-runner.ts';
import type { Resilience, SecondStats } from './types.ts';

/** Seconds before a fault whose p99 makes its baseline. */
const BASELINE_SECONDS = 5;
/** p99 counts as recovered within 2x its baseline; the 1 ms floor keeps sub-millisecond jitter from counting. */
const RECOVERY_FACTOR = 2;
const RECOVERY_FLOOR_US = 1000;

export type P99Recovery = { preFaultP99: number; p99RecoveryMs: number | null };

/**
 * Time from the fault until the per-second p99 is back within 2x its pre-fault value (median of the
 * last five seconds before the fault) in a second without failed requests: failures often come back
 * fast (connection refused), so a second with any is never "back to normal". 0 when no second was
 * degraded; null when it never came back.
 */
export function computeP99Recovery(timeline: SecondStats[], faultMs: number): P99Recovery {
  const faultSecond = Math.floor(faultMs / 1000);
  const before = timeline
    .filter((s) => s.t < faultSecond && s.t >= faultSecond - BASELINE_SECONDS && s.p99 > 0)
    .map((s) => s.p99)
    .sort((a, b) => a - b);
  if (before.length === 0) return { preFaultP99: 0, p99RecoveryMs: null };
  const preFaultP99 = before[Math.floor(before.length / 2)]!;
  const limit = Math.max(preFaultP99 * RECOVERY_FACTOR, preFaultP99 + RECOVERY_FLOOR_US);
  const after = timeline.filter((s) => s.t >= faultSecond);
  const failed = (s: SecondStats) => s.sent - s.outcomes.ok > 0;
  const degraded = after.findIndex((s) => s.p99 > limit || failed(s) || (s.sent > 0 && s.p99 === 0));
  if (degraded < 0) return { preFaultP99, p99RecoveryMs: 0 };
  const recovered = after.slice(degraded).find((s) => s.p99 > 0 && s.p99 <= limit && !failed(s));
  if (!recovered) return { preFaultP99, p99RecoveryMs: null };
  return { preFaultP99, p99RecoveryMs: Math.max(0, recovered.t * 1000 - faultMs) };
}

/** Follows one target's completions during one fault's window. */
export class FaultTracker implements CompletionObserver {
  requests = 0;
  failed = 0;
  private firstFailureMs: number | null = null;
  private firstSuccessAfterFailureMs: number | null = null;

  constructor(
    readonly target: string,
    readonly startMs: number,
    public endMs: number,
  ) {}

  observe(_intendedMs: number, completedMs: number, ok: boolean): void {
    this.requests++;
    if (!ok) {
      this.failed++;
      if (this.firstFailureMs === null || completedMs < this.firstFailureMs)
        this.firstFailureMs = completedMs;
    } else if (this.firstFailureMs !== null && completedMs > this.firstFailureMs) {
      if (this.firstSuccessAfterFailureMs === null || completedMs < this.firstSuccessAfterFailureMs) {
        this.firstSuccessAfterFailureMs = completedMs;
      }
    }
  }

  result(recovery: P99Recovery): Resilience {
    return {
      target: this.target,
      windowStartMs: this.startMs,
      windowEndMs: this.endMs,
      requests: this.requests,
      failed: this.failed,
      availability: this.requests === 0 ? 1 : (this.requests - this.failed) / this.requests,
      blastRadius: this.requests === 0 ? 0 : this.failed / this.requests,
      firstSuccessAfterFailureMs:
        this.firstSuccessAfterFailureMs === null ? null : this.firstSuccessAfterFailureMs - this.startMs,
      p99RecoveryMs: recovery.p99RecoveryMs,
      preFaultP99: recovery.preFaultP99,
    };
  }
}
