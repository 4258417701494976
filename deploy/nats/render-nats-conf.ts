/**
 * Writes deploy/nats/nats.conf, the compose NATS server's configuration, from the microkernel's own
 * generator (services/microkernel/nats-config.ts): the same per-server users and permissions as the
 * local lab, with passwords as `$KSTYLES_NATS_<ROLE>_PASS` references that nats-server resolves from its
 * environment at start (compose passes them). deploy/nats-conf.test.ts fails when the file is stale.
 *
 *   node --import tsx deploy/nats/render-nats-conf.ts        (rewrites the file)
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderNatsConfig, usersFromEnv } from '../../services/microkernel/nats-config.ts';

export const COMPOSE_NATS = {
  host: '0.0.0.0',
  port: 4222,
  monitorPort: 8222,
  serverName: 'kstyles-nats',
} as const;

export const NATS_CONF_PATH = fileURLToPath(new URL('./nats.conf', import.meta.url));

export function composeNatsConfig(): string {
  return renderNatsConfig({ ...COMPOSE_NATS, users: usersFromEnv() });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(NATS_CONF_PATH, composeNatsConfig());
  process.stdout.write(`wrote ${NATS_CONF_PATH}\n`);
}
