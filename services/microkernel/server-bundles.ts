/**
 * The microkernel's servers as one JavaScript file each, built with esbuild when `kstyles microkernel`
 * starts (or once, into the image, where KSTYLES_SERVER_BUNDLES names them), so a restarted server loads
 * compiled code instead of compiling its TypeScript again.
 * Measured (services/microkernel/README.md, 'Where a driver kill's time goes'): a driver started
 * through tsx spends ~0.4 s of CPU loading itself, a bundled one ~0.1 s; that start is most of what
 * a driver SIGKILL costs the requests waiting for it. MINIX 3's reincarnation server restarts a driver
 * from its binary too.
 *
 * Where esbuild is missing the servers run from their sources through tsx, as before. In the app image
 * the bundles are built at image build time into a read-only folder (deploy/docker/app.Dockerfile):
 * bundled at start they would sit in the writable /tmp, and a request parser whose code can be
 * rewritten is what the Security row counts against it.
 *
 * A start from a checkout reuses the last bundles built from it (`bundlesAtStart`): kept in
 * node_modules/.cache/kstyles/server-bundles with the sha256 of every file esbuild read, and copied
 * into the run's own folder while every one of those files is unchanged. Measured: esbuild spends
 * ~0.85 s of CPU (0.55 s of wall time) on the three servers; hashing its ~560 inputs takes ~30 ms.
 */
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../cli/kit/repo.ts';
import { bundleInventoryOf, INVENTORY_SUFFIX, type MetafileOutputs } from '../contract/code-inventory.ts';
import { ProcessError, ProcessErrorCode } from '../contract/errors.ts';

/** A folder of bundles built ahead (`<name>.mjs` for every server): the servers run these. */
export const SERVER_BUNDLES_ENV = 'KSTYLES_SERVER_BUNDLES';

/** KSTYLES_SERVER_BUNDLES names a folder that lacks a server's bundle. */
export class ServerBundlesMissingError extends ProcessError {
  readonly code = ProcessErrorCode.SERVER_BUNDLES_MISSING;
}

export const SERVER_SOURCES = {
  driver: 'services/driver/main.ts',
  fs: 'services/fs/main.ts',
  gateway: 'services/gateway/main.ts',
} as const;
export type ServerName = keyof typeof SERVER_SOURCES;

/** Where each server's bundle is. */
export type ServerBundles = Record<ServerName, string>;

/** CommonJS dependencies of an ES module bundle call `require`: give them Node's. */
const REQUIRE_BANNER =
  "import { createRequire as kstylesCreateRequire } from 'node:module'; const require = kstylesCreateRequire(import.meta.url);";

const bundlesIn = (dir: string): ServerBundles =>
  Object.fromEntries(
    (Object.keys(SERVER_SOURCES) as ServerName[]).map((name) => [name, path.join(dir, `${name}.mjs`)]),
  ) as ServerBundles;

/** The bundles built ahead into the folder KSTYLES_SERVER_BUNDLES names; undefined when it names none. */
export function prebuiltBundles(env: NodeJS.ProcessEnv = process.env): ServerBundles | undefined {
  const dir = env[SERVER_BUNDLES_ENV];
  if (!dir) return undefined;
  const bundles = bundlesIn(path.resolve(dir));
  const missing = Object.values(bundles).filter((file) => !existsSync(file));
  if (missing.length > 0) {
    throw new ServerBundlesMissingError(
      `${SERVER_BUNDLES_ENV}=${dir} lacks ${missing.map((f) => path.basename(f)).join(', ')}: build them with \`node --import tsx services/microkernel/server-bundles.ts ${dir}\` (the app image does), or unset ${SERVER_BUNDLES_ENV} to bundle at start`,
    );
  }
  return bundles;
}

const NO_ESBUILD = { bundles: undefined, reason: 'esbuild is not installed (a production install)' } as const;

async function importEsbuild(): Promise<typeof import('esbuild') | undefined> {
  try {
    return await import('esbuild');
  } catch {
    return undefined;
  }
}

/**
 * Bundles every server into `outDir` (`<name>.mjs`). Resolves undefined, with the reason, when esbuild
 * is not installed or the build fails: the caller then runs the sources.
 */
export async function bundleServers(
  outDir: string,
): Promise<{ bundles: ServerBundles } | { bundles: undefined; reason: string }> {
  const esbuild = await importEsbuild();
  if (!esbuild) return NO_ESBUILD;
  const built = await build(esbuild, outDir);
  return 'reason' in built ? { bundles: undefined, reason: built.reason } : { bundles: built.bundles };
}

/** The options of every build; part of the cache's key with esbuild's version (the inputs are the rest). */
const BUILD_OPTIONS = {
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  banner: { js: REQUIRE_BANNER },
} as const;

/** Builds the bundles and their inventories into `outDir`; also names the files esbuild read. */
async function build(
  esbuild: typeof import('esbuild'),
  outDir: string,
): Promise<{ bundles: ServerBundles; inputs: string[] } | { reason: string }> {
  const names = Object.keys(SERVER_SOURCES) as ServerName[];
  let metafile: MetafileOutputs & { inputs: Record<string, unknown> };
  try {
    ({ metafile } = await esbuild.build({
      ...BUILD_OPTIONS,
      // Paths in the metafile are relative to this folder, wherever kstyles was started from.
      absWorkingDir: REPO_ROOT,
      entryPoints: Object.fromEntries(names.map((name) => [name, SERVER_SOURCES[name]])),
      outdir: outDir,
      metafile: true,
      logLevel: 'silent',
    }));
  } catch (err) {
    return { reason: `esbuild failed: ${(err as Error).message.split('\n')[0]}` };
  }
  const bundles = bundlesIn(outDir);
  // What each bundle holds, beside it: to V8 a bundle is one script, and the Security row counts the
  // modules and npm packages a server's address space holds (code-inventory.ts, bundleInventoryBeside).
  for (const [output, inputs] of Object.entries(metafile.outputs)) {
    const name = names.find((n) => path.resolve(REPO_ROOT, output) === bundles[n]);
    if (name) {
      const inventory = bundleInventoryOf([{ outputs: { [output]: inputs } }]);
      writeFileSync(`${bundles[name]}${INVENTORY_SUFFIX}`, JSON.stringify(inventory));
    }
  }
  return { bundles, inputs: Object.keys(metafile.inputs) };
}

/** The last bundles built from this checkout: node_modules/.cache is where build tools keep theirs. */
export const BUNDLE_CACHE_DIR = path.join(REPO_ROOT, 'node_modules', '.cache', 'kstyles', 'server-bundles');

/** What the cached bundles were built from, written last into the cache (its presence marks it whole). */
type BuiltFrom = {
  /** esbuild's version and BUILD_OPTIONS. */
  key: string;
  /** Every file esbuild read (relative to the checkout) → the sha256 of its bytes. */
  inputs: Record<string, string>;
  /** Every file of the cache (bundles and inventories) → the sha256 of its bytes. */
  outputs: Record<string, string>;
};
const BUILT_FROM = 'built-from.json';

const sha256Of = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/**
 * The bundles for a start of `kstyles microkernel`, in `outDir` (the run's own folder, removed with the
 * run): copied from `cacheDir` when every file they were built from is unchanged, else built and then
 * kept there for the next start. `reused` says which. Resolves undefined, with the reason, when esbuild
 * is not installed or the build fails, as bundleServers does. The cache is only ever an optimisation: one
 * that cannot be read or written (a read-only install, a concurrent start replacing it) means a build.
 */
export async function bundlesAtStart(
  outDir: string,
  cacheDir: string = BUNDLE_CACHE_DIR,
): Promise<{ bundles: ServerBundles; reused: boolean } | { bundles: undefined; reason: string }> {
  const esbuild = await importEsbuild();
  if (!esbuild) return NO_ESBUILD;
  const key = `esbuild ${esbuild.version} ${JSON.stringify(BUILD_OPTIONS)}`;
  if (copyFromCache(cacheDir, key, outDir)) return { bundles: bundlesIn(outDir), reused: true };
  const startedMs = Date.now();
  const built = await build(esbuild, outDir);
  // esbuild's service process would otherwise stay for the supervisor's life, idle (~110 MiB resident).
  await esbuild.stop();
  if ('reason' in built) return { bundles: undefined, reason: built.reason };
  keepInCache(cacheDir, key, outDir, built.inputs, startedMs);
  return { bundles: built.bundles, reused: false };
}

/** Copies the cached bundles into `outDir` if they were built with `key` from files unchanged since. */
function copyFromCache(cacheDir: string, key: string, outDir: string): boolean {
  try {
    const from = JSON.parse(readFileSync(path.join(cacheDir, BUILT_FROM), 'utf8')) as BuiltFrom;
    if (from.key !== key) return false;
    for (const [input, sha256] of Object.entries(from.inputs)) {
      if (sha256Of(path.join(REPO_ROOT, input)) !== sha256) return false;
    }
    for (const [file, sha256] of Object.entries(from.outputs)) {
      copyFileSync(path.join(cacheDir, file), path.join(outDir, file));
      if (sha256Of(path.join(outDir, file)) !== sha256) return false;
    }
    return Object.values(bundlesIn(outDir)).every((bundle) => existsSync(bundle));
  } catch {
    return false;
  }
}

/**
 * Replaces the cache with the bundles just built into `outDir`: in a folder of its own, renamed into
 * place. Not when an input was modified after the build began (a file saved during it): the hashes
 * recorded now could then be of bytes the bundles do not hold.
 */
function keepInCache(
  cacheDir: string,
  key: string,
  outDir: string,
  inputs: string[],
  startedMs: number,
): void {
  // A second of slack for file systems whose modification times are coarse.
  const changedSince = startedMs - 1000;
  const modifiedMs = (input: string) =>
    statSync(path.join(REPO_ROOT, input), { throwIfNoEntry: false })?.mtimeMs ?? Number.POSITIVE_INFINITY;
  const builtFrom: BuiltFrom = { key, inputs: {}, outputs: {} };
  try {
    for (const input of inputs) builtFrom.inputs[input] = sha256Of(path.join(REPO_ROOT, input));
  } catch {
    return; // An input gone since the build: nothing to record.
  }
  // After the hashing, so a file saved while it ran is caught too.
  if (inputs.some((input) => modifiedMs(input) >= changedSince)) return;
  const next = `${cacheDir}.${process.pid}`;
  try {
    mkdirSync(next, { recursive: true, mode: 0o700 });
  } catch {
    return; // A read-only install, or no folder can be made there: this start's bundles stand.
  }
  try {
    for (const file of readdirSync(outDir)) {
      copyFileSync(path.join(outDir, file), path.join(next, file));
      builtFrom.outputs[file] = sha256Of(path.join(next, file));
    }
    writeFileSync(path.join(next, BUILT_FROM), JSON.stringify(builtFrom));
    rmSync(cacheDir, { recursive: true, force: true });
    renameSync(next, cacheDir);
  } catch {
    // Another start renamed its cache into place first: this start's bundles stand, uncached.
  }
  rmSync(next, { recursive: true, force: true });
}

// `node --import tsx services/microkernel/server-bundles.ts DIR`: the bundles, built ahead into DIR.
if (
  process.argv[1] &&
  path.resolve(process.argv[1]) === path.join(REPO_ROOT, 'services/microkernel/server-bundles.ts')
) {
  const outDir = process.argv[2];
  if (!outDir) {
    process.stderr.write('usage: node --import tsx services/microkernel/server-bundles.ts OUT_DIR\n');
    process.exit(2);
  }
  const built = await bundleServers(path.resolve(outDir));
  if (!built.bundles) {
    process.stderr.write(`server bundles not built: ${built.reason}\n`);
    process.exit(1);
  }
  process.stdout.write(
    `server bundles in ${path.resolve(outDir)}: ${Object.keys(built.bundles).join(', ')}\n`,
  );
}
