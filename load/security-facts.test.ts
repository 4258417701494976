/**
 * The Security row measured of real styles, as `kstyles load` measures it: real processes started
 * through the kstyles command, reached only as a client (HTTP, /proc, the supervisor's control API).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { KSTYLES_BIN, REPO_ROOT } from '../cli/kit/repo.ts';
import type { Manifest } from '../services/corpus/corpus.ts';
import { encodeFilePath } from '../services/corpus/corpus.ts';
import { listenerFacts } from './process-facts.ts';
import { measureTargetSecurity } from './security-facts.ts';

const linux = process.platform === 'linux';
const tmp = mkdtempSync(path.join(os.tmpdir(), 'kstyles-security-facts-'));
chmodSync(tmp, 0o700);
const corpus = path.join(tmp, 'corpus');
const children: ChildProcess[] = [];
after(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      // An unreferenced bound: a referenced one kept this file's process alive 10 s after every child was gone.
      await Promise.race([once(child, 'exit'), sleep(10_000, undefined, { ref: false })]);
    }
  }
  rmSync(tmp, { recursive: true, force: true });
});

/** Starts `kstyles <args>` and resolves the URL its ready line names. */
async function start(args: string[], ready: RegExp): Promise<string> {
  const child = spawn(process.execPath, [KSTYLES_BIN, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, XDG_RUNTIME_DIR: tmp, TMPDIR: tmp },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  return new Promise((resolve, reject) => {
    const look = (chunk: Buffer) => {
      output += chunk.toString();
      const match = ready.exec(output);
      if (match) resolve(match[1]!);
    };
    child.stdout!.on('data', look);
    child.stderr!.on('data', look);
    child.once('exit', (code) => reject(new Error(`kstyles ${args[0]} exited ${code}:\n${output}`)));
  });
}

let rangeFile: { urlPath: string; size: number };
before(() => {
  execFileSync(process.execPath, [KSTYLES_BIN, 'corpus', '--dir', corpus, '--count', '20'], {
    cwd: REPO_ROOT,
  });
  const manifest = JSON.parse(readFileSync(path.join(corpus, 'MANIFEST.json'), 'utf8')) as Manifest;
  const file = manifest.files.find((f) => f.size > 0 && !f.poison)!;
  rangeFile = { urlPath: `/files/${encodeFilePath(file.path)}`, size: file.size };
});

describe('the Security row of real styles', { skip: !linux && 'reads /proc', timeout: 120_000 }, () => {
  it('monolith: one address space that reads the data itself, its code counted, seen from /proc and /metrics alike', async () => {
    const url = await start(['monolith', '--port', '0', '--data', corpus], /"url":"([^"]+)"/);
    const { hostile, security } = await measureTargetSecurity(
      { name: 'monolith', url },
      { corpusDir: corpus, rangeFile, timeoutMs: 5000, stateDir: tmp },
    );
    assert.equal(hostile?.leaked, 0);
    assert.equal(hostile?.refused, hostile?.tried);
    assert.ok(security, 'measured');
    assert.deepEqual(security.sources, ['proc', 'metrics']);
    assert.equal(security.pid, children.at(-1)!.pid, 'the process that answers is the one observed');
    assert.ok((security.openDataFiles ?? 0) >= 1, 'the battery read a corpus file in the parser itself');
    assert.ok(security.code && security.code.npm.packages > 10, 'express and its dependencies are loaded');
    assert.equal(security.code.bundled, false);
    assert.deepEqual(security.credentials, []);
    assert.equal(security.isolation, undefined, 'no supervisor named monolith');
    assert.equal(security.writable?.find((w) => w.place === 'data')?.path, corpus);
  });

  it('microkernel: the gateway, not the supervisor holding its socket; 3 processes; NATS isolation tried live', async () => {
    const url = await start(
      [
        'microkernel',
        '--port',
        '0',
        '--data',
        corpus,
        '--supervisor-metrics-port',
        '0',
        '--fs-metrics-port',
        '0',
        '--driver-metrics-port',
        '0',
      ],
      /microkernel ready: (\S+)/,
    );
    const { security } = await measureTargetSecurity(
      { name: 'microkernel', url },
      { corpusDir: corpus, rangeFile, timeoutMs: 5000, stateDir: path.join(tmp, 'kstyles') },
    );
    assert.ok(security, 'measured');
    const gateway = security.processes?.find((p) => p.name === 'gateway')?.pid;
    assert.equal(security.pid, gateway, 'the gateway parses the requests');
    assert.notEqual(security.pid, children.at(-1)!.pid, 'not the supervisor, which holds the same socket');
    assert.equal(security.openDataFiles, 0, 'the gateway reads no data itself');
    assert.deepEqual(security.credentials, ['KSTYLES_NATS_SEED'], 'its own NATS seed only');
    // The gateway runs as a bundle: its modules and npm packages come from the inventory beside it.
    assert.equal(security.code?.bundled, true);
    assert.ok((security.code?.npm.packages ?? 0) > 3, `npm packages: ${security.code?.npm.packages}`);
    const pids = ['gateway', 'fs', 'driver'].map(
      (name) => security.processes?.find((p) => p.name === name)?.pid,
    );
    assert.equal(new Set(pids).size, 3, 'three processes');
    const nats = security.isolation!;
    assert.ok(nats, `isolation measured: ${security.notes?.join('; ')}`);
    assert.deepEqual(
      nats.roles.map((r) => r.role),
      ['gateway', 'fs', 'driver', 'supervisor', 'console'],
      'every NATS user of the microkernel, and the console',
    );
    for (const role of nats.roles) assert.deepEqual(role.unexpectedAllowed, [], role.role);
    assert.equal(nats.anonymous, 'refused');
  });

  it('picks the parser among processes sharing a listening socket: the child the socket was passed to', async () => {
    const server = createServer().listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    const child = spawn(
      process.execPath,
      ['-e', "process.on('message', (m, s) => { process.send('got'); }); setInterval(() => {}, 1000);"],
      {
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      },
    );
    children.push(child);
    child.send('server', server);
    await once(child, 'message');
    try {
      assert.equal(listenerFacts(`http://127.0.0.1:${port}/`)?.pid, child.pid, 'the child');
      assert.equal(
        listenerFacts(`http://127.0.0.1:${port}/`, undefined, process.pid)?.pid,
        process.pid,
        'the one /metrics names',
      );
    } finally {
      child.kill('SIGKILL');
      server.close();
    }
  });
});
