/**
 * Where things are in a clone: the repository root and the files the commands start or read. Not for
 * the unikernel's bundle, which has no clone around it (its own paths are in unikernel/runtime/layout.ts).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The `kstyles` command of this clone. */
export const KSTYLES_BIN = path.join(REPO_ROOT, 'bin', 'kstyles.js');
