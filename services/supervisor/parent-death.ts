/**
 * Children that die with their supervisor, however it dies. Erlang/OTP links a supervisor to its
 * children; OS processes have no such link, and a SIGKILLed supervisor would leave a foreign child (a
 * nats-server) running and holding its port, so the next start fails. Linux has the link:
 * PR_SET_PDEATHSIG asks the kernel to signal a process when its parent dies. Node cannot call prctl,
 * so each child is started through util-linux's `setpriv --pdeathsig KILL`, which sets it and execs
 * the child: same PID, same process group, no extra process. SIGKILL, not SIGTERM, because a
 * SIGSTOPped child would hold a SIGTERM forever.
 *
 * Where there is no setpriv (not Linux, or a minimal image), children start directly; kstyles children
 * still stop on their own when orphaned (`exitWhenOrphaned` in child-identity.ts), foreign ones do not.
 */
import { accessSync, constants } from 'node:fs';

const SETPRIV_PATHS = ['/usr/bin/setpriv', '/bin/setpriv'] as const;

/** The setpriv binary that can link children to this process, or undefined (not Linux, not installed). */
export function findSetpriv(platform: NodeJS.Platform = process.platform): string | undefined {
  if (platform !== 'linux') return undefined;
  return firstExecutable(SETPRIV_PATHS);
}

/** The first of `paths` this process may execute, or undefined (the launchers children start through). */
export function firstExecutable(paths: readonly string[]): string | undefined {
  return paths.find((file) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The command line that runs `command args` so that the kernel SIGKILLs it when its parent dies. */
export function linkedToParent(
  command: string,
  args: readonly string[],
  setpriv: string | undefined,
): { command: string; args: string[] } {
  if (!setpriv) return { command, args: [...args] };
  return { command: setpriv, args: ['--pdeathsig', 'KILL', '--', command, ...args] };
}
