/**
 * The microkernel's servers bundled by esbuild: each bundle is a whole program (it runs outside the
 * repository, with no tsx and no node_modules beside it) and answers like its source.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { bundleServers, SERVER_SOURCES } from './server-bundles.ts';

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
      const help = await node([file, '--help']);
      assert.equal(help.code, 0, `${name}: ${help.stderr}`);
      assert.match(help.stdout, /--nats/, name);
    }
    // A usage error still exits 2 with the flag named, as from the sources.
    const bad = await node([built.bundles.fs, '--data', dir, '--transfer', 'zero-copy']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--transfer must be grant or copy/);
  });
});
