/**
 * `mkdir -p` that always ends. Node 20's and 24's recursive mkdir never settles where the kernel answers
 * ENOENT for a child of a directory that exists (anywhere under /proc or /sys): it steps back to the
 * parent, finds it, tries the child again, at 100% CPU (seen here with `kstyles corpus --dir /proc/x`;
 * Node 26 answers ENOENT). Used for every directory a user names (--dir, --out, --data, traces);
 * directories below one it made are the program's own.
 */
import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';

const codeOf = (err: unknown) => (err as NodeJS.ErrnoException).code;

/** Creates `dir` and its missing parents one level at a time; the first level that fails throws its error. */
export function makeDirectory(dir: string, mode?: number): void {
  const missing: string[] = [];
  for (let at = path.resolve(dir); ; at = path.dirname(at)) {
    try {
      // The first level found: `dir` itself, or a parent (a file there fails the level below: ENOTDIR).
      if (!statSync(at).isDirectory()) {
        throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${dir}'`), { code: 'ENOTDIR' });
      }
      break;
    } catch (err) {
      if (codeOf(err) !== 'ENOENT') throw err;
    }
    missing.push(at);
    if (path.dirname(at) === at) break;
  }
  for (const level of missing.reverse()) {
    try {
      mkdirSync(level, mode === undefined ? undefined : { mode });
    } catch (err) {
      // Made by someone else meanwhile: a directory there is what was asked for.
      if (codeOf(err) !== 'EEXIST' || !statSync(level).isDirectory()) throw err;
    }
  }
}
