/**
 * The microkernel's servers bundled by esbuild: each bundle is a whole program (it runs outside the
 * repository, with no tsx and no node_modules beside it) and answers like its source.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { KSTYLES_BIN, REPO_ROOT } from '../../cli/kit/repo.ts';
import { bundleInventoryBeside } from '../contract/code-inventory.ts';
import {
  bundleServers,
  prebuiltBundles,
  SERVER_BUNDLES_ENV,
  SERVER_SOURCES,
  ServerBundlesMissingError,
} from './server-bundles.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'kstyles-bundles-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function node(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: dir, timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('bundleServers', () => {
  it('bundles driver, fs and gateway into programs that run on their own', async () => {
    const built = await bundleServers(dir);
    assert.ok(built.bundles, built.bundles ? '' : built.reason);
    assert.deepEqual(Object.keys(built.bundles).sort(), Object.keys(SERVER_SOURCES).sort());
    for (const [name, file] of Object.entries(built.bundles)) {
      assert.equal(path.dirname(file), dir);
      // What the Security row counts of a bundled server: its modules and npm packages, beside it.
      const inventory = bundleInventoryBeside(file)!;
      assert.ok(inventory, `${name}: an inventory beside the bundle`);
      assert.ok(
        inventory.packages.includes('@nats-io/nats-core'),
        `${name}: ${inventory.packages.join(', ')}`,
      );
      assert.ok(inventory.own.modules > 5 && inventory.npm.modules > 20, name);
      const help = await node([file, '--help']);
      assert.equal(help.code, 0, `${name}: ${help.stderr}`);
      assert.match(help.stdout, /--nats/, name);
    }
    // A usage error still exits 2 with the flag named, as from the sources.
    const bad = await node([built.bundles.fs, '--data', dir, '--transfer', 'zero-copy']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--transfer must be grant, copy or shm/);
    for (const server of ['driver', 'gateway'] as const) {
      const noDir = await node([built.bundles[server], '--shm-dir', path.join(dir, 'no-such-dir')]);
      assert.equal(noDir.code, 2, noDir.stderr);
      assert.match(
        noDir.stderr,
        /--shm-dir .*no-such-dir is not a directory: create it, or leave the flag out/,
      );
    }
  });
});

describe('bundles built ahead (KSTYLES_SERVER_BUNDLES, as in the app image)', () => {
  it('are built by running the module with a folder, and found there by name', () => {
    const ahead = mkdtempSync(path.join(os.tmpdir(), 'kstyles-bundles-ahead-'));
    try {
      const built = spawnSync(
        process.execPath,
        ['--import', 'tsx', path.join(REPO_ROOT, 'services/microkernel/server-bundles.ts'), ahead],
        { encoding: 'utf8', timeout: 60_000 },
      );
      assert.equal(built.status, 0, built.stderr);
      assert.equal(prebuiltBundles({}), undefined, 'none named: bundled at start');
      const bundles = prebuiltBundles({ [SERVER_BUNDLES_ENV]: ahead })!;
      assert.deepEqual(bundles, {
        driver: path.join(ahead, 'driver.mjs'),
        fs: path.join(ahead, 'fs.mjs'),
        gateway: path.join(ahead, 'gateway.mjs'),
      });
      unlinkSync(bundles.gateway);
      assert.throws(
        () => prebuiltBundles({ [SERVER_BUNDLES_ENV]: ahead }),
        (err: Error) => err instanceof ServerBundlesMissingError && /lacks gateway\.mjs/.test(err.message),
      );
      // kstyles microkernel stops at once, naming the variable, instead of starting servers it lacks.
      const run = spawnSync(process.execPath, [KSTYLES_BIN, 'microkernel', '--data', ahead], {
        encoding: 'utf8',
        timeout: 30_000,
        env: { ...process.env, [SERVER_BUNDLES_ENV]: ahead },
      });
      assert.equal(run.status, 2, run.stderr);
      assert.match(run.stderr, /KSTYLES_SERVER_BUNDLES=.* lacks gateway\.mjs/);
    } finally {
      rmSync(ahead, { recursive: true, force: true });
    }
  });
});
