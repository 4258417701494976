import { resolve } from 'node:path';
import { intFlag, parseCommand, UsageError } from '../../cli/args.ts';
import { CORPUS_DEFAULTS, generateCorpus } from './corpus.ts';

const spec = {
  name: 'corpus',
  summary: 'write deterministic test files and DIR/MANIFEST.json',
  usage: 'kstyles corpus --dir DIR [--seed N] [--count N]',
  flags: {
    dir: {
      type: 'string',
      value: 'DIR',
      env: 'KSTYLES_DATA',
      description: 'folder to write (new or a corpus)',
    },
    seed: {
      type: 'string',
      value: 'N',
      env: 'KSTYLES_SEED',
      default: String(CORPUS_DEFAULTS.seed),
      description: 'same seed, same bytes',
    },
    count: {
      type: 'string',
      value: 'N',
      default: String(CORPUS_DEFAULTS.count),
      description: 'number of files (at least 12)',
    },
  },
  details:
    'Writes files from 0 bytes to over 4 MiB in nested folders, names with spaces and non-ASCII characters,\n' +
    'chaos/poison.bin, and symlinks (one inside the root, escaping ones and a loop). MANIFEST.json lists\n' +
    'every servable file with its size and sha256, and the escaping symlinks as not servable.',
} as const;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand(spec, argv);
  if (!parsed) return 0;
  const { dir, seed, count } = parsed.flags;
  if (!dir)
    throw new UsageError(
      "kstyles corpus: --dir is required (or set KSTYLES_DATA). Run 'kstyles corpus --help'.",
    );
  const seedValue = intFlag('corpus', 'seed', seed, 0, 2 ** 32 - 1);
  const countValue = intFlag('corpus', 'count', count, 12, 100_000);
  const started = performance.now();
  const tty = process.stderr.isTTY;
  let manifest: Awaited<ReturnType<typeof generateCorpus>>;
  try {
    manifest = await generateCorpus(dir, {
      seed: seedValue,
      count: countValue,
      onProgress: (written, total) => {
        if (tty && (written % 10 === 0 || written === total))
          process.stderr.write(`\rcorpus: ${written}/${total} files`);
      },
    });
  } catch (err) {
    throw new UsageError(`kstyles corpus: ${(err as Error).message}`);
  }
  if (tty) process.stderr.write('\n');
  const mib = (manifest.totalBytes / 1024 / 1024).toFixed(1);
  process.stdout.write(
    `wrote ${manifest.files.length} servable files (${mib} MiB, seed ${seedValue}) and MANIFEST.json to ${resolve(dir)} in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
  );
  return 0;
}
