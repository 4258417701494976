/**
 * The process behind a target, seen from this machine: the one listening on a loopback URL's port, read
 * from /proc as any observer with the same uid would (services/contract/process-inspection.ts). For the
 * request parser (the monolith, the microkernel's gateway, the unikernel) these are the measured
 * process facts of the report's Security row.
 */
import {
  inspectProcess,
  listenerPid,
  type ProcessInspection,
} from '../services/contract/process-inspection.ts';

export type { ProcessInspection };

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/**
 * The facts of the process listening on a loopback URL's port on this machine; undefined when the
 * URL is not on loopback, nobody here listens on it, or the listener is a container engine's port
 * proxy (the parser then runs in a container, out of this view).
 */
export function listenerFacts(url: string): ProcessInspection | undefined {
  if (process.platform !== 'linux') return undefined;
  const parsed = new URL(url);
  if (!LOOPBACK.has(parsed.hostname)) return undefined;
  const listener = listenerPid(Number(parsed.port || (parsed.protocol === 'https:' ? 443 : 80)));
  if (!listener || listener.comm === 'docker-proxy') return undefined;
  try {
    return inspectProcess(listener.pid);
  } catch {
    return undefined; // Gone meanwhile, or not ours to inspect.
  }
}
