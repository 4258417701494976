/**
 * The microkernel's three servers in one test process, but connected only through a real nats-server
 * run with the generated per-user permissions: each server has its own NATS connection and user, so
 * the tests exercise the same subjects, headers and permissions as the separate processes do.
 */
import type { NatsConnection } from '@nats-io/nats-core';
import { Registry } from 'prom-client';
import { DriverChaos } from '../../driver/chaos.ts';
import { startDriverServer } from '../../driver/nats-server.ts';
import { StorageDriver } from '../../driver/storage-driver.ts';
import { NatsBlockReader } from '../../fs/block-reader-client.ts';
import { FileSystem } from '../../fs/file-system.ts';
import { fileServerTransfer, startFileServer } from '../../fs/nats-server.ts';
import { type Gateway, startGateway } from '../../gateway/gateway.ts';
import { DEFAULT_TRANSFER, type TransferMode } from '../../ipc/headers.ts';
import { createIpcMetrics } from '../../ipc/ipc.ts';
import type { HostedService } from '../../ipc/service-host.ts';
import { makeShmDir, removeShmDir, ShmSegments } from '../../ipc/shm.ts';
import type { TestNatsServer } from '../../supervisor/testing/nats-server.ts';
import type { NatsKeyPair, NatsRole } from '../nats-config.ts';
import { startRoleNats } from './role-nats.ts';

export type InProcessKernel = {
  nats: TestNatsServer;
  users: Record<NatsRole, NatsKeyPair>;
  gateway: Gateway;
  /** The run's shared-memory segments (`shm` transfers only). */
  shm: ShmSegments | undefined;
  /** The hosted services, to stop one and see how the rest copes. */
  servers: { driver: HostedService; fs: HostedService };
  /** The file server's connection: its byte counters show what passed through the file server. */
  fsNats: NatsConnection;
  /** Connects as one of the roles (closed by stop()). */
  connectAs(role: NatsRole): Promise<NatsConnection>;
  stop(): Promise<void>;
};

export async function startInProcessKernel(
  dataDir: string,
  options: { deadlineMs?: number; transfer?: TransferMode } = {},
): Promise<InProcessKernel> {
  const roles = await startRoleNats();
  const { nats, users } = roles;
  const connectAs = (role: NatsRole) => roles.connectAs(role);
  const stops: Array<() => Promise<unknown>> = [];
  try {
    const transfer = options.transfer ?? DEFAULT_TRANSFER;
    const shm = transfer === 'shm' ? new ShmSegments(await makeShmDir()) : undefined;
    if (shm) stops.push(() => removeShmDir(shm.dir));
    const driver = new StorageDriver({ chaos: new DriverChaos({ enabled: false }) });
    const driverServer = await startDriverServer(await connectAs('driver'), driver, {
      registry: new Registry(),
      bulk: await connectAs('driver'),
      ...(shm ? { shm } : {}),
    });
    stops.push(
      () => driverServer.stop(),
      () => driver.close(),
    );
    const fsNc = await connectAs('fs');
    const reader = new NatsBlockReader(fsNc, { metrics: createIpcMetrics(new Registry()) });
    const fileSystem = await FileSystem.mount(dataDir, reader);
    const fileServer = await startFileServer(fsNc, fileSystem, {
      registry: new Registry(),
      transfer: fileServerTransfer(transfer, reader),
    });
    stops.push(() => fileServer.stop());
    const gateway = await startGateway(await connectAs('gateway'), {
      port: 0,
      defaultMetrics: false,
      ...(shm ? { shm } : {}),
      ...(options.deadlineMs !== undefined ? { deadlineMs: options.deadlineMs } : {}),
    });
    stops.push(() => gateway.close(1000));
    return {
      nats,
      users,
      gateway,
      shm,
      servers: { driver: driverServer, fs: fileServer },
      fsNats: fsNc,
      connectAs,
      stop: async () => {
        for (const stop of stops.reverse()) await stop().catch(() => {});
        await roles.stop();
      },
    };
  } catch (err) {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    await roles.stop();
    throw err;
  }
}
