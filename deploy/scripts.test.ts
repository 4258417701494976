/**
 * The deployment's helper scripts: the shell scripts parse, and expose-loopback relays a loopback-only
 * port of the program it runs (in the same process) without keeping that process alive.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '../services/supervisor/testing/nats-server.ts';

const DEPLOY = fileURLToPath(new URL('.', import.meta.url));

describe('deploy scripts', () => {
  for (const script of ['offline-bases.sh', 'ci-docker.sh']) {
    it(`${script} is valid bash`, () => {
      const result = spawnSync('bash', ['-n', path.join(DEPLOY, script)], { encoding: 'utf8' });
      assert.equal(result.status, 0, result.stderr);
    });
  }

  it('expose-loopback relays a 127.0.0.1-only port and exits when the program does', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kstyles-relay-'));
    const [inner, outer] = [await freePort(), await freePort()];
    const entry = path.join(dir, 'entry.mjs');
    // The program: answers on loopback only, sees its own argv, stops when told to over HTTP.
    writeFileSync(
      entry,
      `import http from 'node:http';
const server = http.createServer((req, res) => {
  res.end(JSON.stringify({ argv: process.argv.slice(2), url: req.url }));
  if (req.url === '/stop') server.close();
});
server.listen(${inner}, '127.0.0.1', () => console.log('listening'));
`,
    );
    const child = spawn(
      process.execPath,
      [
        path.join(DEPLOY, 'docker/expose-loopback.mjs'),
        `${outer}=${inner}`,
        '--',
        entry,
        'microkernel',
        '--chaos',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      const res = await fetch(`http://127.0.0.1:${outer}/metrics`);
      assert.deepEqual(await res.json(), { argv: ['microkernel', '--chaos'], url: '/metrics' });
      await fetch(`http://127.0.0.1:${outer}/stop`, { headers: { connection: 'close' } });
      const code = await Promise.race([
        exited,
        new Promise((r) => setTimeout(() => r('still running'), 5000)),
      ]);
      assert.equal(code, 0, 'the relay does not keep the process alive once the program is done');
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('expose-loopback refuses a malformed command line with exit 2', () => {
    const result = spawnSync(process.execPath, [path.join(DEPLOY, 'docker/expose-loopback.mjs'), '9580'], {
      encoding: 'utf8',
    });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /usage: node expose-loopback\.mjs/);
  });
});
