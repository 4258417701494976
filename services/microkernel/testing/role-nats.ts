/**
 * A real nats-server run with the microkernel's generated per-role users and permissions, and a way to
 * connect as each role on its own inbox prefix, as the servers do (services/ipc/connect.ts).
 */
import type { NatsConnection } from '@nats-io/nats-core';
import { connectNats, inboxPrefixOf } from '../../ipc/connect.ts';
import { startNatsServer, type TestNatsServer } from '../../supervisor/testing/nats-server.ts';
import { generateKeyPairs, type NatsKeyPair, type NatsRole, renderNatsConfig } from '../nats-config.ts';

export type RoleNats = {
  nats: TestNatsServer;
  users: Record<NatsRole, NatsKeyPair>;
  /** Connects as `role` (on its own inbox prefix unless told otherwise); closed by stop(). */
  connectAs(role: NatsRole, inboxPrefix?: string): Promise<NatsConnection>;
  /** Closes every connection made, then the server. */
  stop(): Promise<void>;
};

export async function startRoleNats(options: { responsesExpireMs?: number } = {}): Promise<RoleNats> {
  const users = generateKeyPairs();
  const nats = await startNatsServer({
    config: renderNatsConfig({ host: '127.0.0.1', port: 0, users, ...options }),
  });
  const connections: NatsConnection[] = [];
  return {
    nats,
    users,
    connectAs: async (role, inboxPrefix = inboxPrefixOf(role)) => {
      const nc = await connectNats({
        servers: nats.url,
        name: `test-${role}`,
        seed: users[role].seed,
        inboxPrefix,
        firstConnectTimeoutMs: 5000,
      });
      connections.push(nc);
      return nc;
    },
    stop: async () => {
      await Promise.all(connections.map((nc) => nc.close().catch(() => {})));
      await nats.stop();
    },
  };
}
