import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCorpus, type Manifest } from '../../corpus/corpus.ts';

export type TestCorpus = { dir: string; manifest: Manifest };

let shared: Promise<TestCorpus> | undefined;

/** One small corpus per test process (seed 7, 40 files: every fixed file plus random ones), removed at exit. */
export function testCorpus(): Promise<TestCorpus> {
  shared ??= (async () => {
    const base = mkdtempSync(join(tmpdir(), 'kstyles-corpus-'));
    process.once('exit', () => rmSync(base, { recursive: true, force: true }));
    const dir = join(base, 'data');
    return { dir, manifest: await generateCorpus(dir, { seed: 7, count: 40 }) };
  })();
  return shared;
}
