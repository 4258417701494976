import { createHash, type Hash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ManifestFile } from '../services/corpus/corpus.ts';
import type { RequestFile } from './request-mix.ts';

/** How bodies are checked: byte for byte against the local corpus file, or by sha256 against the manifest. */
export const VERIFY_MODES = ['bytes', 'sha256'] as const;
export type VerifyMode = (typeof VERIFY_MODES)[number];

/** The check of one 200 body, fed chunk by chunk. */
export type BodyCheck = {
  readonly mode: VerifyMode;
  update(chunk: Buffer): void;
  /** null when the body is the file; otherwise why it is not (data loss). */
  finish(): string | null;
};

export type BodyVerifier = {
  /** `bytes` when at least one file is compared byte for byte; `sha256` otherwise. */
  readonly mode: VerifyMode;
  /** Why this mode, for the report: e.g. "412 of 415 files held in memory (38 MiB) …". */
  readonly describe: string;
  begin(file: RequestFile): BodyCheck;
};

/** Bound of the in-memory copy of the corpus for byte comparison; files beyond it are hashed. */
export const DEFAULT_BYTE_CACHE_BYTES = 256 * 1024 * 1024;

function lengthMessage(got: number, want: number): string {
  return `wrong length: got ${got} bytes, manifest says ${want}`;
}

class Sha256Check implements BodyCheck {
  readonly mode = 'sha256';
  private readonly hash: Hash = createHash('sha256');
  private bytes = 0;
  constructor(private readonly file: RequestFile) {}
  update(chunk: Buffer): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
  }
  finish(): string | null {
    const digest = this.hash.digest('hex');
    if (this.bytes !== this.file.size) return lengthMessage(this.bytes, this.file.size);
    return digest === this.file.sha256 ? null : 'sha256 of the body differs from the manifest';
  }
}

class ByteCheck implements BodyCheck {
  readonly mode = 'bytes';
  private offset = 0;
  private mismatchAt = -1;
  constructor(private readonly expected: Buffer) {}
  update(chunk: Buffer): void {
    const start = this.offset;
    this.offset += chunk.length;
    if (this.mismatchAt >= 0 || this.offset > this.expected.length) return;
    if (this.expected.compare(chunk, 0, chunk.length, start, this.offset) !== 0) {
      let i = 0;
      while (chunk[i] === this.expected[start + i]) i++;
      this.mismatchAt = start + i;
    }
  }
  finish(): string | null {
    if (this.offset !== this.expected.length) return lengthMessage(this.offset, this.expected.length);
    return this.mismatchAt < 0
      ? null
      : `body differs from the corpus file at byte ${this.mismatchAt} (byte compare)`;
  }
}

/** Checks every body by sha256 against the manifest: for a corpus that is not on this machine. */
export function sha256Verifier(describe = 'sha256 of every body against the manifest'): BodyVerifier {
  return { mode: 'sha256', describe, begin: (file) => new Sha256Check(file) };
}

/**
 * How a run checks bodies, in a form every sender thread can use: the corpus files held for byte
 * compare live in one SharedArrayBuffer (read once, by the main thread), so N threads do not hold N
 * copies. `held` is null when every body is hashed.
 */
export type VerifierPlan = {
  readonly describe: string;
  readonly held: {
    buffer: SharedArrayBuffer;
    files: readonly [path: string, offset: number, size: number][];
  } | null;
};

/**
 * Reads the corpus files for byte compare into shared memory (smallest first, up to `cacheBytes`). A
 * file that is absent, of another size than the manifest's, or beyond the bound is checked by sha256
 * instead; its local copy is never trusted unless its size matches and its sha256 does too (checked once
 * when loading), so a stale corpus cannot hide data loss.
 */
export async function holdCorpus(
  corpusDir: string,
  files: readonly ManifestFile[],
  cacheBytes = DEFAULT_BYTE_CACHE_BYTES,
): Promise<VerifierPlan> {
  const bySize = files.filter((f) => !f.poison).sort((a, b) => a.size - b.size);
  const candidates: ManifestFile[] = [];
  let candidateBytes = 0;
  for (const f of bySize) {
    if (candidateBytes + f.size > cacheBytes) break;
    const st = await stat(join(corpusDir, f.path)).catch(() => null);
    if (!st?.isFile() || st.size !== f.size) continue;
    candidates.push(f);
    candidateBytes += f.size;
  }
  const buffer = new SharedArrayBuffer(candidateBytes);
  const held: [string, number, number][] = [];
  let offset = 0;
  let heldBytes = 0;
  for (const f of candidates) {
    const into = Buffer.from(buffer, offset, f.size);
    const read = await readInto(join(corpusDir, f.path), into);
    // A file that changed since it was listed keeps its (now wasted) room; it is hashed instead.
    if (read === f.size && createHash('sha256').update(into).digest('hex') === f.sha256) {
      held.push([f.path, offset, f.size]);
      heldBytes += f.size;
    }
    offset += f.size;
  }
  if (held.length === 0)
    return {
      describe: `sha256 of every body against the manifest (no matching corpus file in ${corpusDir})`,
      held: null,
    };
  const total = bySize.length;
  const mib = (heldBytes / (1024 * 1024)).toFixed(1);
  return {
    describe:
      held.length === total
        ? `byte compare with the ${total} corpus files held in memory (${mib} MiB)`
        : `byte compare with ${held.length} of ${total} corpus files held in memory (${mib} MiB); sha256 for the rest`,
    held: { buffer, files: held },
  };
}

/** Reads a whole file into `into` (its size); returns the bytes read, or -1 when it cannot be read. */
async function readInto(path: string, into: Buffer): Promise<number> {
  const handle = await open(path, 'r').catch(() => null);
  if (!handle) return -1;
  try {
    let done = 0;
    while (done < into.length) {
      const { bytesRead } = await handle.read(into, done, into.length - done, done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
  } finally {
    await handle.close();
  }
}

/** The verifier of a plan, in whichever thread the bodies arrive. */
export function verifierFrom(plan: VerifierPlan): BodyVerifier {
  if (!plan.held) return sha256Verifier(plan.describe);
  const { buffer } = plan.held;
  const held = new Map(
    plan.held.files.map(([path, offset, size]) => [path, Buffer.from(buffer, offset, size)]),
  );
  return {
    mode: 'bytes',
    describe: plan.describe,
    begin(file) {
      const expected = held.get(file.path);
      return expected ? new ByteCheck(expected) : new Sha256Check(file);
    },
  };
}

/** Compares bodies byte for byte with the local corpus files (see holdCorpus); hashes the rest. */
export async function byteVerifier(
  corpusDir: string,
  files: readonly ManifestFile[],
  cacheBytes = DEFAULT_BYTE_CACHE_BYTES,
): Promise<BodyVerifier> {
  return verifierFrom(await holdCorpus(corpusDir, files, cacheBytes));
}

/** The plan of a run: the one asked for, or byte compare when the corpus files are here. */
export async function planVerifier(
  corpusDir: string,
  files: readonly ManifestFile[],
  mode?: VerifyMode,
): Promise<VerifierPlan> {
  if (mode === 'sha256')
    return { describe: 'sha256 of every body against the manifest (--verify sha256)', held: null };
  return holdCorpus(corpusDir, files);
}
