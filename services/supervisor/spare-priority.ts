/**
 * A warm spare boots at a low CPU priority, so that its boot (node's start, the bundle's evaluation, its
 * NATS connections) yields the cores to the servers it stands beside, and a restart raises it to the
 * supervisor's own priority before it serves. Raising a priority needs CAP_SYS_NICE (root outside a
 * container; not in Docker's default set). Without it spares boot at the supervisor's priority: a
 * spare left low would serve at that priority.
 *
 * Node starts a process at the priority of its parent, so the spare is started through coreutils'
 * `nice`, which execs it: every thread of the spare inherits the low priority from its first
 * instruction (a renice after the spawn would miss the threads node starts at once). Raising it sets
 * every thread, because on Linux a priority belongs to a thread, not to its process.
 */
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { firstExecutable } from './parent-death.ts';

/** The nice value a spare boots at unless its child spec says otherwise: the lowest priority. */
export const DEFAULT_SPARE_NICE = 19;

const NICE_PATHS = ['/usr/bin/nice', '/bin/nice'] as const;
/** capability(7): the bit of CAP_SYS_NICE in /proc/<pid>/status's CapEff mask. */
const CAP_SYS_NICE = 23n;

/** Whether a process with this /proc/<pid>/status may raise a priority again (CapEff has CAP_SYS_NICE). */
export function mayRaisePriority(status: string): boolean {
  const mask = /^CapEff:\s*([0-9a-f]+)$/im.exec(status)?.[1];
  return mask !== undefined && ((BigInt(`0x${mask}`) >> CAP_SYS_NICE) & 1n) === 1n;
}

/**
 * How this supervisor boots spares low: the `nice` binary, or undefined where a spare cannot be
 * raised again (no CAP_SYS_NICE, not Linux) or nice is not installed.
 */
export function findSpareNice(platform: NodeJS.Platform = process.platform): string | undefined {
  if (platform !== 'linux') return undefined;
  let status: string;
  try {
    status = readFileSync('/proc/self/status', 'utf8');
  } catch {
    return undefined;
  }
  if (!mayRaisePriority(status)) return undefined;
  return firstExecutable(NICE_PATHS);
}

/** The command line that runs `command args` at nice `niceness` (unchanged for 0 or without a nice binary). */
export function atNice(
  launch: { command: string; args: string[] },
  niceness: number,
  nice: string | undefined,
): { command: string; args: string[] } {
  if (!nice || niceness === 0) return launch;
  return { command: nice, args: ['-n', String(niceness), '--', launch.command, ...launch.args] };
}

/** The nice value of every thread of `pid` (none when it is gone). */
export function threadNices(pid: number): number[] {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  return tids.flatMap((tid) => {
    try {
      return [os.getPriority(Number(tid))];
    } catch {
      return [];
    }
  });
}

/** Sets every thread of `pid` to `priority`; false when the process is gone or a thread refused. */
export function raisePriority(pid: number, priority: number): boolean {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return false;
  }
  let all = tids.length > 0;
  for (const tid of tids) {
    try {
      os.setPriority(Number(tid), priority);
    } catch (err) {
      // A thread that ended since the listing is no refusal.
      if ((err as { info?: { code?: string } }).info?.code !== 'ESRCH') all = false;
    }
  }
  return all;
}
