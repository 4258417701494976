/**
 * The microkernel under faults, as real processes: `kstyles microkernel` (supervisor, nats-server,
 * driver, fs, gateway), real signals, real load. docs/architecture.md, 'The microkernel' and 'Faults'.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { KSTYLES_BIN } from '../cli/kit/repo.ts';
import { type TestCorpus, testCorpus } from '../services/contract/testing/test-corpus.ts';
import type { ManifestFile } from '../services/corpus/corpus.ts';
import { encodeFilePath } from '../services/corpus/corpus.ts';
import { BULK_MIN_BYTES } from '../services/driver/nats-server.ts';
import { SHM_MIN_BYTES, shmRoot } from '../services/ipc/shm.ts';
import { natsServerEnv } from '../services/microkernel/nats-config.ts';
import { fetchChecked, openLoopLoad, summarize } from '../services/microkernel/testing/load.ts';
import { type ProcessKernel, startProcessKernel } from '../services/microkernel/testing/process-kernel.ts';
import { errorCounts, freshConnectionLoad } from '../services/supervisor/testing/fresh-connection-load.ts';

let corpus: TestCorpus;
/** The whole mix: every servable file of the corpus (0 B … 4 MiB + 7, mean 234 KiB), each as often. */
let mixed: ManifestFile[];
before(async () => {
  corpus = await testCorpus();
  // In a shuffled order, so small and large files interleave.
  mixed = corpus.manifest.files.filter((f) => !f.poison).sort((a, b) => (a.sha256 < b.sha256 ? -1 : 1));
});

/** Runs the kstyles command line against the kernel's runtime state (its stateEnv); resolves stdout. */
function kstyles(kernel: ProcessKernel, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [KSTYLES_BIN, ...args],
      { env: { ...process.env, ...kernel.stateEnv }, timeout: 20_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
    );
  });
}

async function metricValue(url: string, pattern: RegExp): Promise<number> {
  const text = await (await fetch(url)).text();
  const match = pattern.exec(text);
  return match ? Number(match[1]) : 0;
}

/** Runs `body` against a fresh microkernel, stopping it afterwards whatever happens. */
async function withKernel(
  options: Parameters<typeof startProcessKernel>[0] extends infer O ? Omit<O, 'data'> : never,
  body: (kernel: ProcessKernel) => Promise<void>,
): Promise<void> {
  const kernel = await startProcessKernel({ data: corpus.dir, ...options });
  try {
    await body(kernel);
  } finally {
    await kernel.stop();
  }
}

/**
 * The request deadline of these runs. The design's 5 s is plenty for a driver restart on an idle
 * machine (~1 s), but the shared CI machines run several suites at once and a node process may take
 * 3 s to start there; the claim under test is that retries hide the crash, inside whatever budget.
 */
const DEADLINE = ['--deadline-ms', '10000'];
/**
 * Where a hang is not what is tested, health checks every 3 s (a hang window of 9 s): an overloaded
 * but working server must not be mistaken for a hung one on a crowded machine. Seen before the window
 * took late answers for life (each check then had half an interval), and again after it with a 9 s
 * window: a driver restarted under 200 req/s of large files on a slow boot of the CI machine answered
 * its PINGs behind the granted bytes it had queued for the gateway, was killed as hung, and the second
 * outage pushed requests past the deadline. Those bytes now go on a connection of their own.
 */
const LENIENT = [...DEADLINE, '--heartbeat-ms', '3000'];

/**
 * The load under which a server is SIGKILLed: the whole mix at a rate a slow boot of the CI machine
 * still carries, so that what fails is the fault's doing, not the machine's. Issue 17's 200 req/s
 * (≈47 MB/s of this corpus) is a benchmark figure (`kstyles load`, the README's Results). With every
 * process held to 1.2 CPUs (a cgroup quota, standing in for a slow boot) the microkernel ran 200 req/s
 * at p50 1.4–5.8 s without a fault, and with a driver SIGKILL 37–82 of 1,200 requests reached the 10 s
 * deadline (3 runs): an overload that the outage tips over. At 100 req/s with the kill: p50 0.7–1.0 s,
 * none failed (2 runs).
 */
const KILL_LOAD = { rate: 100, durationMs: 6000 };

/** The supervisor's own log lines: what restarted and why, for failure messages. */
function supervisorLog(kernel: ProcessKernel): string {
  return kernel
    .output()
    .split('\n')
    .filter((line) => line.startsWith('[supervisor'))
    .join('\n');
}

/**
 * The whole mix at 50 req/s for 2 s, no fault, every response checked; then the bytes served and
 * nats-server's connections (`/connz`: what each client sent it).
 */
async function quietLoadThenConnections(kernel: ProcessKernel) {
  const results = await openLoopLoad(kernel.url, mixed, { rate: 50, durationMs: 2000 });
  assert.deepEqual(
    results.filter((r) => !r.ok),
    [],
    summarize(results),
  );
  const served = results.reduce((sum, r) => sum + mixed.find((f) => f.path === r.path)!.size, 0);
  const monitor = kernel.state.info['natsMonitor'] as string;
  const connz = (await (await fetch(`${monitor}/connz?limit=1024`)).json()) as {
    connections: Array<{ name?: string; in_bytes: number }>;
  };
  return { results, served, connz };
}

describe('microkernel under faults (real processes)', { concurrency: false }, () => {
  it(`SIGKILL of the driver at ${KILL_LOAD.rate} req/s: every request completes with the right bytes`, async () => {
    await withKernel({ args: LENIENT }, async (kernel) => {
      const driverPid = await kernel.pidOf('driver');
      const load = openLoopLoad(kernel.url, mixed, KILL_LOAD);
      await sleep(1500);
      const killedAt = Date.now();
      process.kill(driverPid, 'SIGKILL');
      const results = await load;
      const failed = results.filter((r) => !r.ok);
      assert.equal(failed.length, 0, `${summarize(results)}\n${supervisorLog(kernel)}`);

      const ready = await kernel.waitFor(
        (e) => e.service === 'driver' && e.type === 'ready' && e.restarts === 1,
        10_000,
        'driver ready again',
      );
      // The claim is about the requests the crash could have hit: those in flight when it came or sent
      // while no driver served (a bundled driver is back within a few hundred ms, and a loaded test
      // process may send nothing in so short a window, so in-flight ones count too).
      const backAt = Date.parse(ready.time);
      const exposed = results.filter((r) => r.startedAt < backAt && r.startedAt + r.ms > killedAt);
      assert.ok(
        exposed.length > 0,
        `no request was in flight or sent while the driver was down; ${summarize(results)}`,
      );
      const exited = kernel.events.find((e) => e.service === 'driver' && e.type === 'exited');
      assert.equal(exited?.signal, 'SIGKILL');
      const status = await kernel.status();
      const driver = status.children.find((c) => c.name === 'driver')!;
      assert.equal(driver.restarts, 1);
      assert.equal(driver.state, 'up');
      assert.notEqual(driver.pid, driverPid);
      assert.equal(driver.lastExit?.signal, 'SIGKILL');
      // The restarted driver loads its bundle, as the first one did: no TypeScript compiled on restart.
      assert.match(kernel.output(), /microkernel ready: .*servers bundled/);
      assert.match(readFileSync(`/proc/${driver.pid}/cmdline`, 'utf8'), /driver\.mjs/);
      for (const other of status.children.filter((c) => c.name !== 'driver'))
        assert.equal(other.restarts, 0, other.name);
      // The same restart through the command line, as an operator sees it.
      const ps = JSON.parse(await kstyles(kernel, ['ps', '--json'])) as {
        supervisors: Array<{ id: string; status?: { children: Array<{ name: string; restarts: number }> } }>;
      };
      const psDriver = ps.supervisors
        .find((e) => e.id === 'microkernel')
        ?.status?.children.find((c) => c.name === 'driver');
      assert.equal(psDriver?.restarts, 1, JSON.stringify(ps));
      // Metrics of every hop: gateway → fs on the gateway (every request is a stat; small files nothing
      // more), fs → driver (with the retried attempts) on fs.
      const metricsOf = kernel.state.info['metrics'] as Record<string, string>;
      assert.ok(
        (await metricValue(
          metricsOf['gateway']!,
          /kstyles_ipc_request_duration_seconds_count\{from="gateway",to="fs",op="stat",outcome="ok"\} (\d+)/,
        )) > 0,
      );
      assert.ok(
        (await metricValue(
          metricsOf['fs']!,
          /kstyles_ipc_request_duration_seconds_count\{from="fs",to="driver",op="read",outcome="ok"\} (\d+)/,
        )) > 0,
      );
      const supervisorMetrics = kernel.state.metricsUrl!;
      assert.equal(
        await metricValue(
          supervisorMetrics,
          /kstyles_supervisor_restarts_total\{service="driver",reason="crashed"\} (\d+)/,
        ),
        1,
      );
      assert.equal(
        await metricValue(supervisorMetrics, /kstyles_supervisor_recovery_seconds_count (\d+)/),
        1,
      );
      process.stdout.write(`# SIGKILL under load: ${summarize(results)}\n`);
    });
  });

  it(`SIGKILL of the file server at ${KILL_LOAD.rate} req/s: the gateway retries, every request completes with the right bytes`, async () => {
    await withKernel({ args: LENIENT }, async (kernel) => {
      const fsPid = await kernel.pidOf('fs');
      const load = openLoopLoad(kernel.url, mixed, KILL_LOAD);
      await sleep(1500);
      const killedAt = Date.now();
      process.kill(fsPid, 'SIGKILL');
      const results = await load;
      const failed = results.filter((r) => !r.ok);
      assert.equal(failed.length, 0, `${summarize(results)}\n${supervisorLog(kernel)}`);
      const ready = await kernel.waitFor(
        (e) => e.service === 'fs' && e.type === 'ready' && e.restarts === 1,
        10_000,
        'file server ready again',
      );
      const backAt = Date.parse(ready.time);
      const exposed = results.filter((r) => r.startedAt < backAt && r.startedAt + r.ms > killedAt);
      assert.ok(
        exposed.length > 0,
        `no request was in flight or sent while the file server was down; ${summarize(results)}`,
      );
      const status = await kernel.status();
      assert.equal(status.children.find((c) => c.name === 'fs')?.restarts, 1);
      for (const other of status.children.filter((c) => c.name !== 'fs'))
        assert.equal(other.restarts, 0, other.name);
      process.stdout.write(`# file server SIGKILL under load: ${summarize(results)}\n`);
    });
  });

  it('SIGKILL of the gateway under steady fresh-connection load: no connection is refused', async () => {
    await withKernel({ args: LENIENT }, async (kernel) => {
      const gatewayPid = await kernel.pidOf('gateway');
      const load = freshConnectionLoad(
        (i) => `${kernel.url}/files/${encodeFilePath(mixed[i % mixed.length]!.path)}`,
        {
          rate: 100,
          durationMs: 6000,
        },
      );
      await sleep(1500);
      process.kill(gatewayPid, 'SIGKILL');
      const results = await load;
      await kernel.waitFor(
        (e) => e.service === 'gateway' && e.type === 'ready' && e.restarts === 1,
        15_000,
        'gateway ready again',
      );
      const counts = errorCounts(results);
      assert.equal(counts['ECONNREFUSED'] ?? 0, 0, `${JSON.stringify(counts)}\n${supervisorLog(kernel)}`);
      const wrong = results.filter((r) => {
        const file = mixed.find((f) => r.url.endsWith(encodeFilePath(f.path)))!;
        return (
          r.error === undefined &&
          (r.status !== 200 || createHash('sha256').update(r.body).digest('hex') !== file.sha256)
        );
      });
      assert.deepEqual(
        wrong.map((r) => `${r.url} ${r.status}`),
        [],
        'every answered request has the right bytes',
      );
      process.stdout.write(
        `# gateway SIGKILL: ${results.length} requests, failures by code ${JSON.stringify(counts)} (in flight on the killed gateway)\n`,
      );
    });
  });

  it('SIGSTOP of the driver: the heartbeat catches it, it is restarted, requests recover', async () => {
    // The default heartbeat (the hang is what is tested), the fault tests' deadline.
    await withKernel({ args: DEADLINE }, async (kernel) => {
      const driverPid = await kernel.pidOf('driver');
      const load = openLoopLoad(kernel.url, mixed, { rate: 50, durationMs: 8000 });
      await sleep(500);
      const stoppedAt = Date.now();
      process.kill(driverPid, 'SIGSTOP');
      const hung = await kernel.waitFor(
        (e) => e.service === 'driver' && e.type === 'hung',
        8000,
        'hung driver',
      );
      // No answer for the hang window (3 checks 1 s apart): 2-3 s after the last answer. Bounded below the
      // busy window (9 s), which a stopped process, using no CPU, must not be given.
      const detectedMs = Date.parse(hung.time) - stoppedAt;
      assert.ok(detectedMs < 8000, `hang detected after ${detectedMs} ms`);
      assert.doesNotMatch(hung.message ?? '', /while busy/, 'a stopped process uses no CPU');
      const ready = await kernel.waitFor(
        (e) => e.service === 'driver' && e.type === 'ready' && e.restarts === 1,
        10_000,
        'driver ready again',
      );
      const results = await load;
      const readyAt = Date.parse(ready.time);
      const afterRecovery = results.filter((r) => r.startedAt > readyAt);
      assert.ok(afterRecovery.length > 20, 'requests after the restart');
      assert.deepEqual(
        afterRecovery.filter((r) => !r.ok),
        [],
        'requests after recovery succeed',
      );
      const status = await kernel.status();
      const driver = status.children.find((c) => c.name === 'driver')!;
      assert.equal(driver.lastExit?.reason, 'hung');
      assert.notEqual(driver.pid, driverPid);
      process.stdout.write(
        `# SIGSTOP: hang detected in ${detectedMs} ms, recovered in ${ready.recoveryMs} ms; ${summarize(results)}\n`,
      );
    });
  });

  it('poison with chaos: only the poison request fails (500), the others succeed', async () => {
    await withKernel({ args: ['--chaos', ...LENIENT] }, async (kernel) => {
      const poison = corpus.manifest.files.find((f) => f.poison)!;
      const load = openLoopLoad(kernel.url, mixed, { rate: 100, durationMs: 6000 });
      await sleep(1000);
      const res = await fetch(`${kernel.url}/files/${poison.path}`);
      const problem = (await res.json()) as { code: string; detail: string };
      const results = await load;
      assert.equal(res.status, 500, JSON.stringify(problem));
      assert.equal(problem.code, 'INTERNAL');
      assert.match(problem.detail, /poison/);
      assert.deepEqual(
        results.filter((r) => !r.ok),
        [],
        `${summarize(results)}\n${supervisorLog(kernel)}`,
      );
      const driver = (await kernel.status()).children.find((c) => c.name === 'driver')!;
      assert.equal(driver.restarts, 2, 'the poison read crashed the driver twice, then was not retried');
      assert.equal(driver.lastExit?.code, 70);
      // The `slow` fault: SIGUSR2 toggles the driver's added latency and is counted.
      await kernel.waitFor(
        (e) => e.service === 'driver' && e.type === 'ready' && e.restarts === 2,
        15_000,
        'driver ready',
      );
      process.kill(driver.pid!, 'SIGUSR2');
      const driverMetrics = (kernel.state.info['metrics'] as Record<string, string>)['driver']!;
      let slowCount = 0;
      for (const until = Date.now() + 5000; slowCount === 0 && Date.now() < until; await sleep(100)) {
        slowCount = await metricValue(
          driverMetrics,
          /kstyles_faults_injected_total\{[^}]*kind="slow"\} (\d+)/,
        );
      }
      assert.equal(slowCount, 1);
      assert.ok((await fetchChecked(kernel.url, mixed[0]!)).ok, 'a slow driver still serves');
      process.stdout.write(`# poison: ${summarize(results)}\n`);
    });
  });

  it('NATS restart: clients reconnect and service resumes without restarting the servers', async () => {
    await withKernel({ args: LENIENT }, async (kernel) => {
      const before = await kernel.status();
      const pids = Object.fromEntries(before.children.map((c) => [c.name, c.pid]));
      process.kill(pids['nats']!, 'SIGKILL');
      // The supervisor publishes its events through NATS: while NATS is away, ask for the status instead.
      let natsBack = false;
      for (const until = Date.now() + 15_000; !natsBack && Date.now() < until; await sleep(200)) {
        const nats = (await kernel.status().catch(() => undefined))?.children.find((c) => c.name === 'nats');
        natsBack = nats?.state === 'up' && nats.restarts === 1;
      }
      assert.ok(natsBack, 'nats-server restarted by the supervisor');
      // Both incarnations run with the bus's collector target (nats-config.ts, natsServerEnv).
      const natsPid = (await kernel.status()).children.find((c) => c.name === 'nats')!.pid!;
      const environ = readFileSync(`/proc/${natsPid}/environ`, 'utf8').split('\0');
      assert.ok(environ.includes(`GOGC=${natsServerEnv().GOGC}`), 'nats-server runs with GOGC');
      assert.ok(environ.includes(`GODEBUG=${natsServerEnv().GODEBUG}`), 'nats-server runs with GODEBUG');
      const file = mixed.find((f) => f.size > 300_000)!;
      let first: Awaited<ReturnType<typeof fetchChecked>> | undefined;
      const until = Date.now() + 8000;
      while (Date.now() < until) {
        first = await fetchChecked(kernel.url, file);
        if (first.ok) break;
        await sleep(100);
      }
      assert.ok(first?.ok, `service did not resume: ${JSON.stringify(first)}`);
      const results = await openLoopLoad(kernel.url, mixed, { rate: 100, durationMs: 1500 });
      assert.deepEqual(
        results.filter((r) => !r.ok),
        [],
        `${summarize(results)}\n${supervisorLog(kernel)}`,
      );
      const afterwards = await kernel.status();
      for (const child of afterwards.children.filter((c) => c.name !== 'nats')) {
        assert.equal(child.pid, pids[child.name], `${child.name} kept its process`);
        assert.equal(child.restarts, 0, `${child.name} was not restarted`);
      }
    });
  });

  it("the driver's warm spare opens its bulk connection before it waits, and the activated driver publishes on it", async () => {
    await withKernel({ args: LENIENT }, async (kernel) => {
      const monitor = kernel.state.info['natsMonitor'] as string;
      // nats-server's clients named as the driver's bulk connection, with when each connected.
      const bulkConnections = async () => {
        const connz = (await (await fetch(`${monitor}/connz?limit=1024`)).json()) as {
          connections: Array<{ cid: number; name?: string; start: string }>;
        };
        return connz.connections
          .filter((c) => c.name === 'kstyles-driver-bulk')
          .map((c) => ({ cid: c.cid, startedAt: Date.parse(c.start.replace(/(\.\d{3})\d+/, '$1')) }));
      };
      // The driver's and its spare's: the spare boots beside the driver at the first start.
      let before: { cid: number }[] = [];
      for (const until = Date.now() + 15_000; before.length < 2 && Date.now() < until; await sleep(100))
        before = await bulkConnections();
      assert.equal(before.length, 2, `bulk connections while the spare waits: ${JSON.stringify(before)}`);
      const driverPid = await kernel.pidOf('driver');
      process.kill(driverPid, 'SIGKILL');
      const ready = await kernel.waitFor(
        (e) => e.service === 'driver' && e.type === 'ready' && e.restarts === 1,
        10_000,
        'driver ready again',
      );
      // The dead driver's connection is gone and the spare's stays; the activated driver opened none
      // before it was ready. (The next spare, booting 1 s after that, opens one of its own: told apart
      // by its start, not by how soon this test reads /connz.)
      const after = await bulkConnections();
      const connections = JSON.stringify({ before, after, readyAt: ready.time });
      const kept = after.filter((c) => before.some((b) => b.cid === c.cid));
      assert.equal(kept.length, 1, `one of the two bulk connections survives the kill: ${connections}`);
      const openedByTheActivated = after.filter(
        (c) => !kept.includes(c) && c.startedAt <= Date.parse(ready.time),
      );
      assert.deepEqual(openedByTheActivated, [], `bulk connections opened before the ready: ${connections}`);
      const results = await openLoopLoad(kernel.url, mixed, { rate: 50, durationMs: 1000 });
      assert.deepEqual(
        results.filter((r) => !r.ok),
        [],
        summarize(results),
      );
    });
  });

  it("the driver's large granted payloads go on a connection of their own, its answers on the other (nats-server's /connz)", async () => {
    await withKernel({ args: LENIENT }, async (kernel) => {
      // in_bytes: what a client sent to nats-server. Every served byte was granted (the stat's first
      // bytes and every chunk went from the driver straight to the gateway); of each file at most one
      // payload, its last, is under BULK_MIN_BYTES and rides with the acknowledgements.
      const { results, served, connz } = await quietLoadThenConnections(kernel);
      // Summed over every connection of the name: a warm spare holds one more, idle, named alike.
      const sent = (name: string) =>
        connz.connections.some((c) => c.name === name)
          ? connz.connections.filter((c) => c.name === name).reduce((sum, c) => sum + c.in_bytes, 0)
          : undefined;
      const bulk = sent('kstyles-driver-bulk');
      const answering = sent('kstyles-driver');
      assert.ok(
        bulk !== undefined && answering !== undefined,
        JSON.stringify(connz.connections.map((c) => c.name)),
      );
      const small = results.length * BULK_MIN_BYTES;
      assert.ok(bulk >= served - small, `bulk sent ${bulk} bytes; ${served} were served`);
      assert.ok(
        answering <= small,
        `the answering connection sent ${answering} bytes; ${served} were served`,
      );
      process.stdout.write(
        `# connections: ${served} bytes served, ${bulk} sent on bulk, ${answering} on the other\n`,
      );
    });
  });

  it('shm transfers: large payloads cross no socket, a driver SIGKILL loses nothing, the segment directory goes with the run', async () => {
    // A directory left by a run whose supervisor was killed: removed at the next start.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    const orphan = path.join(shmRoot(), `kstyles-shm-${dead}-test`);
    mkdirSync(orphan, { recursive: true });
    const kernel = await startProcessKernel({ data: corpus.dir, args: [...LENIENT, '--transfer', 'shm'] });
    let dir = '';
    try {
      assert.ok(!existsSync(orphan), "the dead run's segment directory was removed");
      const shmDirOf = async (child: string) =>
        /--shm-dir\0([^\0]+)/.exec(readFileSync(`/proc/${await kernel.pidOf(child)}/cmdline`, 'utf8'))?.[1];
      dir = (await shmDirOf('driver')) ?? '';
      assert.match(path.basename(dir), new RegExp(`^kstyles-shm-${kernel.proc.pid}-`));
      assert.equal(await shmDirOf('gateway'), dir, 'the gateway reads where the driver writes');
      assert.equal(await shmDirOf('fs'), undefined, 'the file server never sees the bytes');

      // in_bytes: what the driver's connections sent to nats-server. A payload of SHM_MIN_BYTES or more
      // went in a segment; at most two payloads of a file (its first bytes, its last chunk) are smaller.
      const { results: quiet, served, connz } = await quietLoadThenConnections(kernel);
      const sent = connz.connections
        .filter((c) => c.name?.startsWith('kstyles-driver'))
        .reduce((sum, c) => sum + c.in_bytes, 0);
      assert.ok(
        sent <= quiet.length * 2 * SHM_MIN_BYTES && sent < served / 2,
        `the driver sent ${sent} bytes on the bus; ${served} were served`,
      );
      process.stdout.write(`# shm: ${served} bytes served, ${sent} sent by the driver on the bus\n`);

      const driverPid = await kernel.pidOf('driver');
      const load = openLoopLoad(kernel.url, mixed, KILL_LOAD);
      await sleep(1500);
      process.kill(driverPid, 'SIGKILL');
      const results = await load;
      assert.equal(results.filter((r) => !r.ok).length, 0, `${summarize(results)}\n${supervisorLog(kernel)}`);
      await kernel.waitFor(
        (e) => e.service === 'driver' && e.type === 'ready' && e.restarts === 1,
        10_000,
        'driver ready again',
      );
      assert.equal(await shmDirOf('driver'), dir, 'the restarted driver writes where the gateway reads');
      process.stdout.write(`# shm, driver SIGKILL under load: ${summarize(results)}\n`);
    } finally {
      await kernel.stop();
      rmSync(orphan, { recursive: true, force: true });
    }
    assert.ok(dir !== '' && !existsSync(dir), `the run's segment directory ${dir} went with it`);
  });

  it('crashloop through the control API: the driver fails its next 3 starts, then serves again', async () => {
    await withKernel({ args: ['--chaos', ...LENIENT] }, async (kernel) => {
      const driverPid = await kernel.pidOf('driver');
      const said = await kstyles(kernel, ['chaos', 'microkernel:driver', 'crashloop', '--times', '3']);
      assert.match(said, new RegExp(`next 3 start\\(s\\) exit at once; SIGKILL sent to pid ${driverPid}`));
      await kernel.waitFor(
        (e) => e.service === 'driver' && e.type === 'ready' && e.restarts === 4,
        30_000,
        'the driver ready after the kill and three failed starts',
      );
      const driverEvents = kernel.events.filter((e) => e.service === 'driver');
      assert.deepEqual(
        driverEvents.filter((e) => e.type === 'exited').map((e) => e.signal ?? e.code),
        ['SIGKILL', 70, 70, 70],
      );
      const delays = driverEvents.filter((e) => e.type === 'restarting').map((e) => e.delayMs!);
      assert.equal(delays[0], 0, 'the first restart is immediate');
      assert.ok(
        delays[1]! > 0 && delays[2]! > delays[1]! && delays[3]! > delays[2]!,
        `growing backoff: ${delays}`,
      );
      assert.equal([...kernel.output().matchAll(/chaos crashloop: start \d of 3 exits at once/g)].length, 3);
      const status = await kernel.status();
      const driver = status.children.find((c) => c.name === 'driver')!;
      assert.equal(driver.state, 'up');
      assert.equal(driver.restarts, 4);
      assert.equal(driver.crashStartsLeft, 0);
      for (const other of status.children.filter((c) => c.name !== 'driver'))
        assert.equal(other.restarts, 0, other.name);
      const results = await openLoopLoad(kernel.url, mixed, { rate: 50, durationMs: 1000 });
      assert.deepEqual(
        results.filter((r) => !r.ok),
        [],
        `serving again after the crash loop: ${summarize(results)}`,
      );
    });
  });

  it('crash loop past the restart intensity: backoff, the supervisor gives up, a non-zero exit', async () => {
    const kernel = await startProcessKernel({
      data: corpus.dir,
      args: ['--chaos', '--max-restarts', '3', '--restart-period-ms', '20000'],
    });
    try {
      await kstyles(kernel, ['chaos', 'microkernel:driver', 'crashloop', '--times', '1000']);
      const exit = await Promise.race([
        kernel.exited,
        // Unreferenced: a referenced 30 s timer kept this file's process alive 30 s past its last test.
        sleep(30_000, undefined, { ref: false }).then(() => ({ code: 'timeout' as const, signal: null })),
      ]);
      const output = kernel.output();
      assert.equal(exit.code, 1, output);
      const delays = [...output.matchAll(/driver restarting .*delayMs=(\d+)/g)].map((m) => Number(m[1]));
      assert.equal(delays.length, 3, output);
      assert.equal(delays[0], 0, 'the first restart is immediate');
      assert.ok(delays[1]! > 0 && delays[2]! > delays[1]!, `growing backoff: ${delays.join(', ')}`);
      assert.match(output, /driver gave_up/);
      assert.match(output, /gave up after more than 3 restarts/);
      // The kill, then three starts that exit at once: the fourth restart is one too many.
      assert.equal([...output.matchAll(/chaos crashloop: start \d+ of 1000 exits at once/g)].length, 3);
    } finally {
      await kernel.stop();
    }
  });
});
