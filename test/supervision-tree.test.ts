/**
 * The supervision tree holds together when a supervisor is SIGKILLed: its children notice they were
 * orphaned and stop, so a restarted supervisor finds their ports free (OTP links, for OS processes).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { freePort } from '../services/contract/http-server.ts';
import { testCorpus } from '../services/contract/testing/test-corpus.ts';
import { isProcessAlive } from '../services/supervisor/runtime-state.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'kstyles-tree-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

async function until<T>(
  what: string,
  fn: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const portRefuses = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });

describe('supervision tree', { timeout: 60_000 }, () => {
  it('a monolith whose supervisor is SIGKILLed stops and frees its port', async () => {
    const corpus = await testCorpus();
    const port = await freePort();
    const spec = path.join(tmp, 'spec.json');
    writeFileSync(
      spec,
      JSON.stringify({
        id: `tree-${process.pid}`,
        children: [
          {
            name: 'monolith',
            command: process.execPath,
            args: [
              path.join(ROOT, 'bin', 'kstyles.js'),
              'monolith',
              '--port',
              String(port),
              '--data',
              corpus.dir,
            ],
            health: { kind: 'http', url: `http://127.0.0.1:${port}/healthz` },
          },
        ],
      }),
    );
    const supervisor = spawn(
      process.execPath,
      ['--import', 'tsx', 'services/supervisor/main.ts', '--spec', spec],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    supervisor.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    supervisor.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    let childPid: number | undefined;
    try {
      childPid = await until(
        'the monolith to be ready',
        () => {
          const match = /monolith ready pid=(\d+)/.exec(output);
          return match ? Number(match[1]) : undefined;
        },
        30_000,
      );
      assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);

      supervisor.kill('SIGKILL');
      await until(
        'the orphaned monolith to exit',
        () => (isProcessAlive(childPid!) ? undefined : true),
        10_000,
      );
      assert.equal(await portRefuses(port), true, 'the port is free for the next supervisor');
    } finally {
      supervisor.kill('SIGKILL');
      if (childPid && isProcessAlive(childPid)) process.kill(childPid, 'SIGKILL');
    }
  });
});
