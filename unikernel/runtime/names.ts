/** File names the program and its build agree on (no imports: the bundle includes this file). */
export const EXECUTABLE_NAME = 'kstyles-unikernel';
/** Piscina's worker loop and the read tasks, in one CommonJS file beside the executable (see build.ts). */
export const POOL_WORKER_FILE = 'kstyles-pool-worker.cjs';
