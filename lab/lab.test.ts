/**
 * `kstyles up --transfer`: the lab passes the microkernel's transfer mode down to its file server (a
 * real lab as processes, every port free-chosen, its runtime state in a temporary directory), every
 * Node server it starts runs with the allocator settings, and a bad value is a usage error naming the
 * flag before anything starts.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { KSTYLES_BIN, REPO_ROOT } from '../cli/kit/repo.ts';
import { checkScenarioTargets, loadScenario } from '../load/scenario.ts';
import { freePort } from '../services/contract/http-server.ts';
import { MALLOC_ENV } from '../services/contract/malloc-env.ts';
import { testCorpus } from '../services/contract/testing/test-corpus.ts';
import { encodeFilePath } from '../services/corpus/corpus.ts';

type Run = { code: number; stdout: string; stderr: string };

function kstyles(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [KSTYLES_BIN, ...args],
      { cwd: REPO_ROOT, env: { ...process.env, ...env }, timeout: 60_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('lab/scenarios/microkernel-kills.yaml', () => {
  it('kills the microkernel driver, file server and gateway in turn, and nothing of the other styles', async () => {
    const scenario = await loadScenario(path.join(REPO_ROOT, 'lab', 'scenarios', 'microkernel-kills.yaml'));
    checkScenarioTargets(scenario, ['monolith', 'microkernel', 'unikernel']);
    assert.deepEqual(
      scenario.faults.map((f) => `${f.target} ${f.kind}`),
      ['microkernel:driver kill', 'microkernel:fs kill', 'microkernel:gateway kill'],
    );
  });
});

describe('kstyles up --transfer', () => {
  it('refuses a bad transfer mode with exit 2 naming the flag (up, demo, microkernel; flag or environment)', async () => {
    const data = (await testCorpus()).dir;
    const cases = [
      [['up', '--data', data, '--transfer', 'zero-copy'], {}],
      [['up', '--data', data], { KSTYLES_TRANSFER: 'zero-copy' }],
      [['demo', '--data', data, '--transfer', 'zero-copy'], {}],
      [['microkernel', '--data', data, '--transfer', 'zero-copy'], {}],
    ] as const;
    // At once: each refuses before it starts anything, so they cannot meet.
    const runs = await Promise.all(
      cases.map(async ([args, env]) => ({ args, run: await kstyles([...args], env) })),
    );
    for (const { args, run } of runs) {
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, /--transfer must be grant, copy or shm, not 'zero-copy'/);
      assert.doesNotMatch(run.stderr, /at .*\.ts:\d+/, 'a message, not a stack trace');
    }
  });

  it('says how to get nats-server when there is none (up, demo, microkernel), with exit 2 and no stack', async () => {
    const data = (await testCorpus()).dir;
    const cases = [['up'], ['demo'], ['microkernel', '--port', '0']];
    // At once: each stops at the missing binary, before it binds or writes anything.
    const runs = await Promise.all(
      cases.map(async (args) => ({
        args,
        run: await kstyles([...args, '--data', data], { NATS_SERVER_BIN: '/nonexistent/nats-server' }),
      })),
    );
    for (const { args, run } of runs) {
      assert.equal(run.code, 2, `${args[0]}: ${run.stderr}`);
      assert.match(
        run.stderr,
        new RegExp(`^kstyles ${args[0]}: nats-server not found: install it with`, 'm'),
      );
      assert.match(run.stderr, /or point NATS_SERVER_BIN at the binary/);
      assert.doesNotMatch(run.stderr, /at .*\.ts:\d+/, 'a message, not a stack trace');
    }
  });

  it("reaches the microkernel's file server: the lab runs the transfer it was given", async () => {
    const corpus = await testCorpus();
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'kstyles-lab-transfer-'));
    const flagOf = {
      'monolith-port': await freePort(),
      'microkernel-port': await freePort(),
      'unikernel-port': await freePort(),
      'nats-port': await freePort(),
      'nats-monitor-port': await freePort(),
      'metrics-port': await freePort(),
      'console-port': await freePort(),
      'supervisor-metrics-port': await freePort(),
      'fs-metrics-port': await freePort(),
      'driver-metrics-port': await freePort(),
    };
    const stateEnv = { TMPDIR: tmp, XDG_RUNTIME_DIR: tmp };
    const env: NodeJS.ProcessEnv = { ...process.env, ...stateEnv };
    delete env.KSTYLES_TRANSFER;
    // The allocator settings must come from the lab, not from this test's environment.
    for (const name of Object.keys(MALLOC_ENV)) delete env[name];
    const lab = spawn(
      process.execPath,
      [
        KSTYLES_BIN,
        'up',
        '--data',
        corpus.dir,
        '--transfer',
        'copy',
        '--traces-dir',
        path.join(tmp, 'traces'),
        ...Object.entries(flagOf).flatMap(([flag, port]) => [`--${flag}`, String(port)]),
      ],
      { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    let output = '';
    lab.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    lab.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => lab.once('exit', (code) => resolve(code)));
    try {
      for (const until = Date.now() + 120_000; !output.includes('the lab is up'); ) {
        assert.ok(Date.now() < until, `the lab did not come up:\n${output}`);
        assert.equal(lab.exitCode, null, `the lab exited:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.match(output, /the lab is up \(chaos off, microkernel transfer copy,/);
      // The file server itself says which transfer it runs in its ready line.
      assert.match(output, / fs \| [^\n]*"transfer":"copy"/, output);
      type Ps = {
        supervisors: Array<{
          id: string;
          status?: {
            info?: Record<string, unknown>;
            children: Array<{ name: string; pid: number | null; restarts: number; state: string }>;
          };
        }>;
      };
      const ps = async () => JSON.parse((await kstyles(['ps', '--json'], stateEnv)).stdout) as Ps;
      const childOf = (state: Ps, supervisor: string, name: string) =>
        state.supervisors.find((s) => s.id === supervisor)?.status?.children.find((c) => c.name === name);
      const first = await ps();
      const info = first.supervisors.find((s) => s.id === 'microkernel')?.status?.info;
      assert.equal(info?.['transfer'], 'copy', JSON.stringify(first));
      const file = corpus.manifest.files.find((f) => f.path === 'bench/1m.bin')!;
      const res = await fetch(
        `http://127.0.0.1:${flagOf['microkernel-port']}/files/${encodeFilePath(file.path)}`,
      );
      assert.equal(res.status, 200);
      assert.equal((await res.arrayBuffer()).byteLength, file.size);

      // Every Node server of the lab keeps its freed memory (services/contract/malloc-env.ts).
      const servers = [
        childOf(first, 'lab', 'monolith'),
        childOf(first, 'lab', 'unikernel'),
        ...['gateway', 'fs', 'driver'].map((name) => childOf(first, 'microkernel', name)),
      ];
      for (const server of servers) {
        assert.ok(server?.pid, JSON.stringify(first));
        const environ = readFileSync(`/proc/${server.pid}/environ`, 'utf8').split('\0');
        for (const [name, value] of Object.entries(MALLOC_ENV)) {
          assert.ok(environ.includes(`${name}=${value}`), `${server.name} runs with ${name}=${value}`);
        }
      }

      // A hung gateway is the microkernel supervisor's to restart; the lab watches that supervisor, and
      // leaves the microkernel alone (it used to kill it all for a gateway slow to answer /healthz).
      // Counted from its restarts before the stop: a loaded machine can make a check miss earlier.
      const stopped = childOf(await ps(), 'microkernel', 'gateway');
      assert.ok(stopped?.pid, JSON.stringify(first));
      process.kill(stopped.pid, 'SIGSTOP');
      let gatewayBack = false;
      for (const until = Date.now() + 40_000; !gatewayBack && Date.now() < until; ) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        const gateway = childOf(await ps(), 'microkernel', 'gateway');
        gatewayBack =
          (gateway?.restarts ?? 0) > stopped.restarts &&
          gateway?.state === 'up' &&
          gateway.pid !== stopped.pid;
      }
      assert.ok(gatewayBack, 'the microkernel supervisor restarted its hung gateway');
      const after = await ps();
      assert.equal(
        childOf(after, 'lab', 'microkernel')?.restarts,
        0,
        'the lab did not restart the microkernel',
      );
    } finally {
      lab.kill('SIGTERM');
      const timer = setTimeout(() => {
        try {
          process.kill(-lab.pid!, 'SIGKILL');
        } catch {
          // Gone already.
        }
      }, 20_000);
      await exited;
      clearTimeout(timer);
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
