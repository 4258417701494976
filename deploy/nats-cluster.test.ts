/**
 * The scale-out claim of deploy/k8s, on loopback: a 3-node NATS cluster (real nats-server processes with
 * cluster routes, the microkernel's users and permissions), the driver, file server and gateway each
 * attached to a different node, load through the gateway, and one NATS node killed under that load. The
 * server that was on it reconnects to a surviving node (learned from the cluster's INFO, as the
 * Kubernetes pods do through the `nats` Service) and requests keep being served with the right bytes.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT as REPO } from '../cli/kit/repo.ts';
import { testCorpus } from '../services/contract/testing/test-corpus.ts';
import { encodeFilePath } from '../services/corpus/corpus.ts';
import { generateKeyPairs, type NatsRole, renderNatsConfig } from '../services/microkernel/nats-config.ts';
import { freePort, NATS_SERVER_BIN } from '../services/supervisor/testing/nats-server.ts';
import { clusterBlock } from './nats/render-nats-conf.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Node = { name: string; client: number; monitor: number; route: number; proc?: ChildProcess };

const children: ChildProcess[] = [];
const logs = new Map<string, string>();

function launch(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const proc = spawn(command, args, {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  logs.set(name, '');
  const keep = (chunk: Buffer) => logs.set(name, `${logs.get(name)}${chunk}`.slice(-4000));
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  proc.once('error', () => {});
  children.push(proc);
  return proc;
}

async function waitUntil(what: string, check: () => Promise<boolean>, boundMs: number): Promise<void> {
  const until = Date.now() + boundMs;
  while (Date.now() < until) {
    if (await check().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`${what} within ${boundMs} ms\n${[...logs].map(([n, l]) => `--- ${n}\n${l}`).join('\n')}`);
}

async function routeCount(node: Node): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${node.monitor}/routez`);
  return ((await res.json()) as { num_routes: number }).num_routes;
}

describe('microkernel across a 3-node NATS cluster (loopback)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kstyles-nats-cluster-'));
  const users = generateKeyPairs();
  const nodes: Node[] = [];
  let gatewayUrl = '';

  before(async () => {
    for (const name of ['a', 'b', 'c']) {
      nodes.push({ name, client: await freePort(), monitor: await freePort(), route: await freePort() });
    }
    const routes = nodes.map((n) => `nats://127.0.0.1:${n.route}`);
    for (const node of nodes) {
      const file = path.join(dir, `nats-${node.name}.conf`);
      writeFileSync(
        file,
        renderNatsConfig({
          host: '127.0.0.1',
          port: node.client,
          monitorPort: node.monitor,
          users,
          serverName: `kstyles-${node.name}`,
        }) + clusterBlock({ name: 'kstyles-test', listen: `127.0.0.1:${node.route}`, routes }),
      );
      node.proc = launch(`nats-${node.name}`, NATS_SERVER_BIN, ['-c', file]);
    }
    for (const node of nodes) {
      await waitUntil(
        `nats-${node.name} routed to both others`,
        async () => (await routeCount(node)) === 2,
        15_000,
      );
    }

    const corpus = await testCorpus();
    const server = (role: NatsRole, node: Node, file: string, args: string[]) =>
      launch(
        role,
        process.execPath,
        ['--import', 'tsx', file, '--nats', `nats://127.0.0.1:${node.client}`, ...args],
        {
          KSTYLES_NATS_SEED: users[role].seed,
          KSTYLES_CHAOS: '0',
        },
      );
    const [a, b, c] = nodes as [Node, Node, Node];
    server('driver', a, 'services/driver/main.ts', []);
    server('fs', b, 'services/fs/main.ts', ['--data', corpus.dir]);
    const port = await freePort();
    // The fault tests' deadline (test/microkernel-faults.test.ts): the claim is that no request is lost
    // when a node dies, inside whatever budget; once on CI, with the whole suite on 2 cores, a request
    // in flight at the kill outlived the default 5 s (here they take 0.1–1.1 s at 0.8 CPU).
    server('gateway', c, 'services/gateway/main.ts', [
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--deadline-ms',
      '10000',
    ]);
    gatewayUrl = `http://127.0.0.1:${port}`;
    await waitUntil(
      'the gateway is ready (fs and driver answer across the cluster)',
      async () => (await fetch(`${gatewayUrl}/readyz`)).status === 200,
      60_000,
    );
  });

  after(async () => {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await sleep(100);
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves correct bytes through servers attached to three different nodes', async () => {
    const corpus = await testCorpus();
    for (const file of corpus.manifest.files.filter((f) => !f.poison).slice(0, 10)) {
      const res = await fetch(`${gatewayUrl}/files/${encodeFilePath(file.path)}`);
      assert.equal(res.status, 200, file.path);
      const sha = createHash('sha256')
        .update(Buffer.from(await res.arrayBuffer()))
        .digest('hex');
      assert.equal(sha, file.sha256, file.path);
    }
  });

  it("keeps serving when the driver's NATS node is killed under load", async (t) => {
    const corpus = await testCorpus();
    const files = corpus.manifest.files.filter((f) => !f.poison && f.size < 256 * 1024);
    let stop = false;
    let served = 0;
    let servedAfterKill = 0;
    // 0 until the node is killed.
    let killedAt = 0;
    // The slowest request in flight at the kill: how close the outage came to the deadline.
    let slowestAcrossKillMs = 0;
    const failures: string[] = [];
    const worker = async (offset: number) => {
      for (let i = offset; !stop; i += 4) {
        const file = files[i % files.length]!;
        const sentAt = Date.now();
        try {
          const res = await fetch(`${gatewayUrl}/files/${encodeFilePath(file.path)}`, {
            signal: AbortSignal.timeout(15_000),
          });
          const body = Buffer.from(await res.arrayBuffer());
          const sha = createHash('sha256').update(body).digest('hex');
          if (res.status !== 200 || sha !== file.sha256) failures.push(`${file.path}: HTTP ${res.status}`);
          else {
            served++;
            if (killedAt > 0) servedAfterKill++;
            if (sentAt <= killedAt) slowestAcrossKillMs = Math.max(slowestAcrossKillMs, Date.now() - sentAt);
          }
        } catch (err) {
          failures.push(`${file.path}: ${(err as Error).message}`);
        }
        await sleep(10);
      }
    };
    const workers = [0, 1, 2, 3].map(worker);
    // The kill lands in a load that has run for a second (the cluster settled, as before) and served 20
    // requests: counted as well as timed, since a loaded machine serves fewer in a second.
    await sleep(1000);
    await waitUntil('requests are served before the kill', async () => served >= 20, 20_000);
    const driverNode = nodes[0]!;
    driverNode.proc!.kill('SIGKILL');
    killedAt = Date.now();
    // The driver reconnects to a surviving node; the file server retries its reads meanwhile.
    await waitUntil('requests are served after the kill', async () => servedAfterKill >= 20, 20_000);
    await sleep(1000);
    stop = true;
    await Promise.all(workers);
    t.diagnostic(`the slowest request in flight at the kill took ${slowestAcrossKillMs} ms`);
    const survivors = nodes.slice(1);
    const routes = await Promise.all(survivors.map(routeCount));
    assert.deepEqual(routes, [1, 1], 'the two survivors still route to each other');
    assert.deepEqual(
      failures.slice(0, 5),
      [],
      `${failures.length} failed requests after killing nats-a (${Date.now() - killedAt} ms of load after the kill; the slowest request in flight at the kill took ${slowestAcrossKillMs} ms)`,
    );
  });
});
