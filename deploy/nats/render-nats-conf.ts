/**
 * Writes the NATS server configurations of the deployments from the microkernel's own generator
 * (services/microkernel/nats-config.ts): the same per-server users and permissions as the local lab,
 * each user an nkey public key given as a `$KSTYLES_NATS_<ROLE>_NKEY` reference that nats-server resolves
 * from its environment at start (compose's .env and the Kubernetes Secret nats-nkeys pass them; both
 * are made per deployment by deploy/nats/nats-keys.ts).
 *
 *   deploy/nats/nats.conf              one server (docker compose)
 *   deploy/k8s/nats/nats-cluster.conf  a member of the 3-node cluster (Kubernetes StatefulSet)
 *
 *   node --import tsx deploy/nats/render-nats-conf.ts        (rewrites both; the tests fail when stale)
 */

import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DEFAULT_PORTS } from '../../cli/kit/defaults.ts';
import { renderNatsConfig, usersFromEnv } from '../../services/microkernel/nats-config.ts';

export const COMPOSE_NATS = {
  host: '0.0.0.0',
  port: DEFAULT_PORTS.nats,
  monitorPort: DEFAULT_PORTS.natsMonitor,
  serverName: 'kstyles-nats',
} as const;

export const NATS_CONF_PATH = fileURLToPath(new URL('./nats.conf', import.meta.url));
export const K8S_NATS_CONF_PATH = fileURLToPath(new URL('../k8s/nats/nats-cluster.conf', import.meta.url));

/** The StatefulSet's members: nats-0..2, reachable by the headless Service's per-pod DNS names. */
export const K8S_NATS_CLUSTER = {
  name: 'kstyles',
  replicas: 3,
  statefulSet: 'nats',
  headlessService: 'nats-headless',
  routePort: 6222,
} as const;

export function composeNatsConfig(): string {
  return renderNatsConfig({ ...COMPOSE_NATS, users: usersFromEnv() });
}

/**
 * A `cluster { }` block: every member lists every route (its own included: nats-server skips itself), so
 * one file serves all members. Clients and services need nothing else: interest propagates over routes.
 */
export function clusterBlock(options: { name: string; listen: string; routes: string[] }): string {
  return [
    'cluster {',
    `  name: ${JSON.stringify(options.name)}`,
    `  listen: ${JSON.stringify(options.listen)}`,
    '  routes: [',
    ...options.routes.map((route) => `    ${JSON.stringify(route)}`),
    '  ]',
    '}',
    '',
  ].join('\n');
}

export function k8sNatsClusterConfig(): string {
  const { name, replicas, statefulSet, headlessService, routePort } = K8S_NATS_CLUSTER;
  const routes = Array.from(
    { length: replicas },
    (_, i) => `nats://${statefulSet}-${i}.${headlessService}:${routePort}`,
  );
  return [
    renderNatsConfig({
      host: COMPOSE_NATS.host,
      port: COMPOSE_NATS.port,
      monitorPort: COMPOSE_NATS.monitorPort,
      users: usersFromEnv(),
    }),
    '# Each pod is named after itself (the StatefulSet sets POD_NAME from metadata.name).',
    'server_name: $POD_NAME',
    clusterBlock({ name, listen: `0.0.0.0:${routePort}`, routes }),
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(NATS_CONF_PATH, composeNatsConfig());
  writeFileSync(K8S_NATS_CONF_PATH, k8sNatsClusterConfig());
  process.stdout.write(`wrote ${NATS_CONF_PATH} and ${K8S_NATS_CONF_PATH}\n`);
}
