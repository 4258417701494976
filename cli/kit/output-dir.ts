import path from 'node:path';
import { UsageError } from '../args.ts';
import { makeDirectory } from './make-directory.ts';

/**
 * Creates the output directory a flag names before any work starts: a place that cannot be written to
 * fails at once with a UsageError, not after a run whose results it was to keep.
 */
export function outputDirectory(command: string, flag: string, dir: string): string {
  try {
    makeDirectory(dir);
  } catch (err) {
    throw new UsageError(
      `kstyles ${command}: ${flag} ${dir}: cannot create it (${(err as Error).message}); choose a directory you can write to`,
    );
  }
  return path.resolve(dir);
}
