/** Boot measurements: spawn → first HTTP 200, and resident memory once serving. */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { get } from 'node:http';
import { spreadOf } from '../../cli/kit/spread.ts';
import { freePort } from '../../services/contract/http-server.ts';
import { readRssBytes } from '../../services/contract/proc-stat.ts';

export { freePort };

/** One GET; resolves the status code, or null when nothing answers (yet). */
export function statusOf(url: string, timeoutMs = 2000): Promise<number | null> {
  return new Promise((resolve) => {
    const req = get(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
  });
}

/** Polls `url` every millisecond until it answers 200; fails after `timeoutMs` or when `child` exits. */
export async function waitFor200(url: string, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null)
      throw new Error(`process exited with ${child.exitCode} before ${url} answered`);
    if (child && child.signalCode !== null)
      throw new Error(`process died of ${child.signalCode} before ${url} answered`);
    if ((await statusOf(url, 1000)) === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
}

export async function stopChild(child: ChildProcess, timeoutMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(timer);
}

export type BootMeasurement = {
  /** Median over the runs, spawn → first 200 of `path`. */
  medianMs: number;
  runsMs: number[];
  /** Resident set size of the spawned process right after its first 200 (last run). */
  rssBytes: number | null;
  command: string;
  path: string;
};

export type BootCandidate = { name: string; command: string; args: string[]; cwd?: string };

/** One boot: spawn `command args… --port <free>`, time to the first 200 of `path`, RSS then, SIGTERM. */
async function bootOnce(
  candidate: BootCandidate,
  options: { path: string; env: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<{ ms: number; rss: number | null }> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(candidate.command, [...candidate.args, '--port', String(port)], {
    stdio: 'ignore',
    env: options.env,
    ...(candidate.cwd ? { cwd: candidate.cwd } : {}),
  });
  try {
    await waitFor200(`http://127.0.0.1:${port}${options.path}`, options.timeoutMs, child);
    const ms = Math.round((performance.now() - started) * 10) / 10;
    return { ms, rss: child.pid ? readRssBytes(child.pid) : null };
  } finally {
    await stopChild(child);
  }
}

/**
 * Boots every candidate `runs` times, interleaved (a, b, c, a, b, c…) so that load from elsewhere on the
 * machine falls on all of them alike. A candidate that fails to serve gets an error instead of numbers.
 */
export async function measureBoots(
  candidates: BootCandidate[],
  options: { path: string; runs: number; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<Record<string, BootMeasurement | { error: string }>> {
  const runs = new Map<string, number[]>(candidates.map((candidate) => [candidate.name, []]));
  const rss = new Map<string, number | null>();
  const errors = new Map<string, string>();
  for (let run = 0; run < options.runs; run++) {
    for (const candidate of candidates) {
      if (errors.has(candidate.name)) continue;
      try {
        const result = await bootOnce(candidate, {
          path: options.path,
          env: options.env ?? process.env,
          timeoutMs: options.timeoutMs ?? 20_000,
        });
        runs.get(candidate.name)!.push(result.ms);
        rss.set(candidate.name, result.rss);
      } catch (err) {
        errors.set(candidate.name, (err as Error).message);
      }
    }
  }
  const results: Record<string, BootMeasurement | { error: string }> = {};
  for (const candidate of candidates) {
    const error = errors.get(candidate.name);
    const runsMs = runs.get(candidate.name)!;
    results[candidate.name] = error
      ? { error }
      : {
          medianMs: spreadOf(runsMs)!.median,
          runsMs,
          rssBytes: rss.get(candidate.name) ?? null,
          command: [candidate.command, ...candidate.args].join(' '),
          path: options.path,
        };
  }
  return results;
}
