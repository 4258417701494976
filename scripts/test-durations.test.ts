import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { longestFirst, readDurations } from './test-durations.mjs';

const MODULE = fileURLToPath(new URL('test-durations.mjs', import.meta.url));

const work = mkdtempSync(path.join(tmpdir(), 'kstyles-durations-'));
after(() => rmSync(work, { recursive: true, force: true }));

/**
 * What run-tests.mjs does, in a process of its own: node:test's run() over `files`, its durations
 * recorded in `record`. Prints what recordDurations resolved to. Without this runner's
 * NODE_TEST_CONTEXT, or the nested run() would report to it instead of running the files.
 */
function runAndRecord(files: string[], record: string): string {
  const script = `
    import { run } from 'node:test';
    import { recordDurations } from ${JSON.stringify(MODULE)};
    const stream = run({ files: ${JSON.stringify(files)}, concurrency: 2 });
    const written = recordDurations(stream, ${JSON.stringify(work)}, ${JSON.stringify(record)});
    stream.resume();
    process.stdout.write(String(await written));`;
  // A file, not -e: run() gives each test file's process this one's execArgv, which would hold -e.
  const runner = path.join(work, 'runner.mjs');
  writeFileSync(runner, script);
  const { NODE_TEST_CONTEXT: _parent, ...env } = process.env;
  const child = spawnSync(process.execPath, [runner], { encoding: 'utf8', env });
  assert.equal(child.status, 0, child.stderr);
  return child.stdout;
}

describe('test durations', () => {
  it('orders files longest first, files without a record before all, ties alphabetically', () => {
    const order = longestFirst(['a.test.ts', 'b.test.ts', 'c.test.ts', 'd.test.ts', 'e.test.ts'], {
      'a.test.ts': 1,
      'b.test.ts': 30,
      'd.test.ts': 1,
      'e.test.ts': 'not a number',
    });
    assert.deepEqual(order, ['c.test.ts', 'e.test.ts', 'b.test.ts', 'a.test.ts', 'd.test.ts']);
  });

  it('reads a missing or corrupt record as none', () => {
    assert.deepEqual(readDurations(path.join(work, 'absent.json')), {});
    const corrupt = path.join(work, 'corrupt.json');
    writeFileSync(corrupt, '{"a.test.ts": 3');
    assert.deepEqual(readDurations(corrupt), {});
    writeFileSync(corrupt, '[1, 2]');
    assert.deepEqual(readDurations(corrupt), {});
  });

  it('records what a real run() of two files took, keeping the records of files it did not run', () => {
    const slow = path.join(work, 'slow.test.mjs');
    const quick = path.join(work, 'quick.test.mjs');
    writeFileSync(
      slow,
      "import test from 'node:test';\n" +
        "test('one', () => new Promise((resolve) => setTimeout(resolve, 400)));\n" +
        "test('two', () => new Promise((resolve) => setTimeout(resolve, 400)));\n",
    );
    writeFileSync(quick, "import test from 'node:test';\ntest('at once', () => {});\n");
    const record = path.join(work, 'durations.json');
    writeFileSync(record, JSON.stringify({ 'other.test.ts': 12.5 }));

    assert.equal(runAndRecord([slow, quick], record), record);

    const durations = JSON.parse(readFileSync(record, 'utf8'));
    assert.equal(durations['other.test.ts'], 12.5);
    assert.ok(
      durations['slow.test.mjs'] >= 0.8,
      `slow file recorded ${durations['slow.test.mjs']} s, not 2 × 0.4 s`,
    );
    assert.ok(durations['quick.test.mjs'] < durations['slow.test.mjs']);
    assert.deepEqual(longestFirst(['quick.test.mjs', 'slow.test.mjs'], durations), [
      'slow.test.mjs',
      'quick.test.mjs',
    ]);
  });

  it('writes nothing, and says so, when the record cannot be written', () => {
    const blocked = path.join(work, 'not-a-directory');
    writeFileSync(blocked, '');
    const quick = path.join(work, 'quick.test.mjs');
    assert.equal(runAndRecord([quick], path.join(blocked, 'durations.json')), 'undefined');
  });
});
