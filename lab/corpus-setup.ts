import { existsSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../cli/kit/repo.ts';
import { generateCorpus, MANIFEST_NAME } from '../services/corpus/corpus.ts';

/** Where the lab and the demo keep their corpus unless told otherwise. */
export const DEFAULT_DATA_DIR = path.join(REPO_ROOT, '.kstyles', 'corpus');

/** Uses the corpus in `dir`, writing it first (with progress) when the folder holds none yet. */
export async function ensureCorpus(dir: string, log: (line: string) => void): Promise<void> {
  if (existsSync(path.join(dir, MANIFEST_NAME))) return;
  log(`writing the corpus to ${dir} (once)…`);
  const started = performance.now();
  const manifest = await generateCorpus(dir, {
    onProgress: (written, total) => {
      if (process.stderr.isTTY) process.stderr.write(`\r  ${written}/${total} files`);
    },
  });
  if (process.stderr.isTTY) process.stderr.write('\n');
  log(
    `corpus ready: ${manifest.files.length} files, ${(manifest.totalBytes / 1048576).toFixed(1)} MiB in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
}
