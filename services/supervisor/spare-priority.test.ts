import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { atNice, mayRaisePriority, raisePriority, threadNices } from './spare-priority.ts';

const status = (capEff: string) =>
  `Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t${capEff}\nCapBnd:\t000001ffffffffff\n`;

describe('spare priority', () => {
  test("CAP_SYS_NICE is read from CapEff: root has it, Docker's default set does not", () => {
    assert.equal(mayRaisePriority(status('000001ffffffffff')), true);
    // Docker's default capabilities (chown, dac_override, fowner, fsetid, kill, setgid, setuid, setpcap,
    // net_bind_service, net_raw, sys_chroot, mknod, audit_write, setfcap): no sys_nice (bit 23).
    assert.equal(mayRaisePriority(status('00000000a80425fb')), false);
    assert.equal(mayRaisePriority(status('0000000000800000')), true);
    assert.equal(mayRaisePriority(status('0000000000000000')), false);
    assert.equal(mayRaisePriority('Name:\tnode\n'), false);
  });

  test('a spare starts through nice, unless its priority is 0 or there is no nice', () => {
    const launch = { command: '/usr/bin/setpriv', args: ['--pdeathsig', 'KILL', '--', 'node', 'a.mjs'] };
    assert.deepEqual(atNice(launch, 19, '/usr/bin/nice'), {
      command: '/usr/bin/nice',
      args: ['-n', '19', '--', '/usr/bin/setpriv', '--pdeathsig', 'KILL', '--', 'node', 'a.mjs'],
    });
    assert.equal(atNice(launch, 0, '/usr/bin/nice'), launch);
    assert.equal(atNice(launch, 19, undefined), launch);
  });

  test('a process started through nice has every thread low, and raising sets every thread (a real node process)', {
    skip: existsSync('/usr/bin/nice') ? false : 'coreutils nice is not installed here',
  }, async () => {
    const child = spawn(
      '/usr/bin/nice',
      ['-n', '7', '--', process.execPath, '-e', 'setInterval(() => {}, 1000)'],
      {
        stdio: 'ignore',
      },
    );
    try {
      await once(child, 'spawn');
      // node starts its platform and libuv threads at once; wait until there are several.
      let nices: number[] = [];
      for (let i = 0; i < 100 && nices.length < 2; i++, await sleep(20)) nices = threadNices(child.pid!);
      assert.ok(nices.length > 1, `threads: ${nices}`);
      assert.deepEqual([...new Set(nices)], [7], 'every thread inherited nice 7');
      const raised = raisePriority(child.pid!, 0);
      if (mayRaisePriority(readFileSync('/proc/self/status', 'utf8'))) {
        assert.equal(raised, true);
        assert.deepEqual([...new Set(threadNices(child.pid!))], [0], 'every thread raised to 0');
      } else {
        // Without CAP_SYS_NICE the kernel refuses, and the threads stay where they were.
        assert.equal(raised, false);
        assert.deepEqual([...new Set(threadNices(child.pid!))], [7]);
      }
    } finally {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    assert.equal(raisePriority(child.pid!, 0), false, 'a process that is gone');
  });
});
