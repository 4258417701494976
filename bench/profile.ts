/**
 * `kstyles bench --profile TARGET`: profiles every node process of one target (see cpu-profile-preload.mjs), loads it at a fixed rate, stops it gracefully so the
 * profiles are written, and summarises the top self-time functions of each process. The profiles
 * themselves go to OUT/profiles-TARGET/, for Chrome DevTools' Performance panel or any other viewer:
 * self time names the hot function, the call tree says who called it.
 */

import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { makeDirectory } from '../cli/kit/make-directory.ts';
import { REPO_ROOT } from '../cli/kit/repo.ts';
import { formatMicros } from '../load/units.ts';
import { freePort } from '../services/contract/http-server.ts';
import { benchLoad } from './load-run.ts';
import { PLANS } from './plan.ts';
import { startProcess, waitFor200 } from './procs.ts';
import { prepareCorpus } from './run-bench.ts';
import { READY_PATHS, TARGETS } from './targets.ts';

/** Starts the inspector's profiler in every node process of the target (see the file). */
const PRELOAD = path.join(REPO_ROOT, 'bench', 'cpu-profile-preload.mjs');

import { SIZES, type SizeKey, type TargetName } from './types.ts';

type CpuProfile = {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    hitCount?: number;
  }[];
  samples?: number[];
  timeDeltas?: number[];
  startTime: number;
  endTime: number;
};

export type ProfileEntry = { name: string; where: string; selfMs: number; share: number };
export type ProfileSummary = { totalMs: number; idleMs: number; top: ProfileEntry[] };

const IDLE = new Set(['(idle)']);

/**
 * Self time per function (summed over call sites), highest first; shares are of the non-idle time.
 * Samples in the first `skipMs` (start-up: module loading) are left out.
 */
export function summariseProfile(profile: CpuProfile, topN = 15, skipMs = 0): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  if (samples.length > 0) {
    // Each sample's time is the delta to the next sample.
    let at = 0;
    for (let i = 0; i < samples.length; i++) {
      at += deltas[i] ?? 0;
      if (at < skipMs * 1000) continue;
      const us = deltas[i + 1] ?? 0;
      self.set(samples[i]!, (self.get(samples[i]!) ?? 0) + us);
    }
  } else {
    const interval =
      (profile.endTime - profile.startTime) /
      Math.max(
        1,
        profile.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0),
      );
    for (const n of profile.nodes) self.set(n.id, (n.hitCount ?? 0) * interval);
  }
  const groups = new Map<string, ProfileEntry>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of self) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName || '(anonymous)';
    totalUs += us;
    if (IDLE.has(name)) {
      idleUs += us;
      continue;
    }
    const where = url
      ? `${url.replace(/^file:\/\//, '').replace(/^.*node_modules\//, 'node_modules/')}:${lineNumber + 1}`
      : '';
    const key = `${name}\u0000${where}`;
    const entry = groups.get(key) ?? { name, where, selfMs: 0, share: 0 };
    entry.selfMs += us / 1000;
    groups.set(key, entry);
  }
  const busyMs = (totalUs - idleUs) / 1000;
  const top = [...groups.values()]
    .sort((a, b) => b.selfMs - a.selfMs)
    .slice(0, topN)
    .map((e) => ({
      ...e,
      selfMs: Math.round(e.selfMs * 10) / 10,
      share: busyMs > 0 ? e.selfMs / busyMs : 0,
    }));
  return { totalMs: Math.round(totalUs / 1000), idleMs: Math.round(idleUs / 1000), top };
}

export type ProfileOptions = {
  target: TargetName;
  rate: number;
  durationMs: number;
  size: SizeKey;
  outDir: string;
  log: (text: string) => void;
};

/** Profiles one target under load; returns the Markdown summary it also writes to OUT/profile-TARGET.md, the profiles to OUT/profiles-TARGET/. */
export async function profileTarget(options: ProfileOptions): Promise<string> {
  const def = TARGETS[options.target];
  const workDir = path.join(os.tmpdir(), `kstyles-profile-${process.pid}`);
  const profDir = path.join(workDir, 'profiles');
  await mkdir(profDir, { recursive: true });
  try {
    const { dataDir, manifestDir: manifests } = await prepareCorpus(workDir);
    const manifestDir = manifests[options.size];
    const port = await freePort();
    const launch = def.launch(port, dataDir);
    if (!launch)
      throw new Error(`${options.target} is not a node process: nothing to profile with --cpu-prof`);
    const child = startProcess(options.target, launch.command, launch.args, {
      ...launch.env,
      NODE_OPTIONS: `--import=${PRELOAD}`,
      KSTYLES_BENCH_PROFILE_DIR: profDir,
    });
    const url = `http://127.0.0.1:${port}`;
    let loadStartWallMs = 0;
    try {
      await waitFor200(child, url, [...READY_PATHS], def.readyTimeoutMs);
      const load = (durationMs: number) =>
        benchLoad({
          name: options.target,
          url,
          corpusDir: manifestDir,
          rate: options.rate,
          durationMs,
          timeoutMs: 5000,
          connections: PLANS.full.connections,
        });
      // A warm-up first: modules loaded lazily by the first requests and JIT compilation stay out of the summary.
      options.log(
        `profiling ${options.target}: warm-up 3s, then ${options.rate} req/s of ${SIZES[options.size].label} for ${options.durationMs / 1000}s`,
      );
      await load(3000);
      loadStartWallMs = Date.now();
      const r = await load(options.durationMs);
      const t = r.targets[0]!;
      options.log(
        `load: ${t.outcomes.ok} ok of ${t.sent}, p50 ${formatMicros(t.latency.p50)}, p99 ${formatMicros(t.latency.p99)}`,
      );
    } finally {
      // A graceful stop, so that every process writes its profile on exit.
      await child.stop(15_000);
    }
    const files = (await readdir(profDir)).filter((f) => f.endsWith('.cpuprofile'));
    files.sort();
    const out: string[] = [
      `# CPU profile: ${options.target}`,
      '',
      `${options.rate} req/s of ${SIZES[options.size].label} for ${options.durationMs / 1000}s through the load generator after a 3 s warm-up; every node process of the target profiled through the inspector (a preload in NODE_OPTIONS, as \`node --cpu-prof\` would); start-up and warm-up are left out. One section per process that was busy. Self time per function, share of the process's non-idle time.`,
      '',
    ];
    for (const file of files) {
      const profile = JSON.parse(await readFile(path.join(profDir, file), 'utf8')) as CpuProfile & {
        wallStartMs?: number;
      };
      const summary = summariseProfile(
        profile,
        15,
        Math.max(0, loadStartWallMs - (profile.wallStartMs ?? loadStartWallMs)),
      );
      if (summary.totalMs - summary.idleMs < 50) continue;
      out.push(
        `## ${file} — busy ${summary.totalMs - summary.idleMs} ms of ${summary.totalMs} ms`,
        '',
        '| self | share | function | where |',
        '|--:|--:|---|---|',
      );
      for (const e of summary.top)
        out.push(
          `| ${e.selfMs.toFixed(0)} ms | ${(e.share * 100).toFixed(1)}% | \`${e.name}\` | ${e.where} |`,
        );
      out.push('');
    }
    if (files.length === 0)
      out.push(
        "No profile was written: the target's processes did not exit on SIGTERM (a SIGKILL writes nothing).",
      );
    const kept = path.join(options.outDir, `profiles-${options.target}`);
    if (files.length)
      out.push(`The profiles: ${kept}/ (open one in Chrome DevTools, Performance → Load profile).`);
    const text = `${out.join('\n')}\n`;
    makeDirectory(options.outDir);
    await rm(kept, { recursive: true, force: true });
    await mkdir(kept, { recursive: true });
    for (const file of files) await copyFile(path.join(profDir, file), path.join(kept, file));
    await writeFile(path.join(options.outDir, `profile-${options.target}.md`), text);
    return text;
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}
