import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { securityFactsOf } from '../../services/contract/security-metrics.ts';
import { testCorpus } from '../../services/contract/testing/test-corpus.ts';
import { encodeFilePath } from '../../services/corpus/corpus.ts';
import { build, type ImageReport, removeTree } from '../../unikernel/build/build.ts';
import { waitFor200 } from '../../unikernel/build/measure.ts';
import { engineOrStandIn } from './docker.ts';

const docker = (...args: string[]) => spawnSync('docker', args, { encoding: 'utf8', timeout: 60_000 });

describe('unikernel image in a Docker engine (FROM scratch, read-only, non-root)', () => {
  if (!engineOrStandIn('builds the image and serves a file from a read-only container as uid 65532', it))
    return;

  const tag = `kstyles-unikernel:test-${process.pid}`;
  const distDir = mkdtempSync(join(tmpdir(), 'kstyles-unikernel-image-'));
  let container = '';
  let baseUrl = '';
  let image: ImageReport;

  before(async () => {
    image = await build({ flavor: 'production', distDir, docker: true, tag, measure: false, quiet: true });
    const corpus = await testCorpus();
    const run = docker(
      'run',
      '-d',
      '--read-only',
      '--tmpfs',
      '/tmp',
      '--user',
      '65532',
      '-v',
      `${corpus.dir}:/data:ro`,
      '-p',
      '127.0.0.1::8083',
      tag,
    );
    assert.equal(run.status, 0, run.stderr);
    container = run.stdout.trim();
    const port = execFileSync('docker', ['port', container, '8083/tcp'], { encoding: 'utf8' })
      .trim()
      .split('\n')[0]!
      .split(':')
      .pop();
    baseUrl = `http://127.0.0.1:${port}`;
    await waitFor200(`${baseUrl}/readyz`, 20_000);
  });

  after(() => {
    if (container) docker('rm', '-f', container);
    docker('rmi', '-f', tag);
    removeTree(distDir);
  });

  it('serves files with the right sha256 (small ones inline, a 4 MiB one through the pool)', async () => {
    const corpus = await testCorpus();
    const files = [
      corpus.manifest.files.find((file) => file.path === 'docs/hello world.txt')!,
      corpus.manifest.files.find((file) => file.size > 4 * 1024 * 1024)!,
    ];
    for (const file of files) {
      const res = await fetch(`${baseUrl}/files/${encodeFilePath(file.path)}`);
      assert.equal(res.status, 200, file.path);
      assert.equal(res.headers.get('x-kernel-style'), 'unikernel');
      const body = Buffer.from(await res.arrayBuffer());
      assert.equal(createHash('sha256').update(body).digest('hex'), file.sha256, file.path);
    }
  });

  it('runs as uid 65532 with NODE_OPTIONS cleared, has no shell, and its healthcheck subcommand works', () => {
    const config = JSON.parse(docker('image', 'inspect', '-f', '{{json .Config}}', tag).stdout) as {
      User: string;
      Env: string[];
      Healthcheck: { Test: string[] };
      Entrypoint: string[];
    };
    assert.equal(config.User, '65532:65532');
    assert.ok(config.Env.includes('NODE_OPTIONS='));
    assert.deepEqual(config.Entrypoint, ['/app/kstyles-unikernel']);
    assert.deepEqual(config.Healthcheck.Test.slice(0, 3), ['CMD', '/app/kstyles-unikernel', 'healthcheck']);
    const shell = docker('exec', container, '/bin/sh', '-c', 'true');
    assert.notEqual(shell.status, 0, 'no /bin/sh in the image');
    const health = docker('exec', container, '/app/kstyles-unikernel', 'healthcheck', '--port', '8083');
    assert.equal(health.status, 0, health.stderr);
    const pid1 = JSON.parse(docker('logs', container).stdout.split('\n')[0]!) as { pid: number; run: string };
    assert.equal(pid1.pid, 1, 'the program is PID 1');
    assert.equal(pid1.run, 'single executable');
  });

  it('measures itself on /metrics: uid 65532, no capability, only /tmp writable, no shell, its image counted from inside', async () => {
    const facts = securityFactsOf(await (await fetch(`${baseUrl}/metrics`)).text());
    assert.ok(facts, 'the production build serves the kstyles_security_* gauges');
    assert.equal(facts.uid, 65532);
    assert.deepEqual(facts.capabilities, []);
    assert.deepEqual(facts.shells, []);
    assert.deepEqual(
      facts.writable.filter((w) => w.writable).map((w) => w.place),
      ['tmp'],
      'read-only root, code and data; a tmpfs /tmp',
    );
    assert.equal(facts.code?.bundled, true);
    assert.deepEqual(facts.code?.own, image.bundle.own, "the build's metafile, embedded");
    assert.equal(facts.image?.name, 'kstyles-unikernel');
    // The rootfs the build wrote, plus the five files Docker adds to every container (seen with `docker
    // export`: /.dockerenv, /etc/hostname, /etc/hosts, /etc/resolv.conf, and /etc/mtab, a link to
    // /proc/mounts).
    const files = facts.image?.files ?? 0;
    assert.ok(files >= image.rootfs.files && files <= image.rootfs.files + 5, `${files} files`);
    assert.ok((facts.image?.bytes ?? 0) >= image.rootfs.bytes);
    assert.ok((facts.image?.bytes ?? 0) <= image.rootfs.bytes + 64 * 1024);
  });

  it('docker stop (SIGTERM to PID 1) ends it gracefully with exit code 0', () => {
    assert.equal(docker('stop', '-t', '10', container).status, 0);
    assert.equal(docker('inspect', '-f', '{{.State.ExitCode}}', container).stdout.trim(), '0');
    assert.match(docker('logs', container).stdout, /"msg":"unikernel stopped","graceful":true/);
  });
});
