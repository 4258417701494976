import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { UsageError } from '../../cli/args.ts';
import { KSTYLES_BIN, REPO_ROOT } from '../../cli/kit/repo.ts';
import { freePort } from '../contract/http-server.ts';
import { CHAOS_KINDS, CHAOS_SIGNALS, parseChaosArgs } from './chaos-cli.ts';

describe('kstyles chaos arguments', () => {
  it('accepts every kind the microkernel README offers, and sends the fault menu signal', () => {
    const readme = readFileSync(new URL('../microkernel/README.md', import.meta.url), 'utf8');
    const line = /kstyles chaos microkernel:driver kill\s+# ([a-z |]+);/.exec(readme);
    assert.ok(line, 'the README shows the chaos kinds');
    const offered = line[1]!.split('|').map((kind) => kind.trim());
    assert.deepEqual(offered.sort(), [...CHAOS_KINDS].sort());
    for (const kind of offered) {
      assert.equal(parseChaosArgs(['microkernel:driver', kind]).kind, kind);
    }
    assert.equal(CHAOS_SIGNALS.slow, 'SIGUSR2');
    assert.equal(CHAOS_SIGNALS.resume, 'SIGCONT');
  });

  it('refuses an unknown kind and a malformed target with a UsageError that names them', () => {
    assert.throws(
      () => parseChaosArgs(['microkernel:driver', 'melt']),
      (err: unknown) => {
        assert.ok(err instanceof UsageError);
        assert.match(
          err.message,
          /unknown kind 'melt'; valid kinds: kill, term, hang, slow, resume, crashloop/,
        );
        return true;
      },
    );
    assert.throws(() => parseChaosArgs(['driver', 'kill']), /must be <supervisor>:<service>/);
  });
});

describe('kstyles ps and chaos against a NATS that is not there', () => {
  it('say so, and exit by themselves within the connect bound (a client left retrying kept them alive)', async () => {
    const closed = await freePort();
    for (const args of [['ps'], ['chaos', 'microkernel:driver', 'kill']]) {
      const started = performance.now();
      const run = await new Promise<{ code: number | null; killed: boolean; stderr: string }>((resolve) => {
        const child = execFile(
          process.execPath,
          [KSTYLES_BIN, ...args, '--nats', `nats://127.0.0.1:${closed}`],
          { cwd: REPO_ROOT, timeout: 20_000 },
          (_err, _stdout, stderr) => resolve({ code: child.exitCode, killed: child.killed, stderr }),
        );
      });
      assert.equal(run.killed, false, `kstyles ${args.join(' ')} did not exit: ${run.stderr}`);
      assert.equal(run.code, 1, run.stderr);
      assert.match(
        run.stderr,
        new RegExp(`cannot reach NATS at nats://127\\.0\\.0\\.1:${closed} within \\d+ ms: start nats-server`),
      );
      assert.ok(
        performance.now() - started < 15_000,
        `kstyles ${args.join(' ')} took ${performance.now() - started} ms`,
      );
    }
  });
});
