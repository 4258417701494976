/**
 * The microkernel's servers bundled by esbuild: each bundle is a whole program (it runs outside the
 * repository, with no tsx and no node_modules beside it) and answers like its source.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { KSTYLES_BIN, REPO_ROOT } from '../../cli/kit/repo.ts';
import { bundleInventoryBeside } from '../contract/code-inventory.ts';
import {
  BUNDLE_CACHE_DIR,
  bundleServers,
  bundlesAtStart,
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

describe('bundlesAtStart: the last bundles of this checkout, reused while their inputs are unchanged', () => {
  const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
  const fresh = (name: string) => mkdtempSync(path.join(dir, `${name}-`));
  type BuiltFrom = { inputs: Record<string, string>; outputs: Record<string, string> };
  const builtFrom = (cache: string) =>
    JSON.parse(readFileSync(path.join(cache, 'built-from.json'), 'utf8')) as BuiltFrom;

  it('builds into an empty cache, then copies from it the same bytes; a changed input or a corrupt copy means a build', async () => {
    assert.ok(BUNDLE_CACHE_DIR.startsWith(path.join(REPO_ROOT, 'node_modules', '.cache')));
    const cache = path.join(fresh('cache'), 'server-bundles');
    const first = await bundlesAtStart(fresh('run'), cache);
    assert.ok(first.bundles, first.bundles ? '' : first.reason);
    assert.equal(first.reused, false, 'nothing to reuse yet');
    const recorded = builtFrom(cache);
    assert.equal(
      recorded.inputs['services/driver/main.ts'],
      sha256(path.join(REPO_ROOT, 'services/driver/main.ts')),
    );
    assert.ok(
      Object.keys(recorded.inputs).some((input) => input.startsWith('node_modules/@nats-io/')),
      'the npm packages bundled are inputs too',
    );

    const second = await bundlesAtStart(fresh('run'), cache);
    assert.ok(second.bundles);
    assert.equal(second.reused, true);
    for (const name of Object.keys(SERVER_SOURCES) as Array<keyof typeof SERVER_SOURCES>) {
      assert.notEqual(
        path.dirname(second.bundles[name]),
        path.dirname(first.bundles[name]),
        'its own folder',
      );
      assert.equal(sha256(second.bundles[name]), sha256(first.bundles[name]), name);
      assert.ok(bundleInventoryBeside(second.bundles[name]), `${name}: its inventory copied too`);
    }
    const help = await node([second.bundles.driver, '--help']);
    assert.equal(help.code, 0, help.stderr);

    // As if services/fs/main.ts had changed since the build: built again, and the cache records it as it is.
    writeFileSync(
      path.join(cache, 'built-from.json'),
      JSON.stringify({ ...recorded, inputs: { ...recorded.inputs, 'services/fs/main.ts': 'f'.repeat(64) } }),
    );
    const changed = await bundlesAtStart(fresh('run'), cache);
    assert.ok(changed.bundles);
    assert.equal(changed.reused, false, 'a changed input');
    assert.equal(
      builtFrom(cache).inputs['services/fs/main.ts'],
      sha256(path.join(REPO_ROOT, 'services/fs/main.ts')),
    );

    // A cached bundle whose bytes are not the ones recorded is not used.
    const cachedGateway = path.join(cache, 'gateway.mjs');
    const bytes = readFileSync(cachedGateway);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 2) ^ 0xff, bytes.length - 2);
    writeFileSync(cachedGateway, bytes);
    const corrupt = await bundlesAtStart(fresh('run'), cache);
    assert.ok(corrupt.bundles);
    assert.equal(corrupt.reused, false, 'a corrupt cached bundle');
    assert.equal(sha256(corrupt.bundles.gateway), sha256(first.bundles.gateway));
  });

  it('keeps no cache when an input was modified after its build began (a file saved during the build)', async (t) => {
    // Its content is untouched; only its modification time says "saved during the build".
    const source = path.join(REPO_ROOT, 'services/fs/main.ts');
    const { atime, mtime } = statSync(source);
    t.after(() => utimesSync(source, atime, mtime));
    utimesSync(source, atime, new Date(Date.now() + 60_000));
    const cache = path.join(fresh('cache'), 'server-bundles');
    const built = await bundlesAtStart(fresh('run'), cache);
    assert.ok(built.bundles, built.bundles ? '' : built.reason);
    assert.equal(built.reused, false);
    assert.equal(existsSync(cache), false, 'nothing kept');
    utimesSync(source, atime, mtime);
    await bundlesAtStart(fresh('run'), cache);
    assert.equal(
      existsSync(path.join(cache, 'built-from.json')),
      true,
      'kept once the file is older than the build',
    );
  });

  it('builds every time where the cache cannot be written, and says nothing of it', async () => {
    const notADir = path.join(fresh('blocked'), 'file');
    writeFileSync(notADir, '');
    for (let start = 0; start < 2; start++) {
      const built = await bundlesAtStart(fresh('run'), path.join(notADir, 'server-bundles'));
      assert.ok(built.bundles, built.bundles ? '' : built.reason);
      assert.equal(built.reused, false);
    }
  });
});
