/**
 * A small open-loop load for fault tests: `rate` GETs per second of mixed corpus files for
 * `durationMs`, each answer checked byte for byte against the manifest's sha256.
 */
import { createHash } from 'node:crypto';
import { openLoop } from '../../contract/testing/open-loop.ts';
import type { ManifestFile } from '../../corpus/corpus.ts';
import { encodeFilePath } from '../../corpus/corpus.ts';

export type LoadResult = {
  path: string;
  status: number;
  ok: boolean;
  ms: number;
  startedAt: number;
  error?: string;
};

export async function fetchChecked(
  baseUrl: string,
  file: ManifestFile,
  headers: Record<string, string> = {},
): Promise<LoadResult> {
  const startedAt = Date.now();
  try {
    const res = await fetch(`${baseUrl}/files/${encodeFilePath(file.path)}`, { headers });
    const body = Buffer.from(await res.arrayBuffer());
    const sha = createHash('sha256').update(body).digest('hex');
    const ok = res.status === 200 && body.length === file.size && sha === file.sha256;
    return {
      path: file.path,
      status: res.status,
      ok,
      ms: Date.now() - startedAt,
      startedAt,
      ...(ok ? {} : { error: body.toString('utf8', 0, 300) }),
    };
  } catch (err) {
    return {
      path: file.path,
      status: 0,
      ok: false,
      ms: Date.now() - startedAt,
      startedAt,
      error: describeFetchError(err),
    };
  }
}

/** A fetch failure with its cause (undici's "fetch failed" alone does not say ECONNRESET from ECONNREFUSED). */
function describeFetchError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const detail = [cause?.code, cause?.message].filter(Boolean).join(': ');
  return detail ? `${String(err)} (${detail})` : String(err);
}

/**
 * Fires `rate × durationMs` requests on schedule whether or not earlier ones have answered (open loop).
 * A request the loop could not send on time (a stalled event loop on a crowded machine) is sent late,
 * so the whole schedule is always sent.
 */
export function openLoopLoad(
  baseUrl: string,
  files: ManifestFile[],
  options: { rate: number; durationMs: number },
): Promise<LoadResult[]> {
  return openLoop((i) => fetchChecked(baseUrl, files[i % files.length]!), options);
}

/** The p-th percentile (nearest rank) of ascending latencies, 0 for none. */
export function percentileOf(sortedMs: readonly number[], p: number): number {
  return sortedMs[Math.min(sortedMs.length - 1, Math.floor((sortedMs.length * p) / 100))] ?? 0;
}

export function summarize(results: LoadResult[]): string {
  const failed = results.filter((r) => !r.ok);
  const ms = results.map((r) => r.ms).sort((a, b) => a - b);
  const pct = (p: number) => percentileOf(ms, p);
  return `${results.length} requests, ${failed.length} failed, p50 ${pct(50)} ms, p99 ${pct(99)} ms, max ${pct(100)} ms${
    failed.length ? `; first failures: ${JSON.stringify(failed.slice(0, 3))}` : ''
  }`;
}
