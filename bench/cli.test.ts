/**
 * `kstyles bench` as a user runs it, a real process: a SIGTERM stops the targets it started (their
 * processes, with their own children) before it ends, instead of leaving them running on their ports.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { KSTYLES_BIN } from '../cli/kit/repo.ts';
import { processTree } from './procs.ts';

let outDir = '';
after(async () => {
  if (outDir) await rm(outDir, { recursive: true, force: true });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('kstyles bench, signalled', () => {
  it('stops every target it started when it gets a SIGTERM, and ends with 143', async () => {
    outDir = await mkdtemp(path.join(os.tmpdir(), 'kstyles-bench-cli-'));
    const bench = spawn(
      process.execPath,
      [KSTYLES_BIN, 'bench', '--quick', '--only', 'floor,monolith', '--out', outDir],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    bench.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    bench.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => bench.once('exit', (code) => resolve(code)));
    // Both targets run once the calibration starts (it follows 'starting floor, monolith').
    const deadline = Date.now() + 60_000;
    while (!/calibration:/.test(output) && Date.now() < deadline && bench.exitCode === null) await sleep(100);
    assert.match(output, /calibration:/, output);
    const targets = processTree(bench.pid!).slice(1);
    const names = targets.map((pid) => `${pid}`).join(', ');
    assert.ok(targets.length >= 2, `the floor and the monolith run under the bench: ${names}`);

    bench.kill('SIGTERM');
    const code = await Promise.race([exited, sleep(20_000, 'still running', { ref: false })]);
    assert.equal(code, 143, output);
    assert.match(output, /SIGTERM: stopping its targets/);
    assert.deepEqual(targets.filter(alive), [], `no target outlives the bench (were ${names})`);
  });
});
