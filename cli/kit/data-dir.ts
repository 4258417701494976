import { statSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../args.ts';

/**
 * The data directory a command was given (--data or KSTYLES_DATA), resolved and checked before anything
 * starts, or a UsageError that names it and says how to make one.
 */
export function requireDataDir(command: string, dir: string | undefined): string {
  if (dir === undefined || dir === '') {
    throw new UsageError(
      `kstyles ${command}: --data DIR (or KSTYLES_DATA) is required. Run 'kstyles ${command} --help'.`,
    );
  }
  const data = path.resolve(dir);
  const hint = `create it with 'kstyles corpus --dir ${data}' or pass --data DIR (env KSTYLES_DATA)`;
  let isDirectory: boolean;
  try {
    isDirectory = statSync(data).isDirectory();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(
      code === 'ENOENT'
        ? `kstyles ${command}: data directory ${data} does not exist: ${hint}.`
        : `kstyles ${command}: cannot use data directory ${data} (${code ?? String(err)}).`,
    );
  }
  if (!isDirectory)
    throw new UsageError(`kstyles ${command}: data directory ${data} is not a directory: ${hint}.`);
  return data;
}
