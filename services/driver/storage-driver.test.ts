import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ErrorCode } from '../contract/errors.ts';
import type { FileRef } from './block-reader.ts';
import { DriverChaos } from './chaos.ts';
import { StorageDriver } from './storage-driver.ts';

let dir: string;

async function ref(name: string): Promise<FileRef> {
  const realPath = join(dir, name);
  const info = await stat(realPath);
  return { realPath, relPath: name, ino: info.ino, size: info.size, mtimeMs: info.mtimeMs };
}

describe('StorageDriver', () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kstyles-driver-'));
    for (let i = 0; i < 10; i++) await writeFile(join(dir, `f${i}`), Buffer.alloc(100, i));
    await writeFile(join(dir, 'abc'), 'abcdefghij');
    await symlink(join(dir, 'abc'), join(dir, 'link'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('reads byte ranges at any position', async () => {
    const driver = new StorageDriver();
    assert.equal(Buffer.from(await driver.read(await ref('abc'), 2, 3)).toString(), 'cde');
    assert.equal(Buffer.from(await driver.read(await ref('abc'), 9, 1)).toString(), 'j');
    await driver.close();
  });

  it('keeps at most maxOpenFiles descriptors open', async () => {
    const driver = new StorageDriver({ maxOpenFiles: 3 });
    for (let i = 0; i < 10; i++) {
      const bytes = await driver.read(await ref(`f${i}`), 0, 100);
      assert.equal(bytes[0], i);
      assert.ok(driver.openFiles <= 3, `open files ${driver.openFiles}`);
    }
    const concurrent = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => (await driver.read(await ref(`f${i}`), 50, 10))[0]),
    );
    assert.deepEqual(concurrent, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.ok(driver.openFiles <= 3);
    await driver.close();
    assert.equal(driver.openFiles, 0);
  });

  it('reopens a file that was replaced (new inode) instead of serving stale bytes', async () => {
    const driver = new StorageDriver();
    await writeFile(join(dir, 'swap'), 'old!');
    assert.equal(Buffer.from(await driver.read(await ref('swap'), 0, 4)).toString(), 'old!');
    await rm(join(dir, 'swap'));
    await writeFile(join(dir, 'swap'), 'new!');
    assert.equal(Buffer.from(await driver.read(await ref('swap'), 0, 4)).toString(), 'new!');
    await driver.close();
  });

  it('refuses to follow a symlink swapped in after confinement (O_NOFOLLOW)', async () => {
    const driver = new StorageDriver();
    const info = await stat(join(dir, 'abc'));
    const linkRef = {
      realPath: join(dir, 'link'),
      relPath: 'link',
      ino: info.ino,
      size: 10,
      mtimeMs: info.mtimeMs,
    };
    await assert.rejects(driver.read(linkRef, 0, 1), { code: ErrorCode.INTERNAL });
    await driver.close();
  });

  it('fails cleanly when the file is shorter than the range asked for', async () => {
    const driver = new StorageDriver();
    await assert.rejects(driver.read(await ref('abc'), 5, 10), /shrank/);
    await driver.close();
  });
});

describe('DriverChaos', () => {
  it('is inert when disabled: the poison path is read like any file', async () => {
    let panicked = false;
    const chaos = new DriverChaos({ enabled: false, poisonPath: 'p' }, Math.random, () => {
      panicked = true;
      throw new Error('panic');
    });
    await chaos.beforeRead('p');
    assert.equal(panicked, false);
  });

  it('panics on the poison path when enabled', async () => {
    // The real panic ends the process; that is tested end to end by each style. Here it is observed.
    const chaos = new DriverChaos({ enabled: true, poisonPath: 'p' }, Math.random, (reason) => {
      throw new Error(`panic: ${reason}`);
    });
    await assert.rejects(chaos.beforeRead('p'), /panic: poison path p read/);
    await chaos.beforeRead('other');
  });

  it('injects errors at the configured rate and latency when asked', async () => {
    const sequence = [0.1, 0.9];
    const chaos = new DriverChaos({ enabled: true, errorRate: 0.5 }, () => sequence.shift() ?? 1);
    await assert.rejects(chaos.beforeRead('x'), { code: ErrorCode.INTERNAL });
    await chaos.beforeRead('x');
    chaos.setLatency(30);
    const started = performance.now();
    await chaos.beforeRead('x');
    assert.ok(performance.now() - started >= 25);
  });

  it('refuses bad settings and run-time latency without chaos', () => {
    assert.throws(() => new DriverChaos({ errorRate: 2 }), /errorRate/);
    assert.throws(() => new DriverChaos({ latencyMs: -1 }), /latencyMs/);
    assert.throws(() => new DriverChaos().setLatency(5), /--chaos/);
  });
});
