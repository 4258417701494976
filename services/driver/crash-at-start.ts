/**
 * The crashloop fault (chaos only): with KSTYLES_DRIVER_CRASH_AT_START=N, the first N starts of the
 * driver exit at once. Starts are counted in a file that outlives each crashed process: by default one
 * per parent (per supervisor) in the per-user runtime directory, whose owner and mode are checked before
 * use. Not a predictable name in a shared temp directory (CWE-377): another local user could create it
 * first, own it and decide how often the driver crashes.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ensureRuntimeStateDir, runtimeStateDir } from '../supervisor/runtime-state.ts';

export const CRASH_AT_START_ENV = 'KSTYLES_DRIVER_CRASH_AT_START';
export const CRASH_COUNTER_ENV = 'KSTYLES_DRIVER_CRASH_COUNTER';

/** KSTYLES_DRIVER_CRASH_COUNTER, else `<runtime dir>/driver-crash-<parent pid>.count`. */
export function crashCounterFile(env: NodeJS.ProcessEnv, parentPid = process.ppid): string {
  return env[CRASH_COUNTER_ENV] ?? path.join(runtimeStateDir(env), `driver-crash-${parentPid}.count`);
}

/**
 * Counts this start; returns its number (1-based) when it must crash, or null when N starts have
 * crashed already or the fault is not asked for. The default counter's directory is made 0700 and
 * checked (RuntimeDirUnsafeError when someone else owns it or may enter it).
 */
export function crashingStart(env: NodeJS.ProcessEnv, parentPid = process.ppid): number | null {
  const wanted = Number(env[CRASH_AT_START_ENV] ?? 0);
  if (!(wanted > 0)) return null;
  const counter = crashCounterFile(env, parentPid);
  if (env[CRASH_COUNTER_ENV] === undefined) ensureRuntimeStateDir(path.dirname(counter));
  let crashed = 0;
  try {
    crashed = Number(readFileSync(counter, 'utf8')) || 0;
  } catch {
    // First start: nothing counted yet.
  }
  if (crashed >= wanted) return null;
  writeFileSync(counter, String(crashed + 1), { mode: 0o600 });
  return crashed + 1;
}
