import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** What a running supervisor tells the CLI about itself: where to reach it and how. */
export type RuntimeState = {
  id: string;
  pid: number;
  /** ISO time. */
  startedAt: string;
  /** How to reach the control API: NATS servers and the credentials the supervisor itself uses. */
  nats?: { servers: string[]; user?: string; pass?: string };
  metricsUrl?: string;
  /** Extra facts from the caller (e.g. the HTTP URLs of the children). */
  info: Record<string, unknown>;
};

/** `<os.tmpdir()>/kstyles/run`. */
export function runtimeStateDir(): string {
  return path.join(os.tmpdir(), 'kstyles', 'run');
}

function fileOf(id: string, dir: string): string {
  return path.join(dir, `${id}.json`);
}

/** Writes the state atomically, readable only by its owner (it holds NATS credentials). Returns the path. */
export function writeRuntimeState(state: RuntimeState, dir = runtimeStateDir()): string {
  mkdirSync(dir, { recursive: true });
  const file = fileOf(state.id, dir);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
  return file;
}

/**
 * The state file of supervisor (or process) `id` as written, whether or not that process still runs;
 * null when there is no such file or it holds no PID (half-written or foreign).
 */
export function readRuntimeState(id: string, dir = runtimeStateDir()): RuntimeState | null {
  try {
    const state = JSON.parse(readFileSync(fileOf(id, dir), 'utf8')) as RuntimeState;
    return typeof state?.pid === 'number' ? state : null;
  } catch {
    return null;
  }
}

/** Removes the state of supervisor `id`, but only if it is `pid`'s (a successor may have replaced it). */
export function removeRuntimeState(id: string, pid = process.pid, dir = runtimeStateDir()): void {
  const file = fileOf(id, dir);
  try {
    const state = JSON.parse(readFileSync(file, 'utf8')) as RuntimeState;
    if (state.pid === pid) rmSync(file, { force: true });
  } catch {
    // Nothing there, or unreadable: nothing of ours to remove.
  }
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The states of the supervisors that are running now (files of dead processes are skipped). */
export function listRuntimeStates(dir = runtimeStateDir()): RuntimeState[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  const states: RuntimeState[] = [];
  for (const name of names.sort()) {
    try {
      const state = JSON.parse(readFileSync(path.join(dir, name), 'utf8')) as RuntimeState;
      if (typeof state.pid === 'number' && isProcessAlive(state.pid)) states.push(state);
    } catch {
      // Half-written or foreign file: not a running supervisor.
    }
  }
  return states;
}
