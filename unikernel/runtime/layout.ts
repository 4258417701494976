/** Where the build puts things: shared by the build, `kstyles unikernel` and the tests. */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXECUTABLE_NAME, POOL_WORKER_FILE } from './names.ts';

export { EXECUTABLE_NAME, POOL_WORKER_FILE };

/** unikernel/: the build output goes to its dist/. */
export const UNIKERNEL_DIR = fileURLToPath(new URL('..', import.meta.url));
/** unikernel/runtime/: the program's sources (main.ts, the pool's task, chaos-off.ts). */
export const RUNTIME_DIR = fileURLToPath(new URL('.', import.meta.url));
export const BUNDLE_FILE = 'kstyles-unikernel.cjs';
/** The directory inside the image that holds the executable and the pool worker. */
export const APP_DIR = 'app';
/** Non-root identity of the image (the "nonroot" convention of distroless images). */
export const IMAGE_UID = 65532;
export const IMAGE_TAG = 'kstyles-unikernel:latest';
export const CHAOS_IMAGE_TAG = 'kstyles-unikernel:chaos';

export type Flavor = 'production' | 'chaos';

export type BuildLayout = {
  flavor: Flavor;
  /** unikernel/dist, or unikernel/dist/chaos. */
  out: string;
  bundleDir: string;
  bundle: string;
  bundleWorker: string;
  rootfs: string;
  /** The executable inside the root filesystem. */
  rootfsExecutable: string;
  rootfsWorker: string;
  /** unikernel/dist/kstyles-unikernel: a symlink to the one in the root filesystem. */
  executable: string;
  imageJson: string;
  work: string;
};

export function buildLayout(flavor: Flavor, distDir = join(UNIKERNEL_DIR, 'dist')): BuildLayout {
  const out = flavor === 'chaos' ? join(distDir, 'chaos') : distDir;
  const bundleDir = join(out, 'bundle');
  const rootfs = join(out, 'rootfs');
  return {
    flavor,
    out,
    bundleDir,
    bundle: join(bundleDir, BUNDLE_FILE),
    bundleWorker: join(bundleDir, POOL_WORKER_FILE),
    rootfs,
    rootfsExecutable: join(rootfs, APP_DIR, EXECUTABLE_NAME),
    rootfsWorker: join(rootfs, APP_DIR, POOL_WORKER_FILE),
    executable: join(out, EXECUTABLE_NAME),
    imageJson: join(out, 'image.json'),
    work: join(out, 'work'),
  };
}
