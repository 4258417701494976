/**
 * `npm run build:unikernel [-- --chaos] [--no-docker] [--no-measure]`: the unikernel's build chain, one
 * step at a time with timings:
 *
 *   1. esbuild: the program and the pool worker, each one CommonJS file (chaos compiled out unless --chaos)
 *   2. SEA blob: node --experimental-sea-config, run by the pinned Node LTS (scripts/node-lines.json,
 *      fetched by scripts/node-lts.mjs) whatever Node runs the build: the blob must come from the binary
 *      it is injected into
 *   3. executable: copy that node, strip it (before injecting: stripping after removes the app), postject
 *   4. rootfs: the executable, the pool worker, exactly the libraries ldd names and the loader,
 *      /etc/passwd and /etc/group for the non-root user, empty /tmp and /data mount points
 *   5. image: docker build of unikernel/build/Dockerfile (FROM scratch), when a Docker engine answers
 *   6. measure: rootfs bytes and files, no shell, no setuid, boot to first 200 and RSS (and the monolith's)
 *
 * Output: unikernel/dist/ (production) or unikernel/dist/chaos/; image.json records everything.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { REPO_ROOT as REPO } from '../../cli/kit/repo.ts';
import { type BundleInventory, bundleInventoryOf } from '../../services/contract/code-inventory.ts';
import { generateCorpus } from '../../services/corpus/corpus.ts';
import {
  APP_DIR,
  type BuildLayout,
  buildLayout,
  CHAOS_IMAGE_TAG,
  EXECUTABLE_NAME,
  type Flavor,
  IMAGE_TAG,
  IMAGE_UID,
  POOL_WORKER_FILE,
  RUNTIME_DIR,
} from '../runtime/layout.ts';
import { type BootCandidate, type BootMeasurement, measureBoots } from './measure.ts';

const BUILD_DIR = fileURLToPath(new URL('.', import.meta.url));
export const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
/** Strings only the fault-injection code contains: the production bundle must have none of them. */
export const CHAOS_MARKERS = ['driver panic', 'injected driver error', 'chaos/poison.bin'] as const;
/** Boots per candidate: the median of these is reported. */
const BOOT_RUNS = 9;
const SHELL_NAMES = new Set(['sh', 'bash', 'dash', 'ash', 'zsh', 'busybox', 'toybox']);
/** The Node LTS line the executable embeds: supported, unlike an end-of-life Node that may run the build. */
export const EMBEDDED_NODE_LINE = '24';
const NODE_LINES = join(REPO, 'scripts', 'node-lines.json');

/** The pinned version of `line` in scripts/node-lines.json, without the leading 'v'. */
export function pinnedNodeVersion(line: string): string {
  const lines = JSON.parse(readFileSync(NODE_LINES, 'utf8')) as Record<string, { version?: string }>;
  const version = lines[line]?.version;
  if (!version) throw new Error(`scripts/node-lines.json pins no Node line "${line}": add it there`);
  return version;
}

/**
 * The pinned Node binary of `line`, fetched from the npm registry and integrity-checked by
 * scripts/node-lts.mjs (run as a child: it exits on failure, with the reason on stderr).
 */
function embeddedNode(line: string): string {
  const result = spawnSync(process.execPath, [join(REPO, 'scripts', 'node-lts.mjs'), line], {
    encoding: 'utf8',
  });
  if (result.status !== 0) {
    throw new Error(
      `the pinned Node ${line} binary is not available: ${(result.stderr || result.error?.message || '').trim()}`,
    );
  }
  const node = join(result.stdout.trim(), 'node');
  const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
  const pinned = pinnedNodeVersion(line);
  if (version !== `v${pinned}`) throw new Error(`${node} says ${version}, not the pinned v${pinned}`);
  return node;
}

export type RootfsFile = { path: string; bytes: number; mode: string };

export type ImageReport = {
  flavor: Flavor;
  builtAt: string;
  /** The Node version embedded in the executable (the pinned LTS), without the leading 'v'. */
  node: string;
  /** The Node that ran the build (esbuild, postject): not part of the image. */
  buildNode: string;
  steps: Array<{ step: string; ms: number }>;
  bundleBytes: {
    program: number;
    poolWorker: number;
    /**
     * What the tracing SDK (services/telemetry/sdk.ts and the OpenTelemetry packages it loads) adds to
     * each file: the difference to the same bundle with sdk.ts left out. The SDK is bundled but not
     * evaluated unless the environment names an exporter.
     */
    tracingSdk: { program: number; poolWorker: number };
  };
  /** Modules, bytes and npm packages in the program and pool-worker bundles (esbuild metafile). */
  bundle: BundleInventory;
  executableBytes: number;
  unstrippedNodeBytes: number;
  rootfs: { bytes: number; files: number; list: RootfsFile[] };
  shell: { present: boolean; found: string[] };
  setuidFiles: string[];
  docker: { tag: string; sizeBytes: number } | { tag: null; reason: string };
  boot: {
    unikernel: BootMeasurement | null;
    unikernelBundle: BootMeasurement | null;
    monolith: BootMeasurement | null;
    monolithReason?: string;
    reason?: string;
    /** The machine's 1-minute load average around the boots: the numbers mean little on a busy machine. */
    loadAverageBefore?: number;
    loadAverageAfter?: number;
    cores?: number;
  };
};

let quiet = false;

function log(message: string): void {
  if (!quiet) process.stdout.write(`${message}\n`);
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

async function step<T>(report: ImageReport, name: string, action: () => Promise<T> | T): Promise<T> {
  const number = report.steps.length + 1;
  log(`[${number}] ${name} …`);
  const started = performance.now();
  const result = await action();
  const ms = Math.round(performance.now() - started);
  report.steps.push({ step: name, ms });
  log(`[${number}] ${name}: done in ${(ms / 1000).toFixed(2)} s`);
  return result;
}

/** esbuild plugin: the tracing SDK left out (sdk.ts as an empty module), to measure what it adds. */
const withoutTracingSdk: esbuild.Plugin = {
  name: 'without-tracing-sdk',
  setup(build) {
    const sdkModule = join(REPO, 'services', 'telemetry', 'sdk.ts');
    build.onResolve({ filter: /(^|\/)sdk\.ts$/ }, (args) =>
      resolve(args.resolveDir, args.path) === sdkModule
        ? { path: sdkModule, namespace: 'left-out' }
        : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'left-out' }, () => ({ contents: 'export {};', loader: 'js' }));
  },
};

/** esbuild plugin: the driver's `./chaos.ts` becomes the inert stand-in (production build only). */
const chaosCompiledOut: esbuild.Plugin = {
  name: 'chaos-compiled-out',
  setup(build) {
    const chaosModule = join(REPO, 'services', 'driver', 'chaos.ts');
    build.onResolve({ filter: /(^|\/)chaos\.ts$/ }, (args) =>
      resolve(args.resolveDir, args.path) === chaosModule
        ? { path: join(RUNTIME_DIR, 'chaos-off.ts') }
        : undefined,
    );
  },
};

/**
 * esbuild plugin: piscina starts its workers from `<its dir>/worker.js`. Bundled, "its dir" is the
 * directory of the executable, and a `.js` file there would be read as an ES module whenever a
 * package.json with "type": "module" sits above it (as in this repository). The worker file is named
 * `.cjs` instead, and the pool loads its tasks from the same file.
 */
const piscinaWorkerName: esbuild.Plugin = {
  name: 'piscina-worker-name',
  setup(build) {
    build.onLoad({ filter: /piscina[/\\]dist[/\\]index\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      const needle = "'worker.js'";
      if (source.split(needle).length !== 2) {
        throw new Error(`piscina's index.js no longer names ${needle} exactly once: update build.ts`);
      }
      return { contents: source.replace(needle, JSON.stringify(POOL_WORKER_FILE)), loader: 'js' };
    });
  },
};

async function bundle(layout: BuildLayout, report: ImageReport): Promise<void> {
  rmSync(layout.bundleDir, { recursive: true, force: true });
  mkdirSync(layout.bundleDir, { recursive: true });
  const chaos = layout.flavor === 'chaos';
  const common: esbuild.BuildOptions = {
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    minifySyntax: true,
    minifyWhitespace: true,
    legalComments: 'none',
    define: {
      'process.env.KSTYLES_BUILD_CHAOS': JSON.stringify(String(chaos)),
      'process.env.KSTYLES_BUILD_BUNDLED': '"true"',
    },
    // piscina's optional thread-priority helper: absent, piscina skips it.
    external: ['@napi-rs/nice'],
    mainFields: ['module', 'main'],
    plugins: chaos ? [piscinaWorkerName] : [chaosCompiledOut, piscinaWorkerName],
    logLevel: 'warning',
    // main.ts reads import.meta.url only on its TypeScript branch, which the define above removes.
    logOverride: { 'empty-import-meta': 'silent' },
  };
  // One file is both piscina's worker loop and the task module, so the two share piscina's private
  // symbols and Piscina.move() in a task really transfers the buffer instead of copying it.
  const piscinaWorker = join(REPO, 'node_modules', 'piscina', 'dist', 'worker.js');
  const worker: esbuild.BuildOptions = {
    ...common,
    stdin: {
      contents: `require(${JSON.stringify(piscinaWorker)});\nmodule.exports = require(${JSON.stringify(join(RUNTIME_DIR, 'read-task.ts'))});\n`,
      resolveDir: RUNTIME_DIR,
      loader: 'js',
    },
    outfile: layout.bundleWorker,
  };
  const program: esbuild.BuildOptions = {
    ...common,
    entryPoints: [join(RUNTIME_DIR, 'main.ts')],
    outfile: layout.bundle,
  };
  // First pass: what the bundles hold (esbuild's metafile; it writes the worker as it stays). The
  // program then carries that inventory as a constant, for its /metrics (the Security row): to V8 a
  // bundle is a single script.
  const metafiles = await Promise.all(
    [program, worker].map(async (entry) => (await esbuild.build({ ...entry, metafile: true })).metafile!),
  );
  report.bundle = bundleInventoryOf(metafiles);
  const inventoried: esbuild.BuildOptions = {
    ...program,
    define: {
      ...common.define,
      'process.env.KSTYLES_BUILD_BUNDLE_INVENTORY': JSON.stringify(JSON.stringify(report.bundle)),
    },
  };
  await esbuild.build(inventoried);
  const withoutSdk = async (options: esbuild.BuildOptions) => {
    const result = await esbuild.build({
      ...options,
      write: false,
      plugins: [withoutTracingSdk, ...(options.plugins ?? [])],
    });
    return result.outputFiles![0]!.contents.byteLength;
  };
  const bytes = { program: statSync(layout.bundle).size, poolWorker: statSync(layout.bundleWorker).size };
  report.bundleBytes = {
    ...bytes,
    tracingSdk: {
      program: bytes.program - (await withoutSdk(inventoried)),
      poolWorker: bytes.poolWorker - (await withoutSdk(worker)),
    },
  };
  if (!chaos) {
    for (const file of [layout.bundle, layout.bundleWorker]) {
      const text = readFileSync(file, 'utf8');
      const found = CHAOS_MARKERS.filter((marker) => text.includes(marker));
      if (found.length > 0)
        throw new Error(`${file} still contains fault-injection code (${found.join(', ')})`);
    }
  }
  log(
    `    program ${(report.bundleBytes.program / 1024).toFixed(0)} KiB, pool worker ${(report.bundleBytes.poolWorker / 1024).toFixed(0)} KiB (the tracing SDK ${(report.bundleBytes.tracingSdk.program / 1024).toFixed(0)} and ${(report.bundleBytes.tracingSdk.poolWorker / 1024).toFixed(0)} KiB of them), chaos ${chaos ? 'compiled in' : 'compiled out'}`,
  );
  const { own, npm, packages } = report.bundle;
  log(
    `    inside: ${own.modules} own modules, ${npm.modules} modules of ${packages.length} npm packages (${packages.join(', ')})`,
  );
}

/** Runs a build tool; its output is shown only when it fails. */
function quietly(command: string, args: string[]): void {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.error) throw new Error(`${command} could not run: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} failed (exit ${result.status}):\n${result.stderr}${result.stdout}`,
    );
  }
}

function seaBlob(layout: BuildLayout, node: string): string {
  const blob = join(layout.work, 'sea-prep.blob');
  const config = join(layout.work, 'sea-config.json');
  writeFileSync(
    config,
    JSON.stringify({ main: layout.bundle, output: blob, disableExperimentalSEAWarning: true }, null, 2),
  );
  quietly(node, ['--experimental-sea-config', config]);
  return blob;
}

function executable(layout: BuildLayout, node: string, blob: string, report: ImageReport): void {
  const exe = join(layout.work, EXECUTABLE_NAME);
  rmSync(exe, { force: true });
  copyFileSync(node, exe);
  chmodSync(exe, 0o755);
  report.unstrippedNodeBytes = statSync(exe).size;
  quietly('strip', [exe]);
  log(`    ${node} ${mib(report.unstrippedNodeBytes)} → stripped ${mib(statSync(exe).size)}`);
  // postject warns about unnamed .note sections of the stripped binary; only a failure is worth showing.
  quietly(process.execPath, [
    join(REPO, 'node_modules', 'postject', 'dist', 'cli.js'),
    exe,
    'NODE_SEA_BLOB',
    blob,
    '--sentinel-fuse',
    SEA_FUSE,
  ]);
  report.executableBytes = statSync(exe).size;
  log(`    ${EXECUTABLE_NAME} ${mib(report.executableBytes)} (blob injected)`);
}

/** The libraries the dynamic linker would load for `file`, as ldd names them, plus the loader. */
export function sharedLibraries(file: string): string[] {
  const output = execFileSync('ldd', [file], { encoding: 'utf8' });
  const libraries: string[] = [];
  for (const line of output.split('\n')) {
    const arrow = /=>\s+(\/\S+)/.exec(line);
    const bare = /^\s*(\/\S+)\s+\(/.exec(line);
    const path = arrow?.[1] ?? bare?.[1];
    if (path) libraries.push(path);
    else if (/=> not found/.test(line))
      throw new Error(`ldd cannot find a library of ${file}: ${line.trim()}`);
  }
  return libraries;
}

function rootfs(layout: BuildLayout): void {
  const root = layout.rootfs;
  removeTree(root);
  const exe = join(layout.work, EXECUTABLE_NAME);
  const put = (from: string, to: string, mode: number) => {
    const target = join(root, to);
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(realpathSync(from), target);
    chmodSync(target, mode);
  };
  const libraries = sharedLibraries(exe);
  // Moved, not copied: the work copy is 83 MiB nobody needs twice.
  mkdirSync(dirname(layout.rootfsExecutable), { recursive: true });
  renameSync(exe, layout.rootfsExecutable);
  chmodSync(layout.rootfsExecutable, 0o555);
  put(layout.bundleWorker, join(APP_DIR, POOL_WORKER_FILE), 0o444);
  for (const library of libraries) put(library, library, library.includes('ld-linux') ? 0o555 : 0o444);
  mkdirSync(join(root, 'etc'));
  writeFileSync(
    join(root, 'etc', 'passwd'),
    `root:x:0:0:root:/:/nonexistent\nnonroot:x:${IMAGE_UID}:${IMAGE_UID}:kstyles:/nonexistent:/nonexistent\n`,
    { mode: 0o444 },
  );
  writeFileSync(join(root, 'etc', 'group'), `root:x:0:\nnonroot:x:${IMAGE_UID}:\n`, { mode: 0o444 });
  // Mount points: /tmp gets a tmpfs (the root filesystem is read-only), /data the corpus.
  mkdirSync(join(root, 'tmp'), { mode: 0o1777 });
  chmodSync(join(root, 'tmp'), 0o1777);
  mkdirSync(join(root, 'data'), { mode: 0o555 });
  for (const dir of walk(root).filter((entry) => entry.directory))
    chmodSync(join(root, dir.path), dir.path === 'tmp' ? 0o1777 : 0o555);
  chmodSync(root, 0o755);
  rmSync(layout.executable, { force: true });
  symlinkSync(relative(layout.out, layout.rootfsExecutable), layout.executable);
}

/**
 * Removes a tree the build wrote, read-only directories of a root filesystem included (without root
 * privileges, files in a 0555 directory cannot be unlinked until it is writable again).
 */
export function removeTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const entry of walk(dir)) {
    if (entry.directory) chmodSync(join(dir, entry.path), 0o755);
  }
  chmodSync(dir, 0o755);
  rmSync(dir, { recursive: true, force: true });
}

type WalkEntry = { path: string; directory: boolean; bytes: number; mode: number; symlink: boolean };

export function walk(root: string, dir = ''): WalkEntry[] {
  const entries: WalkEntry[] = [];
  for (const name of readdirSync(join(root, dir)).sort()) {
    const path = dir ? `${dir}/${name}` : name;
    const info = lstatSync(join(root, path));
    entries.push({
      path,
      directory: info.isDirectory(),
      bytes: info.size,
      mode: info.mode,
      symlink: info.isSymbolicLink(),
    });
    if (info.isDirectory()) entries.push(...walk(root, path));
  }
  return entries;
}

/** The facts about a root filesystem that the image promises: its files, no shell, no setuid bits. */
export function inspectRootfs(root: string): Pick<ImageReport, 'rootfs' | 'shell' | 'setuidFiles'> {
  const entries = walk(root);
  const files = entries.filter((entry) => !entry.directory);
  const shells = entries
    .filter((entry) => SHELL_NAMES.has(entry.path.split('/').pop()!))
    .map((entry) => `/${entry.path}`);
  return {
    rootfs: {
      bytes: files.reduce((sum, file) => sum + file.bytes, 0),
      files: files.length,
      list: files.map((file) => ({
        path: `/${file.path}`,
        bytes: file.bytes,
        mode: (file.mode & 0o7777).toString(8),
      })),
    },
    shell: { present: shells.length > 0, found: shells },
    setuidFiles: entries.filter((entry) => (entry.mode & 0o6000) !== 0).map((entry) => `/${entry.path}`),
  };
}

export function dockerAvailable(): { ok: true } | { ok: false; reason: string } {
  const result = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  if (result.error) return { ok: false, reason: `docker client not runnable: ${result.error.message}` };
  if (result.status !== 0) {
    return {
      ok: false,
      reason: `no Docker engine answers (docker info: ${(result.stderr || result.stdout).trim().split('\n').pop()})`,
    };
  }
  return { ok: true };
}

/** docker build with the legacy builder (this machine's docker has no buildx), context = the flavor's out dir. */
export function dockerBuild(layout: BuildLayout, tag: string): void {
  const result = spawnSync(
    'docker',
    ['build', '-q', '-f', join(BUILD_DIR, 'Dockerfile'), '-t', tag, layout.out],
    {
      encoding: 'utf8',
      env: { ...process.env, DOCKER_BUILDKIT: '0' },
    },
  );
  if (result.status !== 0) throw new Error(`docker build failed:\n${result.stderr}${result.stdout}`);
}

function image(layout: BuildLayout, report: ImageReport, tag: string): void {
  const docker = dockerAvailable();
  if (!docker.ok) {
    report.docker = { tag: null, reason: docker.reason };
    log(`    SKIPPED: ${docker.reason}`);
    return;
  }
  // The context is the out dir: keep the bulky intermediate files out of it.
  writeFileSync(join(layout.out, '.dockerignore'), '*\n!rootfs\n');
  dockerBuild(layout, tag);
  const size = Number(
    execFileSync('docker', ['image', 'inspect', '-f', '{{.Size}}', tag], { encoding: 'utf8' }).trim(),
  );
  report.docker = { tag, sizeBytes: size };
  log(`    ${tag}: ${mib(size)}`);
}

async function measure(layout: BuildLayout, report: ImageReport): Promise<void> {
  const facts = inspectRootfs(layout.rootfs);
  Object.assign(report, facts);
  log(
    `    rootfs: ${facts.rootfs.files} files, ${mib(facts.rootfs.bytes)}; shell: ${facts.shell.present ? facts.shell.found.join(', ') : 'none'}; setuid: ${facts.setuidFiles.length || 'none'}`,
  );
  if (facts.shell.present || facts.setuidFiles.length > 0)
    throw new Error('the root filesystem has a shell or setuid files');
  const base = await mkdtemp(join(tmpdir(), 'kstyles-boot-'));
  try {
    const data = join(base, 'data');
    await generateCorpus(data, { seed: 1, count: 12 });
    const path = '/files/bench/4k.bin';
    const candidates: BootCandidate[] = [
      { name: 'unikernel', command: layout.rootfsExecutable, args: ['--data', data] },
      { name: 'unikernelBundle', command: process.execPath, args: [layout.bundle, '--data', data] },
    ];
    const monolithCli = join(REPO, 'monolith', 'cli.ts');
    if (existsSync(monolithCli)) {
      candidates.push({
        name: 'monolith',
        command: process.execPath,
        args: [join(REPO, 'bin', 'kstyles.js'), 'monolith', '--data', data],
        cwd: REPO,
      });
    } else {
      report.boot.monolithReason =
        'monolith/cli.ts does not exist yet (issue #3): nothing to compare against';
    }
    report.boot.loadAverageBefore = loadavg()[0]!;
    const results = await measureBoots(candidates, {
      path,
      runs: BOOT_RUNS,
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    report.boot.loadAverageAfter = loadavg()[0]!;
    report.boot.cores = availableParallelism();
    const labels: Record<string, string> = {
      unikernel: 'single executable',
      unikernelBundle: 'node bundle.cjs',
      monolith: 'monolith (node bin/kstyles.js monolith)',
    };
    for (const [name, result] of Object.entries(results)) {
      if ('error' in result) {
        if (name === 'monolith') report.boot.monolithReason = `the monolith did not serve: ${result.error}`;
        else throw new Error(`boot measurement of ${labels[name]} failed: ${result.error}`);
        continue;
      }
      report.boot[name as 'unikernel' | 'unikernelBundle' | 'monolith'] = result;
      log(
        `    boot, ${labels[name]}: median ${result.medianMs} ms to first 200 (${result.runsMs.join(', ')}), RSS ${mib(result.rssBytes ?? 0)}`,
      );
    }
    if (report.boot.monolithReason) log(`    boot, monolith: not measured (${report.boot.monolithReason})`);
    log(
      `    load average (1 min) ${report.boot.loadAverageBefore.toFixed(1)} → ${report.boot.loadAverageAfter.toFixed(1)} on ${report.boot.cores} cores`,
    );
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

export type BuildOptions = {
  flavor: Flavor;
  /** Where the flavor's dist lives (default unikernel/dist; the chaos flavor goes to <dist>/chaos). */
  distDir?: string;
  docker: boolean;
  /** Image tag (default kstyles-unikernel:latest, or :chaos). */
  tag?: string;
  measure: boolean;
  quiet?: boolean;
};

export function parseBuildArgs(argv: string[]): BuildOptions {
  const known = new Set(['--chaos', '--no-docker', '--no-measure', '--out', '--tag']);
  for (const arg of argv) {
    if (arg.startsWith('--') && !known.has(arg)) {
      throw new Error(`unknown flag ${arg}; use --chaos, --no-docker, --no-measure, --out DIR, --tag T`);
    }
  }
  const value = (flag: string) => {
    const at = argv.indexOf(flag);
    return at === -1 ? undefined : argv[at + 1];
  };
  const distDir = value('--out');
  const tag = value('--tag');
  return {
    flavor: argv.includes('--chaos') ? 'chaos' : 'production',
    docker: !argv.includes('--no-docker'),
    measure: !argv.includes('--no-measure'),
    ...(distDir ? { distDir: resolve(distDir) } : {}),
    ...(tag ? { tag } : {}),
  };
}

export async function build(options: BuildOptions): Promise<ImageReport> {
  quiet = options.quiet ?? false;
  const { flavor } = options;
  const layout = buildLayout(flavor, options.distDir);
  const report: ImageReport = {
    flavor,
    builtAt: new Date().toISOString(),
    node: pinnedNodeVersion(EMBEDDED_NODE_LINE),
    buildNode: process.version,
    steps: [],
    bundleBytes: { program: 0, poolWorker: 0, tracingSdk: { program: 0, poolWorker: 0 } },
    bundle: { own: { modules: 0, bytes: 0 }, npm: { modules: 0, bytes: 0 }, packages: [] },
    executableBytes: 0,
    unstrippedNodeBytes: 0,
    rootfs: { bytes: 0, files: 0, list: [] },
    shell: { present: false, found: [] },
    setuidFiles: [],
    docker: { tag: null, reason: 'not built' },
    boot: { unikernel: null, unikernelBundle: null, monolith: null },
  };
  log(`kstyles unikernel build (${flavor}) → ${relative(REPO, layout.out)}/`);
  const started = performance.now();
  mkdirSync(layout.work, { recursive: true });
  await step(report, 'esbuild bundle (CommonJS, platform node)', () => bundle(layout, report));
  const node = await step(report, `Node ${report.node} (pinned, from the npm registry)`, () =>
    embeddedNode(EMBEDDED_NODE_LINE),
  );
  const blob = await step(report, `SEA blob (node ${report.node} --experimental-sea-config)`, () =>
    seaBlob(layout, node),
  );
  await step(report, `single executable (copy node ${report.node}, strip, postject)`, () =>
    executable(layout, node, blob, report),
  );
  await step(report, 'root filesystem (executable, pool worker, ldd libraries, /etc, /tmp)', () =>
    rootfs(layout),
  );
  const tag = options.tag ?? (flavor === 'chaos' ? CHAOS_IMAGE_TAG : IMAGE_TAG);
  if (options.docker) {
    await step(report, 'image (docker build, FROM scratch)', () => image(layout, report, tag));
  } else {
    report.docker = { tag: null, reason: 'skipped with --no-docker' };
  }
  if (options.measure) {
    await step(report, 'measure (rootfs, shell, boot, RSS)', () => measure(layout, report));
  } else {
    Object.assign(report, inspectRootfs(layout.rootfs));
    report.boot.reason = 'skipped with --no-measure';
  }
  writeFileSync(layout.imageJson, `${JSON.stringify(report, null, 2)}\n`);
  log(
    `built in ${((performance.now() - started) / 1000).toFixed(1)} s; report: ${relative(REPO, layout.imageJson)}`,
  );
  return report;
}

if (process.argv[1] && realpathSync(process.argv[1]) === realpathSync(new URL(import.meta.url).pathname)) {
  Promise.resolve()
    .then(() => build(parseBuildArgs(process.argv.slice(2))))
    .catch((err: unknown) => {
      process.stderr.write(`build failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    });
}
