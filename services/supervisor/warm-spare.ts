/**
 * Warm spares: a restart that does not wait for a runtime to boot.
 *
 * MINIX 3's reincarnation server restarts a driver by forking a fresh copy of a small binary: a few
 * milliseconds. A Node server takes a few hundred (runtime start, module evaluation) before it can
 * even connect, and in a restart under load that boot was most of the outage. So for a child whose
 * spec asks for it (`spare: true`) the supervisor keeps one more process of the same command started
 * and waiting: booted, its modules evaluated, serving nothing (no service, no port; a microkernel
 * server holds one idle NATS connection). When the child must be restarted the supervisor activates the spare instead of spawning:
 * one line on the spare's stdin carries what belongs to the new incarnation (its instance token, an
 * armed crash-at-start), and from there it starts like any fresh process (flags, NATS, service,
 * health check). It is still a new process with no state of the dead one, which is what a restart
 * promises; only the boot happened earlier. The first start boots each spare beside its child (the
 * tree starts one child at a time, so a core is free); after a restart a new spare boots SPARE_DELAY_MS
 * after the activated one is ready, so it does not take CPU from the backlog the restart left.
 *
 * The child side is `awaitActivation()`, early in a server's main: a microkernel server parses its
 * flags and opens its first NATS connection, then waits (services/ipc/server-main.ts). A spare whose
 * stdin ends without a line (the supervisor stopped or died) exits 0.
 */
import { createInterface } from 'node:readline';

/** Set in a spare's environment: wait for the activation line before starting. */
export const WARM_SPARE_ENV = 'KSTYLES_WARM_SPARE';

/** How long after its child is ready a new spare starts. */
export const SPARE_DELAY_MS = 1000;

/** What crosses from the supervisor to a spare at activation: the new incarnation's environment. */
export type Activation = { env: Record<string, string> };

/** The line that activates a spare. */
export function activationLine(activation: Activation): string {
  return `${JSON.stringify(activation)}\n`;
}

/** The activation in a line, or an Error naming what is wrong with it. */
export function parseActivation(line: string): Activation {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new Error(`warm spare: the activation line is not JSON: ${line.slice(0, 200)}`);
  }
  const env = (value as { env?: unknown } | null)?.env;
  if (typeof env !== 'object' || env === null || !Object.values(env).every((v) => typeof v === 'string')) {
    throw new Error(
      `warm spare: the activation line needs {"env": {name: string}}, got ${line.slice(0, 200)}`,
    );
  }
  return { env: env as Record<string, string> };
}

/** Whether this process was started as a warm spare (and not yet activated). */
export function isWarmSpare(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env[WARM_SPARE_ENV]);
}

/**
 * In a spare (WARM_SPARE_ENV set): waits for the activation line on stdin, puts its environment into
 * process.env and returns; exits 0 when stdin ends first. Elsewhere returns at once.
 */
export async function awaitActivation(
  env: NodeJS.ProcessEnv = process.env,
  input: NodeJS.ReadableStream = process.stdin,
): Promise<void> {
  if (!isWarmSpare(env)) return;
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  const line = await new Promise<string | null>((resolve) => {
    lines.once('line', resolve);
    lines.once('close', () => resolve(null));
  });
  lines.close();
  if (line === null) process.exit(0);
  Object.assign(env, parseActivation(line).env);
  delete env[WARM_SPARE_ENV];
  // Nothing more comes on stdin; let it go so it holds no handle open.
  if ('destroy' in input && typeof input.destroy === 'function') input.destroy();
}
