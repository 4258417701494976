/**
 * The microkernel's servers as one JavaScript file each, built with esbuild when `kstyles microkernel`
 * starts, so a restarted server loads compiled code instead of compiling its TypeScript again.
 * Measured (services/microkernel/README.md, 'Where a driver kill's time goes'): a driver started
 * through tsx spends ~0.4 s of CPU loading itself, a bundled one ~0.1 s; that start is most of what
 * a driver SIGKILL costs the requests waiting for it. MINIX 3's reincarnation server restarts a driver
 * from its binary too.
 *
 * esbuild is a development dependency: where it is missing (the production image installs none) the
 * servers run from their sources through tsx, as before.
 */
import path from 'node:path';
import { REPO_ROOT } from '../../cli/kit/repo.ts';

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
  try {
    await esbuild.build({
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
      logLevel: 'silent',
    });
  } catch (err) {
    return { bundles: undefined, reason: `esbuild failed: ${(err as Error).message.split('\n')[0]}` };
  }
  return {
    bundles: Object.fromEntries(
      names.map((name) => [name, path.join(outDir, `${name}.mjs`)]),
    ) as ServerBundles,
  };
}
