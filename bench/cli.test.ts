/**
 * `kstyles bench` as a user runs it, a real process: a SIGTERM stops the targets it started (their
 * processes, with their own children) before it ends, instead of leaving them running on their ports.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { KSTYLES_BIN } from '../cli/kit/repo.ts';
import { isAlive, processTree, startProcess, stopAll } from './procs.ts';

let outDir = '';
after(async () => {
  await stopAll();
  if (outDir) await rm(outDir, { recursive: true, force: true });
});

describe('kstyles bench, signalled', () => {
  it('stops every target it started when it gets a SIGTERM, and ends with 143', async () => {
    outDir = await mkdtemp(path.join(os.tmpdir(), 'kstyles-bench-cli-'));
    const bench = startProcess('bench', process.execPath, [
      KSTYLES_BIN,
      'bench',
      '--quick',
      '--only',
      'floor,monolith',
      '--out',
      outDir,
    ]);
    const printed = () => bench.log.join('\n');
    // Both targets run once the calibration starts (it follows 'starting floor, monolith').
    for (const until = Date.now() + 60_000; !/calibration:/.test(printed()); await sleep(100))
      assert.ok(Date.now() < until && bench.running, `the calibration did not start:\n${printed()}`);
    const targets = processTree(bench.pid).slice(1);
    assert.ok(targets.length >= 2, `the floor and the monolith run under the bench: ${targets.join(', ')}`);

    process.kill(bench.pid, 'SIGTERM');
    await Promise.race([bench.exited, sleep(20_000, undefined, { ref: false })]);
    assert.deepEqual(bench.exit, { code: 143, signal: null }, printed());
    assert.match(printed(), /SIGTERM: stopping its targets/);
    assert.deepEqual(
      targets.filter(isAlive),
      [],
      `no target outlives the bench (were ${targets.join(', ')})`,
    );
  });
});
