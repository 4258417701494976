/**
 * The monolith as its users run it: `kstyles monolith` in a child process, real signals, real exit codes.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type TestCorpus, testCorpus } from '../services/contract/testing/test-corpus.ts';
import type { ManifestFile } from '../services/corpus/corpus.ts';
import { encodeFilePath } from '../services/corpus/corpus.ts';
import { PANIC_EXIT_CODE } from '../services/driver/chaos.ts';
import { MonolithProcess, PausedDownload, sha256 } from './test-helpers.ts';

/** Driver latency that keeps a 4 MiB download (17 chunks of 256 KiB) in the server for about 1.7 s. */
const SLOW_DRIVER = { KSTYLES_CHAOS_LATENCY_MS: '100' };

let corpus: TestCorpus;
let large: ManifestFile;
let poison: ManifestFile;
const running: MonolithProcess[] = [];

function monolith(args: string[], env: NodeJS.ProcessEnv = {}): MonolithProcess {
  const child = new MonolithProcess(args, env);
  running.push(child);
  return child;
}

before(async () => {
  corpus = await testCorpus();
  large = corpus.manifest.files.find((file) => file.path === 'large/4mib-plus.bin')!;
  poison = corpus.manifest.files.find((file) => file.poison)!;
  assert.ok(large && poison);
});
after(() => Promise.all(running.map((child) => child.kill())));

async function connectionRefused(url: string): Promise<boolean> {
  try {
    await fetch(`${url}/healthz`);
    return false;
  } catch (err) {
    return ((err as Error & { cause?: { code?: string } }).cause?.code ?? '') === 'ECONNREFUSED';
  }
}

describe('monolith process: the blast radius of a driver bug', () => {
  it('with chaos on, one poison request ends the process (exit 70) and every download in flight', async () => {
    const proc = monolith(['--port', '0', '--data', corpus.dir, '--chaos'], SLOW_DRIVER);
    const start = await proc.started();
    assert.equal(start.chaos.enabled, true);
    assert.equal(start.chaos.poisonPath, 'chaos/poison.bin');
    assert.equal(start.chaos.latencyMs, 100);

    const target = `/files/${encodeFilePath(large.path)}`;
    const downloads = Array.from({ length: 4 }, () => new PausedDownload(start.url, target));
    await Promise.all(downloads.map((download) => download.paused));

    await assert.rejects(fetch(`${start.url}/files/${poison.path}`), 'the poison request gets no answer');
    const exit = await proc.exited;
    assert.equal(exit.code, PANIC_EXIT_CODE);
    assert.match(proc.stderr, /"msg":"driver panic".*chaos\/poison\.bin/);

    for (const download of downloads) download.resume();
    for (const result of await Promise.all(downloads.map((download) => download.finished))) {
      assert.equal(result.status, 200, 'the download had started');
      assert.equal(result.complete, false, 'an unrelated download in flight died with the process');
      assert.ok(result.bodyLength < large.size, `${result.bodyLength} of ${large.size} bytes`);
    }
    assert.ok(await connectionRefused(start.url), 'nothing serves until something restarts it');
  });

  it('with chaos off, the poison file is served like any other', async () => {
    const proc = monolith(['--port', '0', '--data', corpus.dir]);
    const start = await proc.started();
    assert.deepEqual(start.chaos, { enabled: false });
    const res = await fetch(`${start.url}/files/${poison.path}`);
    assert.equal(res.status, 200);
    assert.equal(sha256(Buffer.from(await res.arrayBuffer())), poison.sha256);
    // SIGUSR2 (the load generator's slow fault) is refused, not fatal, without chaos.
    proc.child.kill('SIGUSR2');
    await proc.waitForLine((line) => /SIGUSR2 ignored/.test(String(line.msg)));
    assert.equal((await fetch(`${start.url}/healthz`)).status, 200);
    proc.child.kill('SIGINT');
    assert.deepEqual(await proc.exited, { code: 0, signal: null }, 'SIGINT stops it like SIGTERM');
  });

  it('KSTYLES_CHAOS=1 arms the hooks; SIGUSR2 toggles the slow fault and counts it', async () => {
    const proc = monolith(['--port', '0', '--data', corpus.dir], { KSTYLES_CHAOS: '1' });
    const start = await proc.started();
    assert.equal(start.chaos.enabled, true);
    assert.equal(start.chaos.slowToggleMs, 50);
    proc.child.kill('SIGUSR2');
    const on = await proc.waitForLine((line) => line.msg === 'chaos slow fault on');
    assert.equal(on.driverLatencyMs, 50);
    const res = await fetch(`${start.url}/files/${encodeFilePath('docs/hello world.txt')}`);
    assert.equal(res.status, 200, 'slow, not broken');
    await res.arrayBuffer();
    const metrics = await (await fetch(`${start.url}/metrics`)).text();
    assert.match(
      metrics,
      /kstyles_faults_injected_total\{style="monolith",target="monolith",kind="slow"\} 1/,
    );
    proc.child.kill('SIGUSR2');
    const off = await proc.waitForLine((line) => line.msg === 'chaos slow fault off');
    assert.equal(off.driverLatencyMs, 0);
    proc.child.kill('SIGTERM');
    assert.equal((await proc.exited).code, 0);
  });
});

describe('monolith process: graceful stop', () => {
  it('SIGTERM stops accepting, lets slow downloads finish with the right bytes, and exits 0', async () => {
    // The slow driver keeps the responses inside the server (not just in kernel buffers) when SIGTERM
    // lands. The drain limit is below node's 5 s keep-alive timeout: the keep-alive connection of the
    // fetch must be closed as soon as its response ends, or the drain would run out.
    const proc = monolith(
      ['--port', '0', '--data', corpus.dir, '--chaos', '--drain-ms', '4500'],
      SLOW_DRIVER,
    );
    const start = await proc.started();
    const target = `/files/${encodeFilePath(large.path)}`;
    const download = new PausedDownload(start.url, target);
    const keepAlive = fetch(`${start.url}${target}`).then(async (res) => ({
      status: res.status,
      sha: sha256(Buffer.from(await res.arrayBuffer())),
    }));
    await download.paused;
    proc.child.kill('SIGTERM');
    const stopping = await proc.waitForLine((line) => line.msg === 'stopping: draining in-flight requests');
    assert.equal(stopping.signal, 'SIGTERM');
    assert.equal(stopping.connections, 2, 'both downloads were still in flight');
    assert.ok(await connectionRefused(start.url), 'no new connections while draining');
    download.resume();
    const result = await download.finished;
    assert.equal(result.status, 200);
    assert.ok(result.complete, `got ${result.bodyLength} of ${large.size} bytes`);
    assert.equal(result.bodySha256, large.sha256);
    assert.deepEqual(await keepAlive, { status: 200, sha: large.sha256 });
    assert.deepEqual(await proc.exited, { code: 0, signal: null });
    const stopped = proc.lines.find((line) => String(line.msg).startsWith('stopped'));
    assert.equal(stopped?.drained, true, `drained within the limit: ${JSON.stringify(stopped)}`);
  });
  it('a second stop signal ends it at once (exit 1), cutting what was in flight', async () => {
    const proc = monolith(['--port', '0', '--data', corpus.dir, '--chaos'], SLOW_DRIVER);
    const start = await proc.started();
    const download = new PausedDownload(start.url, `/files/${encodeFilePath(large.path)}`);
    await download.paused;
    proc.child.kill('SIGTERM');
    await proc.waitForLine((line) => line.msg === 'stopping: draining in-flight requests');
    proc.child.kill('SIGINT');
    assert.deepEqual(await proc.exited, { code: 1, signal: null });
    assert.ok(proc.lines.some((line) => line.msg === 'second stop signal: exiting at once'));
    download.resume();
    assert.equal((await download.finished).complete, false);
  });
});

// Independent short-lived processes: run side by side.
describe('monolith process: start-up errors', { concurrency: true }, () => {
  async function failsWith(args: string[], env: NodeJS.ProcessEnv, pattern: RegExp): Promise<void> {
    const proc = monolith(args, env);
    const exit = await proc.exited;
    assert.equal(exit.code, 2, `exit code; stderr: ${proc.stderr}`);
    assert.match(proc.stderr, pattern);
    assert.doesNotMatch(proc.stderr, /\n\s+at /, 'no stack trace for a usage error');
  }

  it('refuses a data directory that does not exist, naming it and the fix', async () => {
    const missing = `${corpus.dir}-missing`;
    await failsWith(
      ['--port', '0', '--data', missing],
      {},
      new RegExp(`data directory ${missing} does not exist.*kstyles corpus --dir ${missing}`),
    );
  });

  it('refuses an unknown flag and a bad port, naming them', async () => {
    await failsWith(['--bogus'], {}, /unknown flag '--bogus'/);
    await failsWith(['--port', 'http'], {}, /--port must be an integer/);
  });

  it('names the port when it is already in use', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as { port: number };
    try {
      await failsWith(
        ['--port', String(port), '--data', corpus.dir],
        {},
        new RegExp(`port ${port} .*already in use`),
      );
    } finally {
      holder.close();
    }
  });

  it('names a chaos variable with a bad value', async () => {
    await failsWith(
      ['--port', '0', '--data', corpus.dir, '--chaos'],
      { KSTYLES_CHAOS_ERROR_RATE: '2' },
      /KSTYLES_CHAOS_ERROR_RATE must be a number from 0 to 1/,
    );
  });
});
