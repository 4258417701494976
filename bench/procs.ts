/**
 * The benchmark's side of process handling: it starts targets as child processes, waits for them over
 * HTTP, reads their memory from /proc, and stops what it started (by PID, with its descendants).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { ProcessError, ProcessErrorCode } from '../services/contract/errors.ts';
import {
  PROC_TICKS_PER_SECOND,
  type ProcStat,
  readAllProcStats,
  readRssBytes,
} from '../services/contract/proc-stat.ts';

const LOG_LINES = 40;

/** A process the benchmark started. */
export class Spawned {
  readonly log: string[] = [];
  exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  readonly exited: Promise<void>;
  readonly spawnedAt = performance.now();

  constructor(
    readonly label: string,
    readonly proc: ChildProcess,
  ) {
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        this.log.push(line.length > 400 ? `${line.slice(0, 400)}…` : line);
        if (this.log.length > LOG_LINES) this.log.shift();
      }
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve();
      });
      proc.once('error', (err) => {
        this.log.push(`spawn failed: ${err.message}`);
        this.exit = { code: -1, signal: null };
        resolve();
      });
    });
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  get running(): boolean {
    return this.exit === null;
  }

  /** The last lines it printed, for error messages. */
  tail(lines = 6): string {
    return this.log.length ? this.log.slice(-lines).join('\n    ') : '(it printed nothing)';
  }

  /** SIGTERM, then SIGKILL for it and every descendant still alive after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    const family = this.running ? processTree(this.pid) : [];
    // The bounds are unreferenced: a process that exited early must not keep this one alive for them.
    if (this.running) {
      signal(this.pid, 'SIGTERM');
      await Promise.race([this.exited, sleep(graceMs, undefined, { ref: false })]);
    }
    if (this.running) signal(this.pid, 'SIGKILL');
    await Promise.race([this.exited, sleep(1000, undefined, { ref: false })]);
    // Descendants that outlived their parent (e.g. a supervisor's detached children).
    for (const pid of family) if (pid !== this.pid && isAlive(pid)) signal(pid, 'SIGKILL');
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const started = new Set<Spawned>();

/** Starts a child whose output the benchmark keeps (not shown) and whose exit it watches. */
export function startProcess(
  label: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Spawned {
  const proc = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const child = new Spawned(label, proc);
  started.add(child);
  void child.exited.then(() => started.delete(child));
  return child;
}

/** Stops every process this module started and that still runs (on exit or Ctrl-C). */
export async function stopAll(): Promise<void> {
  await Promise.all([...started].map((c) => c.stop(2000)));
}

/** Synchronous last resort for process.on('exit'): SIGKILL what is left. */
export function killAllNow(): void {
  for (const child of started) {
    if (!child.running) continue;
    for (const pid of processTree(child.pid).reverse()) signal(pid, 'SIGKILL');
  }
}

/** GET url; the status, or 0 when no answer came. */
export async function httpStatus(url: string, timeoutMs = 1000): Promise<number> {
  try {
    const res = await request(url, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs, reset: true });
    await res.body.dump();
    return res.statusCode;
  } catch {
    return 0;
  }
}

export class NotReadyError extends ProcessError {
  override readonly name = 'NotReadyError';
  readonly code = ProcessErrorCode.NOT_READY;
}

/**
 * Polls `base` + each path in turn until each answers 200 (the next path is tried only after the
 * previous one passed). Returns milliseconds from the child's spawn to the last 200.
 */
export async function waitFor200(
  child: Spawned,
  base: string,
  paths: string[],
  timeoutMs: number,
  pollMs = 5,
): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (const p of paths) {
    while (true) {
      if (!child.running) {
        throw new NotReadyError(
          `${child.label} exited (code ${child.exit?.code}, signal ${child.exit?.signal}) before ${p} answered 200:\n    ${child.tail()}`,
        );
      }
      if ((await httpStatus(`${base}${p}`)) === 200) break;
      if (performance.now() > deadline) {
        throw new NotReadyError(
          `${child.label}: ${p} did not answer 200 within ${timeoutMs} ms:\n    ${child.tail()}`,
        );
      }
      await sleep(pollMs);
    }
  }
  return performance.now() - child.spawnedAt;
}

/** The stats of a process and all its descendants, parents first, from one reading of /proc. */
function treeStats(rootPid: number): ProcStat[] {
  const procs = readAllProcStats();
  const children = new Map<number, ProcStat[]>();
  for (const p of procs) {
    const list = children.get(p.ppid) ?? [];
    list.push(p);
    children.set(p.ppid, list);
  }
  const root = procs.find((p) => p.pid === rootPid);
  const out: ProcStat[] = [];
  const queue = root ? [root] : [];
  while (queue.length > 0) {
    const p = queue.shift()!;
    out.push(p);
    queue.push(...(children.get(p.pid) ?? []));
  }
  return out;
}

/** The PID and all its descendants, parents first. */
export function processTree(rootPid: number): number[] {
  return [
    rootPid,
    ...treeStats(rootPid)
      .slice(1)
      .map((p) => p.pid),
  ];
}

/** The command line of a process, or '' when it is gone. */
export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/** Summed VmRSS of a process tree, and which processes it counted. */
export function treeRss(rootPid: number): { bytes: number; pids: number[] } {
  const resident = processTree(rootPid).flatMap((pid) => {
    const bytes = readRssBytes(pid);
    return bytes ? [{ pid, bytes }] : [];
  });
  return { bytes: resident.reduce((sum, p) => sum + p.bytes, 0), pids: resident.map((p) => p.pid) };
}

/** Samples a tree's RSS every `everyMs` until stopped; peak and mean in bytes. */
export function sampleRss(rootPid: number, everyMs = 250) {
  const samples: number[] = [];
  let pids: number[] = [];
  const take = () => {
    const t = treeRss(rootPid);
    if (t.bytes > 0) {
      samples.push(t.bytes);
      if (t.pids.length > pids.length) pids = t.pids;
    }
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      const names = pids.map((pid) => describeProcess(pid));
      return {
        peak: Math.max(0, ...samples),
        mean: samples.length ? samples.reduce((a, b) => a + b, 0) / samples.length : 0,
        processes: pids.length,
        names,
      };
    },
  };
}

/** A short name for a process: its executable and the kstyles command or script it runs. */
export function describeProcess(pid: number): string {
  const line = cmdline(pid);
  if (!line) return `pid ${pid}`;
  const parts = line.split(' ');
  const exe = parts[0]!.split('/').pop()!;
  const script = parts.slice(1).find((p) => /\.(ts|js|mjs|cjs)$/.test(p) && !p.includes('tsx'));
  const sub = script?.endsWith('kstyles.js') ? parts[parts.indexOf(script) + 1] : undefined;
  return [exe, sub ?? script?.split('/').slice(-2).join('/')].filter(Boolean).join(' ');
}

/** Busy and total CPU ticks of the whole machine (/proc/stat), all cores. */
function machineTicks(): { busy: number; total: number } {
  try {
    const fields = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]!
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    // user nice system idle iowait irq softirq steal …
    const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
    // irq and softirq belong to no process (loopback traffic of our own shows there): not counted as others'.
    const at = (i: number) => fields[i] ?? 0;
    return { busy: at(0) + at(1) + at(2) + at(7), total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

/** CPU ticks used by a process tree, including its reaped children (so restarted servers still count). */
function treeTicks(rootPid: number): number {
  return treeStats(rootPid).reduce((sum, p) => sum + p.cpuTicks + p.reapedChildrenCpuTicks, 0);
}

/** CPU microseconds a process tree has used, its reaped children included. */
export function treeCpuMicros(rootPid: number): number {
  return (treeTicks(rootPid) * 1e6) / PROC_TICKS_PER_SECOND;
}

/**
 * Watches how many cores the rest of the machine used while a measurement ran: all busy CPU time minus
 * that of the benchmark's own tree (the generator and every target it started).
 */
export function watchOthersCpu(cores: number) {
  const m0 = machineTicks();
  const mine0 = treeTicks(process.pid);
  return {
    stop(): number | null {
      const m1 = machineTicks();
      const mine = treeTicks(process.pid) - mine0;
      const total = m1.total - m0.total;
      if (total <= 0) return null;
      const others = Math.max(0, m1.busy - m0.busy - mine);
      return Math.round((others / total) * cores * 100) / 100;
    },
  };
}
