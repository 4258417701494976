/**
 * The instrument's ceiling, end to end (load/README.md, 'The ceiling'): nginx with one worker pinned to
 * one core serves a corpus; `kstyles load --workers 1` pinned to another core sends small files at each
 * rate; every run's fell-behind windows, corrected p99, send-lag p99 and CPU per request are printed,
 * with wrk on the same core as the reference and the load average before and after each run.
 *
 *   npx tsx load/measure-ceiling.ts [--rates 5000,10000,15000] [--duration 8s] [--warmup 2s]
 *                                   [--generator-cpu 0] [--nginx-cpu 1] [--corpus DIR] [--profile DIR]
 *
 * --profile DIR writes a V8 CPU profile of every thread of each run there (node --cpu-prof). Needs
 * nginx and taskset (and wrk for the reference row): `apt-get install -y nginx wrk`.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { nginxConfig } from '../bench/references.ts';
import { KSTYLES_BIN } from '../cli/kit/repo.ts';
import { freePort } from '../services/contract/http-server.ts';
import { readManifest } from '../services/corpus/corpus.ts';
import type { LoadResults } from './types.ts';
import { formatMicros, parseDurationMs } from './units.ts';

const NGINX = '/usr/sbin/nginx';
const WRK = '/usr/bin/wrk';

const { values } = parseArgs({
  options: {
    rates: { type: 'string', default: '5000,10000,15000' },
    duration: { type: 'string', default: '8s' },
    warmup: { type: 'string', default: '2s' },
    'generator-cpu': { type: 'string', default: '0' },
    'nginx-cpu': { type: 'string', default: '1' },
    corpus: { type: 'string' },
    profile: { type: 'string' },
  },
});
const rates = values.rates.split(',').map(Number);
if (rates.some((r) => !(r > 0)) || parseDurationMs(values.duration) === null) {
  console.error('measure-ceiling: --rates takes numbers like 5000,10000 and --duration a duration like 8s');
  process.exit(2);
}
for (const bin of [NGINX, '/usr/bin/taskset']) {
  if (!existsSync(bin)) {
    console.error(`measure-ceiling: ${bin} is missing (apt-get install -y nginx wrk util-linux)`);
    process.exit(2);
  }
}

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

/** Runs a command to its end; resolves with its stdout (its stderr goes to ours when it fails). */
function runToEnd(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    child.stderr.on('data', (chunk) => {
      err += chunk;
    });
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 || code === 1 ? resolve(out) : reject(new Error(`${command} exited ${code}: ${err}${out}`)),
    );
  });
}

const work = await mkdtemp(path.join(os.tmpdir(), 'kstyles-ceiling-'));
// nginx's worker runs as another user unless told: it must be able to read the corpus in the temp dir.
await chmod(work, 0o755);
const corpusDir = values.corpus ?? path.join(work, 'corpus');
if (!values.corpus) await runToEnd(process.execPath, [KSTYLES_BIN, 'corpus', '--dir', corpusDir]);
const nginxDir = path.join(work, 'nginx');
await mkdir(nginxDir, { recursive: true });
const port = await freePort();
const asRoot = process.getuid?.() === 0 ? 'user root;\n' : '';
await writeFile(path.join(nginxDir, 'nginx.conf'), asRoot + nginxConfig(nginxDir, corpusDir, port));
const nginx = spawn(
  'taskset',
  ['-c', values['nginx-cpu'], NGINX, '-p', nginxDir, '-c', path.join(nginxDir, 'nginx.conf')],
  { stdio: 'ignore' },
);
const url = `http://127.0.0.1:${port}`;
try {
  for (let i = 0; ; i++) {
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (i > 100) throw new Error(`nginx did not answer on ${url}; see ${nginxDir}/error.log`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const manifest = await readManifest(corpusDir);
  const small = manifest.files.find((f) => !f.poison && f.path === 'bench/4k.bin') ?? manifest.files[0]!;
  console.log(
    `generator on CPU ${values['generator-cpu']}, nginx (1 worker) on CPU ${values['nginx-cpu']}, ${os.availableParallelism()} CPUs, ${os.cpus()[0]?.model ?? ''}, node ${process.version}`,
  );
  if (existsSync(WRK)) {
    const before = loadavg();
    const out = await runToEnd('taskset', [
      '-c',
      values['generator-cpu'],
      WRK,
      '-t1',
      '-c32',
      '-d5s',
      `${url}/files/${small.path}`,
    ]);
    const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)?.[1];
    console.log(`wrk -t1 -c32 -d5s (${small.path}): ${rps} req/s · load average ${before} → ${loadavg()}`);
  }
  console.log(
    '\n| rate | fell-behind windows | seconds behind | p50 | p99 (corrected) | send-lag p99 | event-loop p99 (worst second) | CPU µs/request | load average before → after |',
  );
  console.log('|--:|--:|--:|--:|--:|--:|--:|--:|---|');
  for (const rate of rates) {
    const out = path.join(work, `run-${rate}`);
    const profile = values.profile
      ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(values.profile, String(rate))]
      : [];
    const before = loadavg();
    await runToEnd('taskset', [
      '-c',
      values['generator-cpu'],
      process.execPath,
      ...profile,
      KSTYLES_BIN,
      'load',
      '--target',
      `nginx=${url}`,
      '--rate',
      String(rate),
      '--duration',
      values.duration,
      '--warmup',
      values.warmup,
      '--workers',
      '1',
      '--mix',
      'small',
      '--corpus',
      corpusDir,
      '--out',
      out,
    ]);
    const results = JSON.parse(await readFile(path.join(out, 'results.json'), 'utf8')) as LoadResults;
    const t = results.targets[0]!;
    const g = results.generator;
    const windows = g.warnings.filter((w) => w.startsWith('generator fell behind')).length;
    const behind = g.timeline.filter((s) => s.behind).length;
    const loop = Math.max(0, ...g.timeline.map((s) => s.eventLoopP99));
    console.log(
      `| ${rate.toLocaleString('en-US')} | ${windows} | ${behind} of ${g.timeline.length} | ${formatMicros(t.latency.p50)} | ${formatMicros(t.latency.p99)} | ${formatMicros(t.sendLag.p99)} | ${formatMicros(loop)} | ${g.cpu?.perRequestUs ?? '—'} | ${before} → ${loadavg()} |`,
    );
    const behindSeconds = g.timeline.filter((s) => s.behind);
    if (behindSeconds.length > 0)
      console.log(
        `  ↳ behind in second ${behindSeconds.map((s) => `${s.t} (send lag p99 ${formatMicros(s.sendLagP99)}, event loop p99 ${formatMicros(s.eventLoopP99)})`).join(', ')}`,
      );
    if (t.outcomes.ok !== t.sent)
      console.log(
        `  ↳ ${t.sent - t.outcomes.ok} of ${t.sent} requests were not ok: ${JSON.stringify(t.outcomes)}`,
      );
  }
  if (values.profile) console.log(`\nCPU profiles: ${path.resolve(values.profile)}/<rate>/`);
} finally {
  nginx.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  await rm(work, { recursive: true, force: true });
}
