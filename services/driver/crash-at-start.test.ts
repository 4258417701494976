import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { REPO_ROOT } from '../../cli/kit/repo.ts';
import { PANIC_EXIT_CODE } from './chaos.ts';
import { CRASH_AT_START_ENV, CRASH_COUNTER_ENV, crashCounterFile, crashingStart } from './crash-at-start.ts';

const base = mkdtempSync(path.join(os.tmpdir(), 'kstyles-crashloop-test-'));
after(() => rmSync(base, { recursive: true, force: true }));

/** A fresh XDG_RUNTIME_DIR under the test's own directory. */
function runtimeDir(): string {
  const dir = mkdtempSync(path.join(base, 'xdg-'));
  chmodSync(dir, 0o700);
  return dir;
}

describe('the crashloop counter', () => {
  it('lives in the per-user runtime directory, one file per parent, never in the shared temp directory', () => {
    const xdg = runtimeDir();
    const env = { XDG_RUNTIME_DIR: xdg, [CRASH_AT_START_ENV]: '2' };
    const file = crashCounterFile(env, 4242);
    assert.equal(file, path.join(xdg, 'kstyles', 'driver-crash-4242.count'));
    assert.equal(crashingStart(env, 4242), 1);
    assert.equal(lstatSync(path.dirname(file)).mode & 0o777, 0o700, 'the directory is private');
    assert.equal(lstatSync(file).mode & 0o777, 0o600, 'the counter is private');
    assert.equal(crashingStart(env, 4242), 2);
    assert.equal(crashingStart(env, 4242), null, 'two starts crashed: the third runs');
    assert.equal(readFileSync(file, 'utf8'), '2');
    assert.equal(crashingStart(env, 4343), 1, 'another supervisor counts on its own');
    assert.equal(existsSync(path.join(os.tmpdir(), 'kstyles', 'driver-crash-4242.count')), false);
  });

  it('does nothing unless asked', () => {
    assert.equal(crashingStart({ XDG_RUNTIME_DIR: runtimeDir() }), null);
    assert.equal(crashingStart({ XDG_RUNTIME_DIR: runtimeDir(), [CRASH_AT_START_ENV]: '0' }), null);
  });

  it('refuses a runtime directory others may enter', () => {
    const xdg = runtimeDir();
    mkdirSync(path.join(xdg, 'kstyles'), { mode: 0o777 });
    chmodSync(path.join(xdg, 'kstyles'), 0o777);
    assert.throws(
      () => crashingStart({ XDG_RUNTIME_DIR: xdg, [CRASH_AT_START_ENV]: '1' }),
      (err: Error & { code?: string }) => err.code === 'RUNTIME_DIR_UNSAFE' && /mode 0777/.test(err.message),
    );
  });

  it('takes an explicit counter file as it is', () => {
    const file = path.join(runtimeDir(), 'count');
    const env = { [CRASH_AT_START_ENV]: '1', [CRASH_COUNTER_ENV]: file };
    assert.equal(crashingStart(env), 1);
    assert.equal(readFileSync(file, 'utf8'), '1');
  });

  it('makes the real driver process exit at its first starts, counting in the runtime directory', async () => {
    const xdg = runtimeDir();
    const start = async () => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', path.join(REPO_ROOT, 'services', 'driver', 'main.ts'), '--chaos'],
        {
          cwd: REPO_ROOT,
          env: {
            ...process.env,
            XDG_RUNTIME_DIR: xdg,
            [CRASH_AT_START_ENV]: '2',
            NATS_URL: 'nats://127.0.0.1:1',
          },
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let stderr = '';
      child.stderr!.on('data', (chunk) => {
        stderr += chunk;
      });
      const [code] = (await once(child, 'exit')) as [number | null];
      return { code, stderr, pid: child.pid! };
    };
    const first = await start();
    assert.equal(first.code, PANIC_EXIT_CODE, first.stderr);
    assert.match(first.stderr, /chaos crashloop: start 1 of 2 exits at once/);
    const second = await start();
    assert.equal(second.code, PANIC_EXIT_CODE, second.stderr);
    assert.match(second.stderr, /start 2 of 2/);
    assert.equal(readFileSync(path.join(xdg, 'kstyles', `driver-crash-${process.pid}.count`), 'utf8'), '2');
  });
});
