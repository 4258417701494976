import type { FileService } from '../services/contract/file-service.ts';
import type { ChaosOptions } from '../services/driver/chaos.ts';
import { DriverChaos } from '../services/driver/chaos.ts';
import { StorageDriver } from '../services/driver/storage-driver.ts';
import { FileSystem } from '../services/fs/file-system.ts';

/** The monolithic composition: the file system calls the storage driver directly, in one address space. */
export async function openInProcessFileService(
  root: string,
  options: { chaos?: Partial<ChaosOptions>; maxOpenFiles?: number } = {},
): Promise<FileService & { driver: StorageDriver }> {
  const driver = new StorageDriver({
    chaos: new DriverChaos(options.chaos),
    ...(options.maxOpenFiles ? { maxOpenFiles: options.maxOpenFiles } : {}),
  });
  const fileSystem = await FileSystem.mount(root, driver);
  return Object.assign(fileSystem, { driver });
}
