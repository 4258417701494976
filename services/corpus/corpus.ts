/**
 * A deterministic corpus: the same seed always gives the same paths and bytes, so every style, the load
 * generator and the tests can check each response against MANIFEST.json.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { makeDirectory } from '../../cli/kit/make-directory.ts';
import { ProcessError, ProcessErrorCode } from '../contract/errors.ts';

export type ManifestFile = { path: string; size: number; sha256: string; poison?: true };
export type NotServable = { path: string; reason: string; expectedStatus: number };
export type Manifest = {
  version: 1;
  seed: number;
  count: number;
  totalBytes: number;
  files: ManifestFile[];
  notServable: NotServable[];
};

export const MANIFEST_NAME = 'MANIFEST.json';
export const POISON_PATH = 'chaos/poison.bin';
export const CORPUS_DEFAULTS = { seed: 1, count: 200 } as const;

const KiB = 1024;
const MiB = 1024 * KiB;

/** Files every corpus has: edge sizes, the benchmark's size classes, awkward names, the poison file. */
const FIXED_FILES: ReadonlyArray<{ path: string; size: number }> = [
  { path: 'empty.txt', size: 0 },
  { path: 'one-byte.bin', size: 1 },
  { path: 'docs/hello world.txt', size: 1200 },
  { path: 'données/naïve café.txt', size: 3000 },
  { path: '日本語/ファイル 1.txt', size: 777 },
  { path: 'bench/4k.bin', size: 4 * KiB },
  { path: 'bench/64k.bin', size: 64 * KiB },
  { path: 'bench/1m.bin', size: MiB },
  { path: 'large/just-over-1mib.bin', size: MiB + 1 },
  { path: 'large/4mib-plus.bin', size: 4 * MiB + 7 },
  { path: 'data/records.json', size: 20 * KiB },
  { path: POISON_PATH, size: 4 * KiB },
];

const SYMLINKS: ReadonlyArray<{ path: string; target: string; servableAs?: string; reason?: string }> = [
  { path: 'links/inside.txt', target: '../docs/hello world.txt', servableAs: 'docs/hello world.txt' },
  { path: 'links/escape', target: '/etc/passwd', reason: 'symlink whose real path leaves the data root' },
  { path: 'links/escape-dir', target: '../..', reason: 'symlink to a directory outside the data root' },
  { path: 'links/loop-a', target: 'loop-b', reason: 'symlink loop' },
  { path: 'links/loop-b', target: 'loop-a', reason: 'symlink loop' },
];

const DIRS = ['a', 'b/c', 'b/c/d', 'media', 'notes', 'with space', 'ünïcödé', 'deep/er/and/deeper'];
const EXTENSIONS = ['.bin', '.txt', '.json', '.png', '.md', '.csv', '.html'];

/** sfc32: small, fast and good enough for test data; seeded through splitmix32 to avoid weak seeds. */
export function createRandom(seed: number): () => number {
  let s = seed >>> 0;
  const splitmix = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix();
  let b = splitmix();
  let c = splitmix();
  let d = splitmix();
  return () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) >>> 0;
    return t / 4294967296;
  };
}

const TEXT_ALPHABET = 'abcdefghijklmnopqrstuvwxyz      ,.\n';

/** File contents: readable text for text types, random bytes otherwise. */
export function fileBytes(path: string, size: number, random: () => number): Buffer {
  const bytes = Buffer.allocUnsafe(size);
  if (/\.(txt|md|csv|html|json)$/.test(path)) {
    for (let i = 0; i < size; i++)
      bytes[i] = TEXT_ALPHABET.charCodeAt(Math.floor(random() * TEXT_ALPHABET.length));
  } else {
    let i = 0;
    for (; i + 4 <= size; i += 4) bytes.writeUInt32LE(Math.floor(random() * 4294967296), i);
    for (; i < size; i++) bytes[i] = Math.floor(random() * 256);
  }
  return bytes;
}

/** Sizes of the generated files: mostly small, log-uniform up to 512 KiB, a few up to 3 MiB. */
function randomSize(random: () => number): number {
  if (random() < 0.05) return MiB + Math.floor(random() * 2 * MiB);
  return Math.floor(2 ** (random() * 19)) - 1;
}

export function planCorpus(seed: number, count: number): Array<{ path: string; size: number }> {
  if (!Number.isSafeInteger(count) || count < FIXED_FILES.length) {
    throw new RangeError(`count must be an integer of at least ${FIXED_FILES.length} (the fixed files)`);
  }
  const random = createRandom(seed);
  const files = [...FIXED_FILES];
  for (let i = files.length; i < count; i++) {
    const dir = DIRS[Math.floor(random() * DIRS.length)]!;
    const ext = EXTENSIONS[Math.floor(random() * EXTENSIONS.length)]!;
    const name = random() < 0.2 ? `file ${i} é${ext}` : `file-${i}${ext}`;
    files.push({ path: `${dir}/${name}`, size: randomSize(random) });
  }
  return files;
}

export type CorpusProgress = (written: number, total: number, bytes: number) => void;

export async function generateCorpus(
  dir: string,
  options: { seed?: number; count?: number; onProgress?: CorpusProgress } = {},
): Promise<Manifest> {
  const seed = options.seed ?? CORPUS_DEFAULTS.seed;
  const count = options.count ?? CORPUS_DEFAULTS.count;
  const plan = planCorpus(seed, count);
  await refuseForeignDirectory(dir);
  makeDirectory(dir);
  const files: ManifestFile[] = [];
  let totalBytes = 0;
  for (const [index, { path, size }] of plan.entries()) {
    // Each file's bytes come from its own stream, so changing the count never changes existing files.
    const bytes = fileBytes(path, size, createRandom(seed ^ hashString(path)));
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), bytes);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    files.push({ path, size, sha256, ...(path === POISON_PATH ? { poison: true as const } : {}) });
    totalBytes += size;
    options.onProgress?.(index + 1, plan.length, totalBytes);
  }
  const notServable: NotServable[] = [];
  for (const link of SYMLINKS) {
    const at = join(dir, link.path);
    await mkdir(dirname(at), { recursive: true });
    await rm(at, { force: true });
    await symlink(link.target, at);
    const target = files.find((file) => file.path === link.servableAs);
    if (target) files.push({ ...target, path: link.path });
    else notServable.push({ path: link.path, reason: link.reason ?? 'not servable', expectedStatus: 403 });
  }
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const manifest: Manifest = { version: 1, seed, count, totalBytes, files, notServable };
  await writeFile(join(dir, MANIFEST_NAME), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/** Overwriting a folder that is not a corpus could destroy someone's files. */
async function refuseForeignDirectory(dir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return;
  }
  if (entries.length > 0 && !entries.includes(MANIFEST_NAME)) {
    throw new Error(
      `${dir} is not empty and holds no ${MANIFEST_NAME}: choose a new or empty folder for the corpus`,
    );
  }
}

function hashString(text: string): number {
  let hash = 2166136261;
  for (const byte of Buffer.from(text, 'utf8')) hash = Math.imul(hash ^ byte, 16777619) >>> 0;
  return hash;
}

/** MANIFEST.json is missing, unreadable or not in the generator's format. */
export class ManifestError extends ProcessError {
  override readonly name = 'ManifestError';
  readonly code = ProcessErrorCode.MANIFEST_INVALID;
}

/** The URL path (below `/files/`) of a manifest path: each segment percent-encoded. */
export function encodeFilePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

/** Reads and checks DIR/MANIFEST.json; every failure says which field and how to fix it. */
export async function readManifest(dir: string): Promise<Manifest> {
  const file = join(dir, MANIFEST_NAME);
  const regenerate = `regenerate it with 'kstyles corpus --dir ${dir}'`;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ManifestError(
      `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)}): create it with 'kstyles corpus --dir ${dir}' or pass --corpus DIR`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ManifestError(`${file} is not valid JSON (${(err as Error).message}); ${regenerate}`);
  }
  const manifest = json as Partial<Manifest> | null;
  if (manifest?.version !== 1) throw new ManifestError(`${file} is not a version 1 manifest; ${regenerate}`);
  for (const field of ['seed', 'count', 'totalBytes'] as const) {
    if (typeof manifest[field] !== 'number')
      throw new ManifestError(`${file} has no number "${field}"; ${regenerate}`);
  }
  for (const field of ['files', 'notServable'] as const) {
    if (!Array.isArray(manifest[field]))
      throw new ManifestError(`${file} has no "${field}" array; ${regenerate}`);
  }
  for (const [i, f] of manifest.files!.entries()) {
    if (typeof f?.path !== 'string' || typeof f.size !== 'number' || typeof f.sha256 !== 'string') {
      throw new ManifestError(
        `${file}: files[${i}] needs string "path", number "size" and string "sha256"; ${regenerate}`,
      );
    }
  }
  return manifest as Manifest;
}
