import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { KSTYLES_BIN } from '../cli/kit/repo.ts';
import { type TestCorpus, testCorpus } from '../services/contract/testing/test-corpus.ts';
import { runHostileBattery } from './hostile-battery.ts';
import { runLoad } from './run-load.ts';
import { seedComparison } from './seed-comparison.ts';

let corpus: TestCorpus;
const children: ChildProcess[] = [];
before(async () => {
  corpus = await testCorpus();
});
after(() => {
  for (const child of children) child.kill('SIGKILL');
});

/** `kstyles monolith` on a free port over the contract's test corpus; resolves with its URL. */
async function monolith(): Promise<string> {
  const child = spawn(process.execPath, [KSTYLES_BIN, 'monolith', '--port', '0', '--data', corpus.dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  let out = '';
  for await (const chunk of child.stdout!) {
    out += chunk;
    const line = out.split('\n').find((l) => l.includes('"monolith listening"'));
    if (line) return (JSON.parse(line) as { url: string }).url;
  }
  throw new Error(`kstyles monolith exited before listening: ${out}`);
}

const HELLO = { urlPath: '/files/docs/hello%20world.txt', size: 'hello world\n'.length };

describe('hostile battery', () => {
  it('a real monolith refuses every probe and leaks nothing', async () => {
    const url = await monolith();
    const size = (await readFile(`${corpus.dir}/docs/hello world.txt`)).length;
    const outcome = await runHostileBattery(url, { ...HELLO, size });
    assert.deepEqual(outcome.unexpected, []);
    assert.equal(outcome.leaked, 0);
    assert.ok(outcome.tried >= 50, `${outcome.tried} probes`);
    assert.equal(outcome.refused, outcome.tried);
    assert.equal((await fetch(`${url}/healthz`)).status, 200, 'still up after the battery');
  });

  it('counts a server that serves /etc/passwd to traversal as leaking', async () => {
    const passwd = await readFile('/etc/passwd');
    const server = createServer((req, res) => {
      if (req.url?.includes('etc')) res.writeHead(200).end(passwd);
      else if (req.headers.range) res.writeHead(500).end();
      else res.writeHead(404, { 'content-type': 'text/plain' }).end('no');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      const outcome = await runHostileBattery(`http://127.0.0.1:${port}`, HELLO);
      const passwdProbes = outcome.tried - outcome.refused - outcome.unexpected.length;
      assert.equal(outcome.leaked, passwdProbes);
      assert.ok(outcome.leaked >= 20, `${outcome.leaked} leaked`);
      assert.ok(
        outcome.unexpected.some((u) => u.includes('without problem+json')),
        'a plain-text 404 is not the contract',
      );
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('hostile battery in a load report', () => {
  it("runs before the load and fills the Security cell of each target's style", async () => {
    const url = await monolith();
    const results = await runLoad({
      targets: [{ name: 'monolith', url }],
      rate: 20,
      durationMs: 500,
      corpusDir: corpus.dir,
    });
    const hostile = results.facts?.monolith?.hostile;
    assert.ok(hostile, 'the battery ran');
    assert.deepEqual(hostile.unexpected, []);
    assert.equal(hostile.leaked, 0);
    assert.equal(hostile.refused, hostile.tried);
    assert.equal(results.targets[0]!.outcomes.ok, results.targets[0]!.sent, 'the load after it is served');
    const security = seedComparison(results).find((row) => row.key === 'security')!;
    assert.equal(security.cells.monolith.claim, 'Lower (large attack surface)');
    assert.ok(
      security.cells.monolith.measured.includes(
        `hostile requests: ${hostile.tried} tried, ${hostile.tried} refused, 0 leaked`,
      ),
      security.cells.monolith.measured.join('; '),
    );
  });
});
