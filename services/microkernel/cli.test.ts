/**
 * `kstyles microkernel` given a port that is taken: a usage error naming the port's flag, before
 * anything starts. A metrics port found taken by its server instead was a crash loop of that server
 * until the supervisor gave up, with a message naming the server's own flag, not this command's.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { KSTYLES_BIN, REPO_ROOT } from '../../cli/kit/repo.ts';
import { testCorpus } from '../contract/testing/test-corpus.ts';

type Run = { code: number | string; stdout: string; stderr: string };

function kstyles(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [KSTYLES_BIN, ...args],
      { cwd: REPO_ROOT, timeout: 60_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number | string }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('kstyles microkernel with a port already taken', () => {
  let holder: Server;
  let taken: number;
  before(async () => {
    holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    taken = (holder.address() as { port: number }).port;
  });
  after(() => new Promise<void>((resolve) => holder.close(() => resolve())));

  for (const [flag, label] of [
    ['--port', 'gateway'],
    ['--supervisor-metrics-port', 'supervisor metrics'],
    ['--fs-metrics-port', 'file server metrics'],
    ['--driver-metrics-port', 'driver metrics'],
    ['--nats-port', 'nats'],
  ] as const) {
    it(`${flag}: exit 2 naming the flag, and nothing started`, async () => {
      const free = ['--port', '--supervisor-metrics-port', '--fs-metrics-port', '--driver-metrics-port']
        .filter((f) => f !== flag)
        .flatMap((f) => [f, '0']);
      const data = (await testCorpus()).dir;
      const run = await kstyles(['microkernel', '--data', data, ...free, flag, String(taken)]);
      assert.equal(run.code, 2, run.stderr);
      assert.match(
        run.stderr,
        new RegExp(
          `port ${taken} \\(${label}\\) is already in use: stop what holds it \\(another 'kstyles microkernel'\\? see 'kstyles ps'\\) or choose another with ${flag}`,
        ),
      );
      assert.doesNotMatch(run.stderr, /at .*\.ts:\d+/, 'a message, not a stack trace');
      assert.doesNotMatch(`${run.stdout}${run.stderr}`, /started pid=/, 'no process was started');
    });
  }
});
