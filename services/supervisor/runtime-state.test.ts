import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../../cli/kit/repo.ts';
import {
  listRuntimeStates,
  type RuntimeState,
  readRuntimeState,
  runtimeStateDir,
  writeRuntimeState,
} from './runtime-state.ts';

const uid = process.getuid!();
const state: RuntimeState = {
  id: 'sup-test',
  pid: process.pid,
  startedAt: new Date().toISOString(),
  nats: { servers: ['nats://127.0.0.1:4222'], user: 'supervisor', pass: 'secret' },
  info: {},
};

let base: string;
before(() => {
  base = mkdtempSync(path.join(os.tmpdir(), 'kstyles-runtime-test-'));
});
after(() => rmSync(base, { recursive: true, force: true }));

/** A fresh path under the test's own directory. */
function fresh(name: string): string {
  return path.join(base, `${name}-${Math.random().toString(36).slice(2)}`);
}

function modeOf(file: string): number {
  return lstatSync(file).mode & 0o777;
}

describe('runtimeStateDir', () => {
  it('is $XDG_RUNTIME_DIR/kstyles, else a per-uid directory in the temp directory', () => {
    assert.equal(
      runtimeStateDir({ XDG_RUNTIME_DIR: '/run/user/1000', TMPDIR: '/x' }),
      '/run/user/1000/kstyles',
    );
    assert.equal(runtimeStateDir({ TMPDIR: '/var/tmp/' }), `/var/tmp/kstyles-${uid}`);
    // A relative XDG_RUNTIME_DIR is invalid by the XDG spec and ignored.
    assert.equal(runtimeStateDir({ XDG_RUNTIME_DIR: 'run', TMPDIR: '/var/tmp' }), `/var/tmp/kstyles-${uid}`);
  });
});

describe('the runtime-state directory', () => {
  it('is created with mode 0700 and its files with 0600, and read back', () => {
    const dir = fresh('ok');
    const file = writeRuntimeState(state, dir);
    assert.equal(modeOf(dir), 0o700);
    assert.equal(modeOf(file), 0o600);
    assert.equal(lstatSync(dir).uid, uid);
    assert.deepEqual(readRuntimeState('sup-test', dir), state);
    assert.deepEqual(
      listRuntimeStates(dir).map((s) => s.id),
      ['sup-test'],
    );
  });

  it('is absent: nothing to read, no error', () => {
    const dir = fresh('absent');
    assert.equal(readRuntimeState('sup-test', dir), null);
    assert.deepEqual(listRuntimeStates(dir), []);
  });

  it('refuses a directory open to group or others, naming the path, its mode and the remedy', () => {
    const dir = fresh('mode');
    mkdirSync(dir, { mode: 0o700 });
    chmodSync(dir, 0o755);
    for (const attempt of [
      () => writeRuntimeState(state, dir),
      () => readRuntimeState('sup-test', dir),
      () => listRuntimeStates(dir),
    ]) {
      assert.throws(attempt, (err: Error & { code?: string }) => {
        assert.equal(err.code, 'RUNTIME_DIR_UNSAFE');
        assert.ok(err.message.includes(dir), err.message);
        assert.match(err.message, /has mode 0755/);
        assert.match(err.message, /rm -rf|XDG_RUNTIME_DIR/);
        return true;
      });
    }
    assert.equal(modeOf(dir), 0o755, 'the refused directory is left as it was');
  });

  it('refuses a symbolic link, even to a private directory of ours', () => {
    const target = fresh('target');
    mkdirSync(target, { mode: 0o700 });
    const link = fresh('link');
    symlinkSync(target, link);
    assert.throws(() => writeRuntimeState(state, link), /is a symbolic link/);
    assert.throws(() => listRuntimeStates(link), /is a symbolic link/);
  });

  it('refuses a file where the directory should be', () => {
    const file = fresh('file');
    writeFileSync(file, '');
    assert.throws(() => writeRuntimeState(state, file), /is not a directory/);
  });

  it('refuses a directory owned by another uid, and writes nothing into it', {
    skip: uid !== 0 && 'only root can give a directory to another user here',
  }, () => {
    const dir = fresh('owner');
    mkdirSync(dir, { mode: 0o700 });
    const nobody = 65534;
    chownSync(dir, nobody, nobody);
    assert.throws(
      () => writeRuntimeState(state, dir),
      (err: Error & { code?: string }) =>
        err.code === 'RUNTIME_DIR_UNSAFE' && err.message.includes(`is owned by uid ${nobody}, not you`),
    );
    assert.throws(() => readRuntimeState('sup-test', dir), /is owned by uid 65534/);
  });

  it('makes `kstyles ps` exit 1 with the message, not a stack trace', async () => {
    const xdg = fresh('xdg');
    mkdirSync(path.join(xdg, 'kstyles'), { recursive: true, mode: 0o700 });
    chmodSync(path.join(xdg, 'kstyles'), 0o777);
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = execFile(
        process.execPath,
        [path.join(REPO_ROOT, 'bin', 'kstyles.js'), 'ps'],
        { env: { ...process.env, XDG_RUNTIME_DIR: xdg }, timeout: 20_000 },
        (_err, _stdout, stderr) => resolve({ code: child.exitCode, stderr }),
      );
    });
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, new RegExp(`${path.join(xdg, 'kstyles')} has mode 0777`));
    assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
  });
});
