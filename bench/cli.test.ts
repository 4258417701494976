/**
 * `kstyles bench` as a user runs it, a real process: a SIGTERM stops the targets it started (their
 * processes, with their own children) before it ends, instead of leaving them running on their ports;
 * `--profile` leaves its summary and the profiles it summarised.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { KSTYLES_BIN } from '../cli/kit/repo.ts';
import { describeProcess, isAlive, processTree, startProcess, stopAll } from './procs.ts';

let outDir = '';
let profileDir = '';
after(async () => {
  await stopAll();
  for (const dir of [outDir, profileDir]) if (dir) await rm(dir, { recursive: true, force: true });
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
    const named = targets.map((pid) => `${pid} ${describeProcess(pid)}`).join(', ');

    process.kill(bench.pid, 'SIGTERM');
    await Promise.race([bench.exited, sleep(20_000, undefined, { ref: false })]);
    assert.deepEqual(bench.exit, { code: 143, signal: null }, printed());
    assert.match(printed(), /SIGTERM: stopping its targets/);
    // A target SIGKILLed as the bench ends may take a moment to be gone (reaped by init once the
    // bench has exited; seen in CI on a loaded machine); one left running would still run after this.
    for (const until = Date.now() + 5000; targets.some(isAlive) && Date.now() < until; ) await sleep(100);
    assert.deepEqual(targets.filter(isAlive), [], `no target outlives the bench (were ${named})`);
  });
});

describe('kstyles bench --profile', () => {
  it('summarises the busiest functions of the target under load and keeps the profiles for a viewer', async () => {
    profileDir = await mkdtemp(path.join(os.tmpdir(), 'kstyles-bench-profile-'));
    const bench = startProcess('bench --profile', process.execPath, [
      KSTYLES_BIN,
      'bench',
      '--profile',
      'floor',
      '--rate',
      '1000',
      '--seconds',
      '2',
      '--out',
      profileDir,
    ]);
    await Promise.race([bench.exited, sleep(90_000, undefined, { ref: false })]);
    const printed = bench.log.join('\n');
    assert.deepEqual(bench.exit, { code: 0, signal: null }, printed);
    const summary = await readFile(path.join(profileDir, 'profile-floor.md'), 'utf8');
    // One section per busy process, each a table of functions by self time.
    assert.match(summary, /^## .+\.cpuprofile — busy \d+ ms of \d+ ms$/m);
    assert.match(summary, /^\| \d+ ms \| [\d.]+% \| `.+` \|/m);
    const kept = path.join(profileDir, 'profiles-floor');
    const files = await readdir(kept);
    assert.ok(files.length >= 1 && files.every((f) => f.endsWith('.cpuprofile')), files.join(', '));
    assert.match(summary, /The profiles: .*profiles-floor\/ \(open one in Chrome DevTools/);
    for (const file of files) {
      const profile = JSON.parse(await readFile(path.join(kept, file), 'utf8')) as {
        nodes: unknown[];
        samples: unknown[];
      };
      assert.ok(profile.nodes.length > 0 && profile.samples.length > 0, `${file}: a profile with samples`);
    }
  });
});
