import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { readAllProcStats, readProcStat } from './proc-stat.ts';

/** CPU time (user + system) this process has used since `start`, in µs. */
function cpuMicrosSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return used.user + used.system;
}

describe('/proc/<pid>/stat', () => {
  it('reads a command name with spaces and parentheses, and the parent', async (t) => {
    // comm is the executable's file name (up to 15 bytes): a copy of sleep under an awkward name.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kstyles-procstat-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const exe = path.join(dir, 'a) b (c');
    copyFileSync('/bin/sleep', exe);
    const child = spawn(exe, ['5'], { stdio: 'ignore' });
    t.after(() => child.kill('SIGKILL'));
    await once(child, 'spawn');
    const stat = readProcStat(child.pid!);
    assert.equal(stat?.name, 'a) b (c');
    assert.equal(stat?.ppid, process.pid);
    assert.ok(readAllProcStats().some((s) => s.pid === child.pid && s.name === 'a) b (c'));
  });

  it("counts this process's CPU as it burns some, and a waited-for child's in the reaped column", async () => {
    const before = readProcStat(process.pid)!;
    // Burn 150 ms of CPU time, not of wall time: on a busy machine a wall-clock loop gets less of a core.
    const start = process.cpuUsage();
    while (cpuMicrosSince(start) < 150_000);
    const after = readProcStat(process.pid)!;
    // 150 ms of CPU is 15 ticks; a tick or two may not have been charged yet.
    assert.ok(after.cpuTicks - before.cpuTicks >= 10, `${after.cpuTicks - before.cpuTicks} ticks`);
    const child = spawn(process.execPath, [
      '-e',
      'const s = process.cpuUsage(); for (;;) { const u = process.cpuUsage(s); if (u.user + u.system >= 200000) break; }',
    ]);
    await once(child, 'exit');
    assert.ok(readProcStat(process.pid)!.reapedChildrenCpuTicks - before.reapedChildrenCpuTicks >= 10);
  });

  it('counts the minor faults of a process touching fresh pages', async () => {
    // A child allocates 8 MiB it has never touched and writes to each of its 2,048 pages.
    const child = spawn(
      process.execPath,
      [
        '-e',
        `const b = new Uint8Array(new ArrayBuffer(8 * 1024 * 1024));
         const minflt = () => Number(require('node:fs').readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[7]);
         process.stdout.write(String(minflt()) + ' ');
         for (let i = 0; i < b.length; i += 4096) b[i] = 1;
         setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
      let after = readProcStat(child.pid!)!.minorFaults;
      for (let tries = 0; after - Number(chunk.toString()) < 2048 && tries < 50; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        after = readProcStat(child.pid!)!.minorFaults;
      }
      assert.ok(after - Number(chunk.toString()) >= 2048, `${after - Number(chunk.toString())} faults`);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('reads how a thread is scheduled: its nice value, policy and real-time priority', async (t) => {
    const mine = readProcStat('thread-self')!;
    assert.equal(mine.pid, Number(readlinkSync('/proc/thread-self').split('/').pop()));
    assert.equal(mine.policy, 'SCHED_OTHER');
    assert.equal(mine.realtimePriority, 0);
    assert.equal(mine.nice, os.getPriority());
    const child = spawn('/bin/sleep', ['5'], { stdio: 'ignore' });
    t.after(() => child.kill('SIGKILL'));
    await once(child, 'spawn');
    os.setPriority(child.pid!, 7);
    assert.equal(readProcStat(child.pid!)?.nice, 7);
  });

  // Making a process real-time needs root (or CAP_SYS_NICE); elsewhere the runner reports this as skipped.
  it('reads a real-time policy and priority (chrt: util-linux)', {
    skip: process.getuid?.() !== 0 && 'needs root to make a process real-time',
  }, async (t) => {
    const child = spawn('/bin/sleep', ['5'], { stdio: 'ignore' });
    t.after(() => child.kill('SIGKILL'));
    await once(child, 'spawn');
    const chrt = spawnSync('chrt', ['--fifo', '--pid', '3', String(child.pid)]);
    assert.equal(chrt.status, 0, String(chrt.stderr));
    const stat = readProcStat(child.pid!);
    assert.deepEqual(
      { policy: stat?.policy, priority: stat?.realtimePriority },
      { policy: 'SCHED_FIFO', priority: 3 },
    );
  });

  it('is null for a process that does not exist', () => {
    assert.equal(readProcStat(2 ** 22 + 1), null);
  });
});
