/** Boot measurements: spawn → first HTTP 200, and resident memory once serving. */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

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

export function rssBytes(pid: number): number | null {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
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

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/**
 * Spawns `command args… --port <free>` `runs` times and times spawn → first 200 of `path`. The process
 * is stopped with SIGTERM after each run.
 */
export async function measureBoot(
  command: string,
  args: string[],
  options: { path: string; runs: number; env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number },
): Promise<BootMeasurement> {
  const runsMs: number[] = [];
  let rss: number | null = null;
  for (let run = 0; run < options.runs; run++) {
    const port = await freePort();
    const started = performance.now();
    const child = spawn(command, [...args, '--port', String(port)], {
      stdio: 'ignore',
      env: options.env ?? process.env,
      ...(options.cwd ? { cwd: options.cwd } : {}),
    });
    try {
      await waitFor200(`http://127.0.0.1:${port}${options.path}`, options.timeoutMs ?? 20_000, child);
      runsMs.push(Math.round((performance.now() - started) * 10) / 10);
      rss = child.pid ? rssBytes(child.pid) : null;
    } finally {
      await stopChild(child);
    }
  }
  return {
    medianMs: median(runsMs),
    runsMs,
    rssBytes: rss,
    command: [command, ...args].join(' '),
    path: options.path,
  };
}
