// The entry of a sender thread. Worker threads do not inherit tsx's loader when `bin/kstyles.js`
// registered it in the main thread, so the thread registers it first, then runs the TypeScript.
import { register } from 'tsx/esm/api';

register();
await import('./sender.ts');
