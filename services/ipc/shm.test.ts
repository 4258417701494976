import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InternalError } from '../contract/errors.ts';
import { makeShmDir, removeOrphanShmDirs, SEGMENT_MAX_AGE_MS, ShmSegments, shmRoot } from './shm.ts';

describe('shared-memory segments', () => {
  let dir: string;
  let segments: ShmSegments;
  before(async () => {
    dir = await makeShmDir();
    segments = new ShmSegments(dir);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('are made under /dev/shm where the machine has it, by a directory that names its owner', () => {
    if (existsSync('/dev/shm')) assert.equal(path.dirname(dir), '/dev/shm');
    assert.match(path.basename(dir), new RegExp(`^kstyles-shm-${process.pid}-`));
  });

  it('hand over the bytes once: the segment is gone after it was taken', async () => {
    const bytes = randomBytes(300 * 1024);
    const name = await segments.put(bytes);
    assert.deepEqual(await readdir(dir), [name]);
    assert.ok(Buffer.from(await segments.take(name, bytes.length)).equals(bytes));
    await waitUntil(async () => (await readdir(dir)).length === 0);
    await assert.rejects(segments.take(name, bytes.length), /could not be read .*ENOENT.*same --shm-dir/);
  });

  it('refuse a name that is not a segment name: no path leaves the directory', async () => {
    const outside = path.join(tmpdir(), `kstyles-shm-outside-${process.pid}`);
    await writeFile(outside, 'secret');
    try {
      for (const name of [`../${path.basename(outside)}`, outside, '', 'x'.repeat(36)]) {
        await assert.rejects(segments.take(name, 6), (err: unknown) => {
          assert.ok(err instanceof InternalError);
          assert.match(err.message, /not one of its names/);
          return true;
        });
      }
      assert.ok(existsSync(outside), 'the file outside was neither read nor removed');
    } finally {
      await rm(outside, { force: true });
    }
  });

  it('refuse a segment of another length than the delivery said', async () => {
    const name = await segments.put(randomBytes(1000));
    await assert.rejects(segments.take(name, 999), /holds 1000 bytes, not 999/);
  });

  it('are swept once they are older than a segment may wait, and not before', async () => {
    const fresh = await segments.put(randomBytes(10));
    const stale = await segments.put(randomBytes(10));
    const old = (Date.now() - SEGMENT_MAX_AGE_MS - 1000) / 1000;
    await utimes(path.join(dir, stale), old, old);
    assert.equal(await segments.sweep(), 1);
    assert.deepEqual(await readdir(dir), [fresh]);
  });
});

describe('orphaned segment directories', () => {
  it("are removed when the process that made them is dead, and a live one's are kept", async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'kstyles-shm-root-'));
    try {
      // A pid that was alive and is now certainly dead: a child that has exited.
      const dead = spawnSync(process.execPath, ['-e', '0']).pid;
      const orphan = path.join(root, `kstyles-shm-${dead}-abc`);
      await mkdir(orphan);
      await writeFile(path.join(orphan, 'leftover'), 'x');
      const live = await makeShmDir(root);
      const unrelated = path.join(root, 'someone-else');
      await mkdir(unrelated);
      assert.deepEqual(removeOrphanShmDirs(root), [orphan]);
      assert.deepEqual((await readdir(root)).sort(), [path.basename(live), 'someone-else'].sort());
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('go where segment directories go (a directory that exists)', () => {
    assert.ok(existsSync(shmRoot()));
  });
});

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
