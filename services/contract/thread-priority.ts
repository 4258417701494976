/**
 * Making a thread real-time: SCHED_FIFO through util-linux's `chrt` where the process may (root or
 * CAP_SYS_NICE), a lower nice value where only that is allowed, and how the thread is scheduled after,
 * read back from /proc. Used by the load generator's sender threads and the benchmark's speed probe:
 * threads whose wall-clock timing is the measurement and must not wait behind the targets for a core.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { readProcStat } from './proc-stat.ts';

/** How a thread is scheduled (sched(7)). */
export type ThreadPriority = {
  /** SCHED_FIFO where the thread could be made real-time, else SCHED_OTHER. */
  policy: string;
  /** Under SCHED_FIFO: 1 (lowest) … 99. */
  realtimePriority: number;
  /** What weighs under SCHED_OTHER: -20 … 19. */
  nice: number;
};

/**
 * Asks for SCHED_FIFO at `realtimePriority` and `nice` for thread `tid` ('thread-self': the calling
 * thread); returns how it is scheduled after, or null where /proc cannot say.
 */
export function raiseThreadPriority(
  tid: number | 'thread-self',
  realtimePriority: number,
  nice: number,
): ThreadPriority | null {
  const before = readProcStat(tid);
  if (!before) return null;
  try {
    os.setPriority(before.pid, nice);
  } catch {
    // Not allowed here: the thread keeps the process's nice value.
  }
  // chrt is absent or not allowed where it fails; the thread's stat says which policy it got.
  spawnSync('chrt', ['--fifo', '--pid', String(realtimePriority), String(before.pid)], { stdio: 'ignore' });
  const after = readProcStat(before.pid);
  return after && { policy: after.policy, realtimePriority: after.realtimePriority, nice: after.nice };
}
