import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import { inspectProcess } from '../services/contract/process-inspection.ts';
import { listenerFacts } from './process-facts.ts';

const children: ChildProcess[] = [];
after(() => {
  for (const child of children) child.kill('SIGKILL');
});

/** A node process listening on `listeners` loopback ports; resolves once it says it listens. */
async function listener(listeners: number): Promise<ChildProcess> {
  const code = `const net = require('node:net'); let n = ${listeners};
    if (n === 0) console.log('ready');
    for (let i = 0; i < ${listeners}; i++) net.createServer().listen(0, '127.0.0.1', () => { if (--n === 0) console.log('ready'); });
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  await once(child.stdout!, 'data');
  return child;
}

describe('inspectProcess and listenerFacts (from /proc)', {
  skip: process.platform !== 'linux' && 'reads /proc',
}, () => {
  it("counts a process's listening sockets, open fds and its uid", async () => {
    const two = await listener(2);
    const none = await listener(0);
    const factsTwo = inspectProcess(two.pid!);
    const factsNone = inspectProcess(none.pid!);
    assert.equal(factsTwo.listeningSockets, 2);
    assert.equal(factsNone.listeningSockets, 0);
    assert.equal(factsTwo.uid, process.getuid!());
    assert.ok(factsTwo.openFds >= factsNone.openFds + 2, `${factsTwo.openFds} vs ${factsNone.openFds}`);
  });

  it('finds the process listening on a loopback URL, and nothing for a port no one listens on', async () => {
    const child = spawn(
      process.execPath,
      [
        '-e',
        "const s = require('node:net').createServer().listen(0, '127.0.0.1', () => console.log(s.address().port)); setInterval(() => {}, 1000);",
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(child);
    const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
    const port = Number(chunk.toString().trim());
    assert.equal(listenerFacts(`http://127.0.0.1:${port}/`)?.pid, child.pid);
    assert.equal(listenerFacts(`http://127.0.0.1:${port}/`)?.listeningSockets, 1);
    child.kill('SIGKILL');
    await once(child, 'exit');
    assert.equal(listenerFacts(`http://127.0.0.1:${port}/`), undefined);
    assert.equal(listenerFacts('http://example.com:80/'), undefined, 'not on this machine');
  });

  it('throws for a process that does not exist', () => {
    assert.throws(() => inspectProcess(2 ** 22 + 1), /ENOENT/);
  });
});
