import { ProcessError, ProcessErrorCode } from '../services/contract/errors.ts';
import { encodeFilePath, type Manifest } from '../services/corpus/corpus.ts';

/** A file ready to request: its encoded URL path and what the body must be. */
export type RequestFile = { path: string; urlPath: string; size: number; sha256: string };

/** Upper bounds (exclusive) of the size classes used by --mix. */
export const SIZE_CLASSES = {
  small: 64 * 1024,
  medium: 1024 * 1024,
  large: Number.POSITIVE_INFINITY,
} as const;
export type SizeClass = keyof typeof SIZE_CLASSES;

export const DEFAULT_MIX = 'small=90,medium=9,large=1';

export class MixError extends ProcessError {
  override readonly name = 'MixError';
  readonly code = ProcessErrorCode.MIX_INVALID;
}

/** The request target of a manifest path. */
function requestFile(f: { path: string; size: number; sha256: string }): RequestFile {
  return { path: f.path, urlPath: `/files/${encodeFilePath(f.path)}`, size: f.size, sha256: f.sha256 };
}

/** The poison file (used only by the poison fault), or null when the corpus has none. */
export function poisonFile(manifest: Manifest): RequestFile | null {
  const f = manifest.files.find((file) => file.poison);
  return f ? requestFile(f) : null;
}

/** Parses --mix: `small`, `medium`, `large`, `all` (every file equally likely) or weights `small=80,large=20`. */
export function parseMix(text: string): { all: true } | { weights: Record<SizeClass, number> } {
  const trimmed = text.trim();
  if (trimmed === 'all') return { all: true };
  const weights: Record<SizeClass, number> = { small: 0, medium: 0, large: 0 };
  if (trimmed in SIZE_CLASSES) {
    weights[trimmed as SizeClass] = 1;
    return { weights };
  }
  for (const part of trimmed.split(',')) {
    const match = /^\s*(small|medium|large)\s*[=:]\s*(\d+(?:\.\d+)?)\s*$/.exec(part);
    if (!match) {
      throw new MixError(
        `--mix: cannot read '${part.trim()}'; use small, medium, large, all, or weights like 'small=90,medium=9,large=1' (small < 64 KiB ≤ medium < 1 MiB ≤ large)`,
      );
    }
    weights[match[1] as SizeClass] = Number(match[2]);
  }
  if (weights.small + weights.medium + weights.large <= 0)
    throw new MixError('--mix: the weights add up to 0');
  return { weights };
}

/** Deterministic 32-bit PRNG (mulberry32): the same seed gives every target the same request sequence. */
export function createPrng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function classOf(size: number): SizeClass {
  if (size < SIZE_CLASSES.small) return 'small';
  if (size < SIZE_CLASSES.medium) return 'medium';
  return 'large';
}

/** Chooses files for requests; build one per target from the same seed to give each the same sequence. */
export type RequestPicker = () => RequestFile;

export type RequestMix = {
  describe: string;
  files: number;
  picker(seed: number): RequestPicker;
};

export function buildRequestMix(manifest: Manifest, mixText: string = DEFAULT_MIX): RequestMix {
  const servable = manifest.files.filter((f) => !f.poison).map(requestFile);
  if (servable.length === 0) throw new MixError('the corpus manifest lists no servable files');
  const mix = parseMix(mixText);
  if ('all' in mix) {
    return {
      describe: 'all files, equally likely',
      files: servable.length,
      picker(seed) {
        const random = createPrng(seed);
        return () => servable[Math.floor(random() * servable.length)]!;
      },
    };
  }
  const byClass: Record<SizeClass, RequestFile[]> = { small: [], medium: [], large: [] };
  for (const f of servable) byClass[classOf(f.size)].push(f);
  const classes = (Object.keys(byClass) as SizeClass[]).filter((c) => mix.weights[c] > 0);
  const missing = classes.filter((c) => byClass[c].length === 0);
  const usable = classes.filter((c) => byClass[c].length > 0);
  if (usable.length === 0)
    throw new MixError(`--mix '${mixText}': the corpus has no ${missing.join('/')} files`);
  const total = usable.reduce((sum, c) => sum + mix.weights[c], 0);
  const cumulative = usable.map((c, i) => ({
    files: byClass[c],
    upTo: usable.slice(0, i + 1).reduce((sum, k) => sum + mix.weights[k], 0) / total,
  }));
  const describe = usable.map((c) => `${c} ${Math.round((mix.weights[c] / total) * 100)}%`).join(', ');
  return {
    describe: missing.length ? `${describe} (no ${missing.join('/')} files in the corpus)` : describe,
    files: usable.reduce((sum, c) => sum + byClass[c].length, 0),
    picker(seed) {
      const random = createPrng(seed);
      return () => {
        const r = random();
        const bucket = cumulative.find((b) => r < b.upTo) ?? cumulative[cumulative.length - 1]!;
        return bucket.files[Math.floor(random() * bucket.files.length)]!;
      };
    },
  };
}
