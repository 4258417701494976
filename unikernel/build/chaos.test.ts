import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { testCorpus } from '../../services/contract/testing/test-corpus.ts';
import { encodeFilePath } from '../../services/corpus/corpus.ts';
import { PANIC_EXIT_CODE } from '../../services/driver/chaos.ts';
import { buildForTest, type RunningProgram, startProgram } from './testing.ts';

// The chaos flavor, built fresh into a temporary directory: the only build with the fault hooks.
const built = await buildForTest('chaos');
const ran =
  built.form === 'single executable'
    ? 'chaos single executable (SEA)'
    : `chaos bundle under node (no SEA: ${built.fallbackReason})`;

describe(`unikernel faults (${ran})`, () => {
  it('reading the poison file in a pool worker kills the whole process', async () => {
    const corpus = await testCorpus();
    // Every read goes to the pool: the panic happens in a worker thread, and still takes the process.
    const program = await startProgram(built.command, [
      '--data',
      corpus.dir,
      '--chaos',
      '--inline-max-bytes',
      '0',
    ]);
    try {
      assert.equal((await fetch(`${program.baseUrl}/readyz`)).status, 200);
      await assert.rejects(
        fetch(`${program.baseUrl}/files/chaos/poison.bin`),
        'the poison request gets no answer',
      );
      const { signal } = await program.exited;
      assert.equal(signal, 'SIGKILL');
      assert.match(program.output(), /"msg":"driver panic"/);
      await assert.rejects(fetch(`${program.baseUrl}/healthz`), 'nothing serves after the panic');
    } finally {
      await program.stop();
    }
  });

  it('reading the poison file on the main thread kills the process too (exit 70)', async () => {
    const corpus = await testCorpus();
    const program = await startProgram(built.command, ['--data', corpus.dir, '--chaos']);
    try {
      await assert.rejects(fetch(`${program.baseUrl}/files/chaos/poison.bin`));
      const { code } = await program.exited;
      assert.equal(code, PANIC_EXIT_CODE);
    } finally {
      await program.stop();
    }
  });

  describe('a driver error thrown in a worker fails only its own request', () => {
    let program: RunningProgram;
    before(async () => {
      program = await startProgram(
        built.command,
        ['--data', (await testCorpus()).dir, '--chaos', '--inline-max-bytes', '0'],
        { KSTYLES_CHAOS_ERROR_RATE: '0.5' },
      );
    });
    after(() => program?.stop());

    it('some requests get 500 INTERNAL, the others their exact bytes, and the process lives on', async () => {
      const corpus = await testCorpus();
      const file = corpus.manifest.files.find((candidate) => candidate.path === 'bench/64k.bin')!;
      const results = await Promise.all(
        Array.from({ length: 40 }, async () => {
          const res = await fetch(`${program.baseUrl}/files/${encodeFilePath(file.path)}`);
          const body = Buffer.from(await res.arrayBuffer());
          return { status: res.status, body };
        }),
      );
      const failed = results.filter((result) => result.status === 500);
      const served = results.filter((result) => result.status === 200);
      assert.equal(failed.length + served.length, results.length, 'only 200s and 500s');
      assert.ok(failed.length > 0, 'the injected errors reached clients');
      assert.ok(served.length > 0, 'the other requests were served');
      for (const result of failed) {
        assert.equal(JSON.parse(result.body.toString()).code, 'INTERNAL');
        assert.match(result.body.toString(), /injected driver error/);
      }
      for (const result of served) {
        assert.equal(createHash('sha256').update(result.body).digest('hex'), file.sha256);
      }
      assert.equal((await fetch(`${program.baseUrl}/healthz`)).status, 200);
      assert.equal((await fetch(`${program.baseUrl}/readyz`)).status, 200);
      assert.equal(program.child.exitCode, null, 'still running');
    });
  });

  it('SIGUSR2 toggles the slow fault for reads on the main thread and in every worker', async () => {
    const corpus = await testCorpus();
    const program = await startProgram(built.command, ['--data', corpus.dir, '--chaos'], {
      KSTYLES_CHAOS_SLOW_MS: '200',
    });
    const timed = async (path: string) => {
      const started = performance.now();
      const res = await fetch(`${program.baseUrl}/files/${path}`);
      await res.arrayBuffer();
      assert.equal(res.status, 200, path);
      return performance.now() - started;
    };
    try {
      program.child.kill('SIGUSR2');
      await waitForLog(program, /chaos slow fault on/);
      // 4 KiB: one read on the main thread; 1 MiB: four 256 KiB reads in the pool, one after another.
      assert.ok((await timed('bench/4k.bin')) >= 200, 'the inline read waited');
      assert.ok((await timed('bench/1m.bin')) >= 800, 'each pool read waited');
      const metrics = await (await fetch(`${program.baseUrl}/metrics`)).text();
      assert.match(
        metrics,
        /kstyles_faults_injected_total\{style="unikernel",target="unikernel",kind="slow"\} 1/,
      );
      program.child.kill('SIGUSR2');
      await waitForLog(program, /chaos slow fault off/);
      assert.equal(program.child.exitCode, null, 'still running');
    } finally {
      await program.stop();
    }
  });
});

async function waitForLog(program: RunningProgram, pattern: RegExp): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!pattern.test(program.output())) {
    if (Date.now() > deadline) throw new Error(`no log line matching ${pattern}:\n${program.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
