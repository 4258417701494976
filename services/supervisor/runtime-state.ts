import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeDirectory } from '../../cli/kit/make-directory.ts';
import { ProcessError, ProcessErrorCode } from '../contract/errors.ts';
import type { NatsSpec } from './spec.ts';

/** What a running supervisor tells the CLI about itself: where to reach it and how. */
export type RuntimeState = {
  id: string;
  pid: number;
  /** ISO time. */
  startedAt: string;
  /** How to reach the control API: NATS servers and the credentials the supervisor itself uses. */
  nats?: RuntimeNats;
  metricsUrl?: string;
  /** Extra facts from the caller (e.g. the HTTP URLs of the children). */
  info: Record<string, unknown>;
};

export type RuntimeNats = { servers: string[] } & Omit<NatsSpec, 'servers' | 'reconnectTimeWaitMs'>;

/** What the runtime state says about a supervisor's NATS connection: its servers and credentials. */
export function runtimeNatsOf(nats: NatsSpec): RuntimeNats {
  const { servers, reconnectTimeWaitMs: _notNeeded, ...credentials } = nats;
  return { servers: [servers].flat(), ...credentials };
}

/**
 * A runtime-state directory kstyles will not use: the files in it hold NATS credentials and tell
 * `kstyles chaos` which NATS to send them to, so a directory another user made or can write (CWE-377)
 * would let them read or swap those files.
 */
export class RuntimeDirUnsafeError extends ProcessError {
  override name = 'RuntimeDirUnsafeError';
  readonly code = ProcessErrorCode.RUNTIME_DIR_UNSAFE;
  constructor(
    readonly dir: string,
    problem: string,
  ) {
    super(
      `runtime-state directory ${dir} ${problem}; kstyles keeps NATS credentials there and uses it only as a ` +
        `real directory owned by uid ${currentUid()} with mode 0700. Remove it (rm -rf ${dir}) so kstyles ` +
        'creates it afresh, or set XDG_RUNTIME_DIR to a private directory of yours',
    );
  }
}

function currentUid(): number {
  return process.getuid?.() ?? -1;
}

/**
 * `$XDG_RUNTIME_DIR/kstyles` (the per-user directory the login session provides), else
 * `<tmpdir>/kstyles-<uid>`: one directory per user, never a name shared by all users of the machine.
 */
export function runtimeStateDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, 'kstyles');
  const tmp = env.TMPDIR ? path.resolve(env.TMPDIR) : os.tmpdir();
  return path.join(tmp, `kstyles-${currentUid()}`);
}

/**
 * Whether `dir` exists as a runtime-state directory safe to read and write: false when it does not
 * exist; throws RuntimeDirUnsafeError when it is a symlink or not a directory, belongs to another uid
 * or lets group or others in.
 */
export function checkRuntimeStateDir(dir: string): boolean {
  let stat: ReturnType<typeof lstatSync>;
  try {
    stat = lstatSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  if (stat.isSymbolicLink()) throw new RuntimeDirUnsafeError(dir, 'is a symbolic link');
  if (!stat.isDirectory()) throw new RuntimeDirUnsafeError(dir, 'is not a directory');
  if (stat.uid !== currentUid()) throw new RuntimeDirUnsafeError(dir, `is owned by uid ${stat.uid}, not you`);
  if ((stat.mode & 0o077) !== 0) {
    const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
    throw new RuntimeDirUnsafeError(dir, `has mode ${mode} (group or others may enter it)`);
  }
  return true;
}

/** Creates `dir` with mode 0700 if it is absent, then checks it (a directory found there must pass too). */
export function ensureRuntimeStateDir(dir: string): void {
  makeDirectory(path.dirname(dir), 0o700);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  checkRuntimeStateDir(dir);
}

function fileOf(id: string, dir: string): string {
  return path.join(dir, `${id}.json`);
}

/** Writes the state atomically, readable only by its owner (it holds NATS credentials). Returns the path. */
export function writeRuntimeState(state: RuntimeState, dir = runtimeStateDir()): string {
  ensureRuntimeStateDir(dir);
  const file = fileOf(state.id, dir);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
  return file;
}

/**
 * The state file of supervisor (or process) `id` as written, whether or not that process still runs;
 * null when there is no such file or it holds no PID (half-written or foreign). Throws
 * RuntimeDirUnsafeError rather than read from a directory someone else controls.
 */
export function readRuntimeState(id: string, dir = runtimeStateDir()): RuntimeState | null {
  if (!checkRuntimeStateDir(dir)) return null;
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
    if (!checkRuntimeStateDir(dir)) return;
    const state = JSON.parse(readFileSync(file, 'utf8')) as RuntimeState;
    if (state.pid === pid) rmSync(file, { force: true });
  } catch {
    // Nothing there, unreadable, or a directory that is not ours: nothing of ours to remove.
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

/**
 * Sends `signal` to the process group led by `pid` (a supervised child runs in its own, so its own
 * children get it too), else to the process alone; a process already gone is no error.
 */
export function signalProcessGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone: its exit event is on its way.
    }
  }
}

/**
 * The states of the supervisors that are running now (files of dead processes are skipped). Throws
 * RuntimeDirUnsafeError rather than list a directory someone else controls.
 */
export function listRuntimeStates(dir = runtimeStateDir()): RuntimeState[] {
  if (!checkRuntimeStateDir(dir)) return [];
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
