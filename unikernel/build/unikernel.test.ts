import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { httpContract } from '../../services/contract/testing/contract-suite.ts';
import { testCorpus } from '../../services/contract/testing/test-corpus.ts';
import { encodeFilePath } from '../../services/corpus/corpus.ts';
import { type FlatSpan, parseTraceLines } from '../../services/telemetry/trace-file.ts';
import { chooseLaunch } from '../runtime/cli.ts';
import { buildLayout } from '../runtime/layout.ts';
import {
  CHAOS_MARKERS,
  EMBEDDED_NODE_LINE,
  inspectRootfs,
  pinnedNodeVersion,
  sharedLibraries,
} from './build.ts';
import { freePort } from './measure.ts';
import { buildForTest, type RunningProgram, startProgram } from './testing.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// One fresh production build (about 5 s) for this file; when the single executable cannot be made here,
// the suites below run against the bundle and their names say so.
const built = await buildForTest('production');
const ran =
  built.form === 'single executable'
    ? 'built single executable (SEA)'
    : `bundle under node (no SEA: ${built.fallbackReason})`;

httpContract(`unikernel, ${ran}`, 'unikernel', async (corpus) => {
  const program = await startProgram(built.command, ['--data', corpus.dir]);
  return { baseUrl: program.baseUrl, corpus, stop: () => program.stop() };
});

describe(`unikernel root filesystem (${ran})`, () => {
  it('has no shell, no setuid file, and exactly the expected files', (t) => {
    if (built.form !== 'single executable')
      return t.skip(`SKIPPED: no root filesystem was built: ${built.fallbackReason}`);
    const facts = inspectRootfs(built.layout.rootfs);
    assert.equal(facts.shell.present, false, `shell found: ${facts.shell.found.join(', ')}`);
    assert.deepEqual(facts.setuidFiles, []);
    const expected = [
      '/app/kstyles-pool-worker.cjs',
      '/app/kstyles-unikernel',
      '/etc/group',
      '/etc/passwd',
      ...sharedLibraries(built.layout.rootfsExecutable),
    ].sort();
    assert.deepEqual(facts.rootfs.list.map((file) => file.path).sort(), expected);
    for (const path of ['/bin/sh', '/usr/bin/sh', '/bin/bash', '/bin/busybox']) {
      assert.ok(!facts.rootfs.list.some((file) => file.path === path), `${path} in the image`);
    }
    assert.match(
      readFileSync(join(built.layout.rootfs, 'etc', 'passwd'), 'utf8'),
      /^nonroot:x:65532:65532:/m,
    );
  });

  it('embeds the pinned Node LTS, says so in image.json, and runs on it', (t) => {
    if (built.form !== 'single executable')
      return t.skip(`SKIPPED: no single executable was built: ${built.fallbackReason}`);
    const pinned = pinnedNodeVersion(EMBEDDED_NODE_LINE);
    assert.match(pinned, /^24\.\d+\.\d+$/);
    const image = JSON.parse(readFileSync(built.layout.imageJson, 'utf8'));
    assert.equal(image.node, pinned);
    assert.equal(image.buildNode, process.version);
    const result = spawnSync(built.layout.rootfsExecutable, ['version'], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.trim(), `v${pinned}`);
  });

  it('compiles the fault injection out of the production bundle and refuses --chaos', async () => {
    for (const file of [built.layout.bundle, built.layout.bundleWorker]) {
      const text = readFileSync(file, 'utf8');
      for (const marker of CHAOS_MARKERS) assert.ok(!text.includes(marker), `${file} contains '${marker}'`);
    }
    const corpus = await testCorpus();
    const [file, ...pre] = built.command;
    const result = spawnSync(file!, [...pre, '--chaos', '--port', '0', '--data', corpus.dir], {
      encoding: 'utf8',
    });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /production build, which has no fault injection/);
  });
});

describe(`unikernel lifecycle (${ran})`, () => {
  let program: RunningProgram;
  before(async () => {
    program = await startProgram(built.command, ['--data', (await testCorpus()).dir]);
  });
  after(() => program?.stop());

  it('says how it runs in its first log line', () => {
    const first = JSON.parse(program.output().split('\n')[0]!) as Record<string, unknown>;
    assert.equal(first.msg, 'unikernel listening');
    assert.equal(first.run, built.form);
    assert.equal(first.build, 'production');
    assert.equal(first.tracing, undefined, 'no exporter in its environment: no tracing');
  });

  it('survives SIGUSR2 (the slow fault) and says the production build has none', async () => {
    program.child.kill('SIGUSR2');
    const deadline = Date.now() + 5000;
    while (!/SIGUSR2 ignored: this production build has no fault injection/.test(program.output())) {
      assert.ok(Date.now() < deadline, `no 'SIGUSR2 ignored' line:\n${program.output()}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal((await fetch(`${program.baseUrl}/healthz`)).status, 200);
  });

  it('healthcheck exits 0 when /healthz answers 200 and 1 when nothing listens', async () => {
    const [file, ...pre] = built.command;
    const healthy = spawnSync(file!, [...pre, 'healthcheck', '--port', String(program.port)], {
      encoding: 'utf8',
    });
    assert.equal(healthy.status, 0, healthy.stderr);
    const closed = spawnSync(file!, [...pre, 'healthcheck', '--port', String(await freePort())], {
      encoding: 'utf8',
    });
    assert.equal(closed.status, 1);
    assert.match(closed.stderr, /did not answer/);
  });

  it('clears a NODE_OPTIONS it was started with and says so', async () => {
    const other = await startProgram(built.command, ['--data', (await testCorpus()).dir], {
      NODE_OPTIONS: '--no-deprecation',
    });
    try {
      const first = JSON.parse(other.output().split('\n')[0]!) as { warning?: string };
      assert.match(first.warning ?? '', /NODE_OPTIONS was set; it has been cleared/);
    } finally {
      await other.stop();
    }
  });

  it('a missing data directory is a clear error with exit code 2', () => {
    const [file, ...pre] = built.command;
    const result = spawnSync(file!, [...pre, '--port', '0', '--data', '/no/such/kstyles/data'], {
      encoding: 'utf8',
    });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /data directory \/no\/such\/kstyles\/data does not exist/);
  });

  it('shows each hop through the worker pool in /metrics', async () => {
    const corpus = await testCorpus();
    const large = corpus.manifest.files.find((file) => file.size > 4 * 1024 * 1024)!;
    await (await fetch(`${program.baseUrl}/files/${encodeFilePath(large.path)}`)).arrayBuffer();
    const text = await (await fetch(`${program.baseUrl}/metrics`)).text();
    const hops =
      /kstyles_ipc_request_duration_seconds_count\{from="fs",to="pool",op="read",outcome="ok"\} (\d+)/.exec(
        text,
      );
    assert.ok(hops, 'pool hops recorded');
    // Every full 256 KiB chunk crosses to the pool; the 7-byte tail is read inline.
    assert.ok(
      Number(hops[1]) >= Math.floor(large.size / (256 * 1024)),
      `${hops[1]} hops for ${large.size} bytes`,
    );
  });

  it('SIGTERM lets an in-flight download finish, then exits 0', async () => {
    const corpus = await testCorpus();
    const large = corpus.manifest.files.find((file) => file.size > 4 * 1024 * 1024)!;
    const res = await fetch(`${program.baseUrl}/files/${encodeFilePath(large.path)}`);
    assert.equal(res.status, 200);
    program.child.kill('SIGTERM');
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(createHash('sha256').update(body).digest('hex'), large.sha256);
    const { code, signal } = await program.exited;
    assert.equal(signal, null);
    assert.equal(code, 0);
    assert.match(program.output(), /"msg":"unikernel stopped","graceful":true/);
  });
});

describe(`unikernel traces (${ran})`, () => {
  it("bundles the tracing SDK and records the pool hop with the worker thread's driver read", async () => {
    const corpus = await testCorpus();
    const dir = mkdtempSync(join(tmpdir(), 'kstyles-unikernel-traces-'));
    const file = join(dir, 'traces.jsonl');
    const program = await startProgram(built.command, ['--data', corpus.dir], { KSTYLES_TRACES_FILE: file });
    try {
      const first = JSON.parse(program.output().split('\n')[0]!) as { tracing?: { serviceName: string } };
      assert.equal(first.tracing?.serviceName, 'unikernel');
      const res = await fetch(`${program.baseUrl}/files/bench/1m.bin`);
      assert.equal((await res.arrayBuffer()).byteLength, 1024 * 1024);
      let hops: FlatSpan[] = [];
      let workerReads: FlatSpan[] = [];
      for (const until = Date.now() + 15_000; Date.now() < until; await sleep(100)) {
        const spans = existsSync(file) ? parseTraceLines(readFileSync(file, 'utf8')) : [];
        hops = spans.filter((s) => s.name === 'pool read');
        workerReads = spans.filter(
          (s) => s.name === 'driver read' && hops.some((h) => h.spanId === s.parentSpanId),
        );
        if (hops.length === 4 && workerReads.length === 4) break;
      }
      assert.equal(hops.length, 4, 'one pool hop per 256 KiB chunk');
      assert.equal(workerReads.length, 4, "each hop's driver read, recorded in the worker thread, under it");
      assert.equal(new Set([...hops, ...workerReads].map((s) => s.traceId)).size, 1, 'one trace');
    } finally {
      await program.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('kstyles unikernel (the launcher)', () => {
  it('picks the executable, else the bundle, else the TypeScript entry', () => {
    const dist = mkdtempSync(join(tmpdir(), 'kstyles-launch-'));
    try {
      assert.equal(chooseLaunch('production', dist).form, 'typescript');
      const layout = buildLayout('production', dist);
      mkdirSync(layout.bundleDir, { recursive: true });
      writeFileSync(layout.bundle, '');
      writeFileSync(layout.bundleWorker, '');
      assert.equal(chooseLaunch('production', dist).form, 'bundle');
      assert.equal(chooseLaunch('chaos', dist).form, 'typescript', 'never the production build for --chaos');
      mkdirSync(join(layout.rootfs, 'app'), { recursive: true });
      writeFileSync(layout.rootfsExecutable, '');
      writeFileSync(layout.rootfsWorker, '');
      assert.deepEqual(chooseLaunch('production', dist), {
        form: 'single executable',
        command: layout.rootfsExecutable,
        args: [],
      });
    } finally {
      rmSync(dist, { recursive: true, force: true });
    }
  });

  it('exits 2 with a clear message when the data directory is missing', () => {
    const result = spawnSync(
      process.execPath,
      [
        join(import.meta.dirname, '..', '..', 'bin', 'kstyles.js'),
        'unikernel',
        '--port',
        '0',
        '--data',
        '/no/such/dir',
      ],
      { encoding: 'utf8', env: { ...process.env, KSTYLES_DATA: '' } },
    );
    assert.equal(result.status, 2);
    assert.match(
      result.stderr,
      /data directory \/no\/such\/dir does not exist: create it with 'kstyles corpus/,
    );
  });
});
