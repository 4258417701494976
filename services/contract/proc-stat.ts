/**
 * A process's (or thread's) line of /proc/<pid>/stat (Linux): its command name, its parent, the CPU it
 * has used and how it is scheduled; and its resident memory, from /proc/<pid>/status. The benchmark
 * (process trees, CPU per request), the console's cost measurement, the microkernel's CPU measurement,
 * the load generator's sender threads (their priority) and the supervisor's hang rule (busy or stopped)
 * read it here, so the line is parsed one way.
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
  /** Page faults served without I/O (minflt): each a first touch of a page, or one given back and touched again. */
  minorFaults: number;
  /** cutime + cstime: the CPU of its children it has waited for, in ticks. */
  reapedChildrenCpuTicks: number;
  /** Its nice value (-20 … 19; what SCHED_OTHER weighs). */
  nice: number;
  /** Its scheduling policy (sched(7)): SCHED_OTHER, SCHED_FIFO, … */
  policy: string;
  /** Its real-time priority (1 … 99 under SCHED_FIFO and SCHED_RR, 0 otherwise). */
  realtimePriority: number;
};

/** sched(7)'s policies by their number in /proc/<pid>/stat. */
const POLICIES = [
  'SCHED_OTHER',
  'SCHED_FIFO',
  'SCHED_RR',
  'SCHED_BATCH',
  'SCHED_ISO',
  'SCHED_IDLE',
  'SCHED_DEADLINE',
];

/**
 * One process's stat, or null when it has gone (or is not this user's to read). `'thread-self'` reads
 * the calling thread's own line.
 */
export function readProcStat(pid: number | 'thread-self'): ProcStat | null {
  let line: string;
  try {
    line = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The name is in parentheses and may contain both; the fields after its last ')' are space separated.
  const close = line.lastIndexOf(')');
  const fields = line.slice(close + 2).split(' ');
  // From state (field 3 of the line): ppid is field 4, minflt 10, utime stime cutime cstime 14-17, nice
  // is 19, rt_priority and policy are 40 and 41 (proc_pid_stat(5)).
  const policy = Number(fields[38]);
  return {
    pid: Number(line.slice(0, line.indexOf(' '))),
    name: line.slice(line.indexOf('(') + 1, close),
    ppid: Number(fields[1]),
    minorFaults: Number(fields[7]),
    cpuTicks: Number(fields[11]) + Number(fields[12]),
    reapedChildrenCpuTicks: Number(fields[13]) + Number(fields[14]),
    nice: Number(fields[16]),
    policy: POLICIES[policy] ?? `policy ${policy}`,
    realtimePriority: Number(fields[37]),
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

/** VmRSS of a process in bytes (resident memory, /proc/<pid>/status), or null when it has gone. */
export function readRssBytes(pid: number): number | null {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}
