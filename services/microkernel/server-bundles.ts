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
 */
import { existsSync, writeFileSync } from 'node:fs';
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

/**
 * Bundles every server into `outDir` (`<name>.mjs`). Resolves undefined, with the reason, when esbuild
 * is not installed or the build fails: the caller then runs the sources.
 */
export async function bundleServers(
  outDir: string,
): Promise<{ bundles: ServerBundles } | { bundles: undefined; reason: string }> {
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch {
    return { bundles: undefined, reason: 'esbuild is not installed (a production install)' };
  }
  const names = Object.keys(SERVER_SOURCES) as ServerName[];
  let metafile: MetafileOutputs;
  try {
    ({ metafile } = await esbuild.build({
      entryPoints: Object.fromEntries(
        names.map((name) => [name, path.join(REPO_ROOT, SERVER_SOURCES[name])]),
      ),
      outdir: outDir,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      banner: { js: REQUIRE_BANNER },
      metafile: true,
      logLevel: 'silent',
    }));
  } catch (err) {
    return { bundles: undefined, reason: `esbuild failed: ${(err as Error).message.split('\n')[0]}` };
  }
  const bundles = bundlesIn(outDir);
  // What each bundle holds, beside it: to V8 a bundle is one script, and the Security row counts the
  // modules and npm packages a server's address space holds (code-inventory.ts, bundleInventoryBeside).
  for (const [output, inputs] of Object.entries(metafile.outputs)) {
    const name = names.find((n) => path.resolve(output) === bundles[n]);
    if (name) {
      const inventory = bundleInventoryOf([{ outputs: { [output]: inputs } }]);
      writeFileSync(`${bundles[name]}${INVENTORY_SUFFIX}`, JSON.stringify(inventory));
    }
  }
  return { bundles };
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
