/** raiseThreadPriority against real processes: chrt and setpriority do the work, /proc says the result. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { raiseThreadPriority } from './thread-priority.ts';

describe('raiseThreadPriority', () => {
  // Real-time scheduling and a negative nice need root (or CAP_SYS_NICE); elsewhere reported as skipped.
  it('makes a process SCHED_FIFO at the priority asked, with the nice value asked', {
    skip: process.getuid?.() !== 0 && 'needs root to make a process real-time',
  }, async (t) => {
    const child = spawn('/bin/sleep', ['5'], { stdio: 'ignore' });
    t.after(() => child.kill('SIGKILL'));
    await once(child, 'spawn');
    assert.deepEqual(raiseThreadPriority(child.pid!, 4, -3), {
      policy: 'SCHED_FIFO',
      realtimePriority: 4,
      nice: -3,
    });
  });

  it('is null for a thread that does not exist', () => {
    assert.equal(raiseThreadPriority(2 ** 22 + 1, 4, -3), null);
  });
});
