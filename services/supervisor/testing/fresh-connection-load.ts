/**
 * A steady open-loop load in which every request opens its own TCP connection (no keep-alive), so that
 * each request tests whether a connection is accepted: a refused one fails with ECONNREFUSED, one cut
 * while in flight with ECONNRESET (or similar). For the tests of held sockets (held-socket.ts).
 */
import http from 'node:http';
import { openLoop } from '../../contract/testing/open-loop.ts';

export type ConnectionResult = {
  url: string;
  /** When the request was sent (ms since the epoch). */
  startedAt: number;
  /** 0 when the request failed before an answer. */
  status: number;
  body: Buffer;
  /** The error code (ECONNREFUSED, ECONNRESET, ...) or message of a failed request. */
  error?: string;
};

/** Longer than any test's outage: a request that waits this long failed for good. */
const REQUEST_TIMEOUT_MS = 30_000;

export function getFresh(url: string): Promise<ConnectionResult> {
  const startedAt = Date.now();
  return new Promise((resolve) => {
    const fail = (err: NodeJS.ErrnoException) =>
      resolve({ url, startedAt, status: 0, body: Buffer.alloc(0), error: err.code ?? err.message });
    const req = http.get(url, { agent: false, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.once('error', fail);
      res.once('end', () =>
        resolve({ url, startedAt, status: res.statusCode ?? 0, body: Buffer.concat(chunks) }),
      );
    });
    req.once('error', fail);
  });
}

/** `rate` requests per second for `durationMs`, the i-th to `urlOf(i)`, sent whether or not earlier ones answered. */
export function freshConnectionLoad(
  urlOf: (i: number) => string,
  options: { rate: number; durationMs: number },
): Promise<ConnectionResult[]> {
  return openLoop((i) => getFresh(urlOf(i)), options);
}

/** How many requests failed with each error code. */
export function errorCounts(results: ConnectionResult[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of results) if (r.error !== undefined) counts[r.error] = (counts[r.error] ?? 0) + 1;
  return counts;
}
