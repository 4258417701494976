import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { UsageError } from '../args.ts';
import { makeDirectory } from './make-directory.ts';
import { outputDirectory } from './output-dir.ts';
import { KSTYLES_BIN, REPO_ROOT } from './repo.ts';

const root = mkdtempSync(path.join(tmpdir(), 'kstyles-make-directory-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Runs `code` in a node process of its own: a call that never returns is killed after 20 s, not the suite. */
function inChild(code: string): Promise<{ stdout: string; killed: boolean }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', code],
      { cwd: REPO_ROOT, timeout: 20_000 },
      (_err, stdout) => resolve({ stdout, killed: child.killed }),
    );
  });
}

describe('makeDirectory', () => {
  it('creates the missing levels, with the mode given, and accepts a directory that exists', () => {
    const dir = path.join(root, 'a', 'b', 'c');
    makeDirectory(dir, 0o700);
    assert.ok(statSync(dir).isDirectory());
    assert.equal(statSync(path.join(root, 'a')).mode & 0o777, 0o700);
    makeDirectory(dir);
    assert.ok(statSync(dir).isDirectory());
  });

  it('fails on a file in the way, and below a dangling symlink', () => {
    writeFileSync(path.join(root, 'file'), 'x');
    assert.throws(() => makeDirectory(path.join(root, 'file')), { code: 'ENOTDIR' });
    assert.throws(() => makeDirectory(path.join(root, 'file', 'sub')), { code: 'ENOTDIR' });
    symlinkSync(path.join(root, 'nowhere'), path.join(root, 'dangling'));
    assert.throws(() => makeDirectory(path.join(root, 'dangling', 'sub')), { code: 'ENOENT' });
  });

  it("returns the kernel's ENOENT under /proc, where node's recursive mkdir spins (node 20 and 24)", async () => {
    const run = await inChild(
      `import { makeDirectory } from './cli/kit/make-directory.ts';
       try { makeDirectory('/proc/kstyles-no-such/dir'); console.log('created'); }
       catch (err) { console.log(err.code); }`,
    );
    assert.equal(run.killed, false, 'makeDirectory did not return within 20 s');
    assert.equal(run.stdout.trim(), 'ENOENT');
  });
});

describe('outputDirectory', () => {
  it('returns the absolute directory, and a UsageError naming the flag when it cannot be made', () => {
    assert.equal(outputDirectory('load', '--out', path.join(root, 'out')), path.join(root, 'out'));
    assert.throws(
      () => outputDirectory('load', '--out', '/proc/kstyles-no-such'),
      (err: unknown) =>
        err instanceof UsageError &&
        /^kstyles load: --out \/proc\/kstyles-no-such: cannot create it \(ENOENT.*\); choose a directory you can write to$/.test(
          err.message,
        ),
    );
  });

  it('kstyles load stops before sending when its --out cannot be made, not after the run', async () => {
    const started = performance.now();
    const run = await new Promise<{ code: number | string | undefined; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        [
          KSTYLES_BIN,
          'load',
          '--target',
          'a=http://127.0.0.1:1',
          '--duration',
          '60s',
          '--out',
          '/proc/kstyles-no-such',
        ],
        { cwd: REPO_ROOT, timeout: 50_000 },
        (err, _stdout, stderr) => resolve({ code: (err as { code?: number | string } | null)?.code, stderr }),
      ),
    );
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /kstyles load: --out \/proc\/kstyles-no-such: cannot create it/);
    assert.ok(performance.now() - started < 50_000, 'it ran the 60 s load first');
  });
});
