/**
 * The process behind a target, seen from this machine: the one listening on a loopback URL's port, read
 * from /proc as any observer with the same uid would (services/contract/process-inspection.ts). For the
 * request parser (the monolith, the microkernel's gateway, the unikernel) these are the measured
 * process facts of the report's Security row.
 */
import {
  inspectProcess,
  listenerPids,
  type ProcessInspection,
  type SocketHolder,
} from '../services/contract/process-inspection.ts';

export type { ProcessInspection };

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/**
 * Which of the processes holding a listening socket parses the requests: the one the target's own
 * /metrics names (`preferredPid`), else the one whose parent holds it too (a socket passed down, as the
 * microkernel's supervisor does to its gateway), else the only one.
 */
function parserOf(holders: SocketHolder[], preferredPid?: number): SocketHolder | undefined {
  const preferred = holders.find((h) => h.pid === preferredPid);
  if (preferred) return preferred;
  const pids = new Set(holders.map((h) => h.pid));
  return holders.find((h) => pids.has(h.ppid)) ?? holders[0];
}

/**
 * The facts of the process listening on a loopback URL's port on this machine (with `dataRoot`, a real
 * path: the descriptors it holds under it); undefined when the URL is not on loopback, nobody here
 * listens on it, or the listener is a container engine's port proxy (the parser then runs in a
 * container, out of this view).
 */
export function listenerFacts(
  url: string,
  dataRoot?: string,
  preferredPid?: number,
): ProcessInspection | undefined {
  if (process.platform !== 'linux') return undefined;
  const parsed = new URL(url);
  if (!LOOPBACK.has(parsed.hostname)) return undefined;
  const listener = parserOf(
    listenerPids(Number(parsed.port || (parsed.protocol === 'https:' ? 443 : 80))),
    preferredPid,
  );
  if (!listener || listener.comm === 'docker-proxy') return undefined;
  try {
    return inspectProcess(listener.pid, dataRoot);
  } catch {
    return undefined; // Gone meanwhile, or not ours to inspect.
  }
}
