import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { UsageError } from '../cli/args.ts';
import { freePort } from '../services/contract/http-server.ts';
import { run } from './cli.ts';
import { makeCorpus, serveFile, startServer, type TestCorpus, type TestServer } from './test-fixtures.ts';

let corpus: TestCorpus;
let server: TestServer;
let dir: string;

before(async () => {
  corpus = await makeCorpus();
  server = await startServer((_req, res, body) => serveFile(res, body), corpus.bodies);
  dir = await mkdtemp(path.join(os.tmpdir(), 'kstyles-load-cli-test-'));
});
after(async () => {
  await server.close();
  await corpus.cleanup();
  await rm(dir, { recursive: true, force: true });
});

/** Runs the command with its terminal output captured. */
async function runQuiet(argv: string[]): Promise<{ code: number | undefined; output: string }> {
  let output = '';
  const code = await run(argv, {
    write: (text: string) => {
      output += text;
    },
  });
  return { code, output };
}

describe('kstyles load', () => {
  const base = () => [
    '--target',
    `mono=${server.url}`,
    '--rate',
    '50',
    '--duration',
    '1s',
    '--corpus',
    corpus.dir,
    '--warmup',
    '200ms',
  ];

  test('exit code 0 when every threshold holds, with a checklist and reports', async () => {
    const out = path.join(dir, 'pass');
    const { code, output } = await runQuiet([
      ...base(),
      '--threshold',
      'mono:errors==0',
      '--threshold',
      '*:availability>=99.9%',
      '--out',
      out,
    ]);
    assert.equal(code, 0, output);
    assert.match(output, /thresholds: all passed/);
    assert.match(output, /✔ mono:errors==0 {2}\(measured 0\)/);
    const results = JSON.parse(await readFile(path.join(out, 'results.json'), 'utf8'));
    assert.equal(results.targets[0].sent, 50);
    assert.equal(results.thresholds.length, 2);
    assert.equal(results.warmup.sent, 10, 'the warm-up: 200 ms at 50 req/s');
    assert.equal(results.generator.senders.threads, 1);
    assert.ok(output.includes(`\n  ${results.generator.senders.reason}; warm-up 0.2s`), output);
  });

  test('a target that refuses every connection is named in words, with what to check', async () => {
    const closed = await freePort();
    const { output } = await runQuiet([...base(), '--target', `gone=http://127.0.0.1:${closed}`]);
    assert.match(
      output,
      new RegExp(
        `gone answered none of its 50 requests: every one refused the connection\\. Is it running at http://127\\.0\\.0\\.1:${closed}\\? Start the lab with 'kstyles up', or check --target\\.`,
      ),
    );
    assert.doesNotMatch(output, /mono answered none/, 'a target that answered gets no such line');
  });

  test('--verify sha256 is reported in results.json', async () => {
    const out = path.join(dir, 'sha256');
    const { code, output } = await runQuiet([...base(), '--verify', 'sha256', '--out', out]);
    assert.equal(code, 0, output);
    const results = JSON.parse(await readFile(path.join(out, 'results.json'), 'utf8'));
    assert.match(output, /bodies: sha256 of every body against the manifest \(--verify sha256\)/);
    assert.match(results.targets[0].verification.method, /--verify sha256/);
    assert.equal(results.targets[0].verification.sha256, 50);
  });

  test('exit code 1 when a threshold fails', async () => {
    const { code, output } = await runQuiet([...base(), '--threshold', 'mono:p99<1us']);
    assert.equal(code, 1);
    assert.match(output, /✘ mono:p99<1us/);
  });

  const usage: [string, string[], RegExp][] = [
    ['a bad threshold', ['--threshold', 'mono:latency<5ms'], /unknown metric 'latency'/],
    ['a threshold on an unknown target', ['--threshold', 'other:p99<5ms'], /'other' is not a load target/],
    ['a bad duration', ['--duration', 'forever'], /--duration must be a duration/],
    ['a bad mix', ['--mix', 'huge'], /--mix: cannot read 'huge'/],
    ['a bad verification', ['--verify', 'md5'], /--verify must be bytes or sha256, got 'md5'/],
    ['no sender thread', ['--workers', '0'], /--workers must be an integer from 1 to 256, got '0'/],
    ['a fraction of a thread', ['--workers', '1.5'], /--workers must be an integer from 1 to 256, got '1.5'/],
    ['a bad warm-up', ['--warmup', 'a while'], /--warmup must be a duration from 0 to 10m/],
  ];
  for (const [name, extra, message] of usage) {
    test(`usage error (exit 2) for ${name}`, async () => {
      await assert.rejects(
        runQuiet([...base(), ...extra]),
        (err: Error) => err instanceof UsageError && err.exitCode === 2 && message.test(err.message),
      );
    });
  }

  test('usage error (exit 2) for a bad KSTYLES_LOAD_WORKERS, naming the flag', async () => {
    const before = process.env.KSTYLES_LOAD_WORKERS;
    process.env.KSTYLES_LOAD_WORKERS = 'many';
    try {
      await assert.rejects(
        runQuiet(base()),
        (err: Error) =>
          err instanceof UsageError && err.exitCode === 2 && /--workers must be an integer/.test(err.message),
      );
    } finally {
      if (before === undefined) delete process.env.KSTYLES_LOAD_WORKERS;
      else process.env.KSTYLES_LOAD_WORKERS = before;
    }
  });

  /** The load refuses the scenario `text` with a UsageError matching `message`. */
  const refusesScenario = async (name: string, text: string, message: RegExp) => {
    const file = path.join(dir, name);
    await writeFile(file, text);
    await assert.rejects(
      runQuiet([...base(), '--scenario', file]),
      (err: unknown) => err instanceof UsageError && message.test(err.message),
    );
  };

  test('usage error for a scenario with a mistake, naming file and line', async () => {
    await refusesScenario(
      'chaos.yaml',
      'faults:\n  - { at: 1s, target: mono, fault: poison }\n  - { at: 2s, target: mono, fault: melt }\n',
      /chaos\.yaml:3: faults\[1\]\.fault: 'melt' is not a fault kind/,
    );
  });

  test('usage error for a fault scheduled at or after the end of the run, which would never fire', async () => {
    await refusesScenario(
      'late.yaml',
      'faults:\n  - { at: 0.5s, target: mono, fault: poison }\n  - { at: 1s, target: mono, fault: poison }\n',
      /late\.yaml:3: poison of mono at 1s would never fire: the run ends at 1s \(--duration\); lengthen the run or move the fault/,
    );
  });

  test('usage error without a target or with a missing corpus', async () => {
    await assert.rejects(runQuiet(['--rate', '5']), /--target NAME=URL is required/);
    await assert.rejects(
      runQuiet(['--target', `mono=${server.url}`, '--corpus', path.join(dir, 'nothing')]),
      (err: Error) => err instanceof UsageError && /MANIFEST\.json .*kstyles corpus/.test(err.message),
    );
  });
});
