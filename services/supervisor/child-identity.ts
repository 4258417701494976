/**
 * How a supervised child that serves the NATS service API proves that a `$SRV.PING` answer is its own
 * (not a replica's, not a frozen earlier incarnation's): the supervisor hands each incarnation a token
 * in an environment variable, and the child puts it in its service metadata. Children that do not are
 * still recognised, by service name and an instance id not seen from an earlier incarnation.
 */
export const SUPERVISED_INSTANCE_ENV = 'KSTYLES_SUPERVISED_INSTANCE';
export const INSTANCE_METADATA_KEY = 'kstyles_instance';

/** Metadata to pass to `Svcm.add({ metadata })` in a supervised child; empty when not supervised. */
export function supervisedServiceMetadata(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const token = env[SUPERVISED_INSTANCE_ENV];
  return token ? { [INSTANCE_METADATA_KEY]: token } : {};
}

/**
 * Erlang/OTP links a supervisor to its children: when the supervisor dies, so do they. OS processes have
 * no such link, and a SIGKILLed supervisor would leave its children running and holding their ports, so
 * its replacement could not start them again. A supervised child therefore watches its parent: once it
 * has been re-parented (its parent died), it calls `onOrphaned`, by default a SIGTERM to itself, so it
 * stops the way its supervisor would have stopped it (a supervisor child stops its own children too).
 * Does nothing in a process that no supervisor started.
 */
export function exitWhenOrphaned(
  onOrphaned: () => void = exitOrphaned,
  env: NodeJS.ProcessEnv = process.env,
  intervalMs = 250,
): void {
  if (!env[SUPERVISED_INSTANCE_ENV]) return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onOrphaned();
  }, intervalMs);
  timer.unref();
}

function exitOrphaned(): void {
  process.stderr.write(
    `${JSON.stringify({ time: new Date().toISOString(), level: 'warn', msg: 'supervisor gone: stopping', pid: process.pid })}\n`,
  );
  process.kill(process.pid, 'SIGTERM');
}
