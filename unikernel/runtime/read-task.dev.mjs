// Development only: lets piscina's worker load the TypeScript task module. Worker threads do not inherit
// tsx's loader, so the worker registers it here first. The built image uses the bundled pool worker.
import { register } from 'tsx/esm/api';

register();
const task = await import('./read-task.ts');
export const read = task.read;
export const ping = task.ping;
