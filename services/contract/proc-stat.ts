/**
 * A process's line of /proc/<pid>/stat (Linux): its command name, its parent and the CPU it has used.
 * The benchmark (process trees, CPU per request), the console's cost measurement and the microkernel's
 * CPU measurement read it here, so the line is parsed one way.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ, the unit of /proc's CPU times: 100 a second on Linux whatever the kernel's HZ (proc(5)). */
export const PROC_TICKS_PER_SECOND = 100;

export type ProcStat = {
  pid: number;
  /** The command name (comm); it may hold spaces and parentheses. */
  name: string;
  ppid: number;
  /** utime + stime: the CPU of all its threads, in ticks. */
  cpuTicks: number;
  /** cutime + cstime: the CPU of its children it has waited for, in ticks. */
  reapedChildrenCpuTicks: number;
};

/** One process's stat, or null when it has gone (or is not this user's to read). */
export function readProcStat(pid: number): ProcStat | null {
  let line: string;
  try {
    line = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The name is in parentheses and may contain both; the fields after its last ')' are space separated.
  const close = line.lastIndexOf(')');
  const fields = line.slice(close + 2).split(' ');
  // From state (field 3 of the line): ppid is field 4, utime stime cutime cstime are fields 14-17.
  return {
    pid,
    name: line.slice(line.indexOf('(') + 1, close),
    ppid: Number(fields[1]),
    cpuTicks: Number(fields[11]) + Number(fields[12]),
    reapedChildrenCpuTicks: Number(fields[13]) + Number(fields[14]),
  };
}

/** The stat of every process that could be read. */
export function readAllProcStats(): ProcStat[] {
  const stats: ProcStat[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readProcStat(Number(entry));
    if (stat) stats.push(stat);
  }
  return stats;
}
