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
