import assert from 'node:assert/strict';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { ErrorCode, ServiceError } from '../contract/errors.ts';
import { TRAVERSAL_ATTACKS } from '../contract/testing/attacks.ts';
import { testCorpus } from '../contract/testing/test-corpus.ts';
import { StorageDriver } from '../driver/storage-driver.ts';
import { FileSystem } from './file-system.ts';

describe('FileSystem confinement on the real path', () => {
  let fileSystem: FileSystem;
  let root: string;
  before(async () => {
    const corpus = await testCorpus();
    fileSystem = await FileSystem.mount(corpus.dir, new StorageDriver());
    root = fileSystem.root;
  });
  after(() => fileSystem.close());

  it('follows a symlink that stays inside the root', async () => {
    const { ref } = await fileSystem.resolve('links/inside.txt');
    assert.equal(ref.realPath, join(root, 'docs', 'hello world.txt'));
  });

  it('refuses symlinks whose real path leaves the root, and symlink loops', async () => {
    for (const path of ['links/escape', 'links/escape-dir', 'links/escape-dir/etc/passwd', 'links/loop-a']) {
      await assert.rejects(fileSystem.resolve(path), (err: ServiceError) => {
        assert.ok(
          [ErrorCode.FORBIDDEN_PATH, ErrorCode.NOT_FOUND].includes(err.code as 'NOT_FOUND'),
          `${path}: ${err.code}`,
        );
        return true;
      });
    }
    await assert.rejects(fileSystem.resolve('links/escape'), { code: ErrorCode.FORBIDDEN_PATH });
    await assert.rejects(fileSystem.resolve('links/loop-a'), { code: ErrorCode.FORBIDDEN_PATH });
  });

  it('answers NOT_FOUND for directories and missing files', async () => {
    await assert.rejects(fileSystem.resolve('docs'), { code: ErrorCode.NOT_FOUND });
    await assert.rejects(fileSystem.resolve('docs/missing.txt'), { code: ErrorCode.NOT_FOUND });
    await assert.rejects(fileSystem.resolve('empty.txt/x'), { code: ErrorCode.NOT_FOUND });
  });

  it('refuses every listed attack', async () => {
    for (const attack of TRAVERSAL_ATTACKS) {
      await assert.rejects(fileSystem.resolve(attack), ServiceError, attack);
    }
  });

  it('property: no generated request path ever resolves outside the root', async () => {
    const pieces = [
      '..',
      '.',
      '/',
      '%2e',
      '%2E',
      '%2f',
      '%5c',
      '%00',
      '%25',
      '\\',
      'links',
      'escape',
      'escape-dir',
      'inside.txt',
      'docs',
      'hello%20world.txt',
      'etc',
      'passwd',
      '%c0%ae',
      '%ef%bc%8e',
      'a',
      ' ',
      '%',
      '2e',
      '..;',
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.constantFrom(...pieces), fc.string({ maxLength: 4 })), { maxLength: 12 }),
        async (parts) => {
          const raw = parts.join('');
          try {
            const { ref } = await fileSystem.resolve(raw);
            assert.ok(ref.realPath.startsWith(root + sep), `${raw} resolved to ${ref.realPath}`);
          } catch (err) {
            assert.ok(err instanceof ServiceError, `${raw}: ${String(err)}`);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('FileSystem reads what it stat-ed', () => {
  it('refuses to read a file replaced between stat and read, instead of serving the new bytes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kstyles-fs-'));
    const fileSystem = await FileSystem.mount(dir, new StorageDriver());
    try {
      await writeFile(join(dir, 'a.txt'), 'first version');
      const file = await fileSystem.open('a.txt', { deadline: Date.now() + 5000 });
      await rm(join(dir, 'a.txt'));
      await writeFile(join(dir, 'a.txt'), 'other content');
      const reading = async () => {
        for await (const _ of file.read(
          { start: 0, end: file.stat.size - 1 },
          { deadline: Date.now() + 5000 },
        )) {
          // drained
        }
      };
      await assert.rejects(reading(), { code: ErrorCode.INTERNAL });
    } finally {
      await fileSystem.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('FileSystem open-file handles', () => {
  it('reads through the handle without resolving the path again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kstyles-fs-'));
    const fileSystem = await FileSystem.mount(dir, new StorageDriver());
    try {
      await writeFile(join(dir, 'target.txt'), 'bytes of the target');
      await symlink('target.txt', join(dir, 'alias.txt'));
      const file = await fileSystem.open('alias.txt', { deadline: Date.now() + 5000 });
      // The name is gone: resolving it again would answer NOT_FOUND; the handle still reads the file.
      await rm(join(dir, 'alias.txt'));
      const parts: Uint8Array[] = [];
      for await (const chunk of file.read(
        { start: 0, end: file.stat.size - 1 },
        { deadline: Date.now() + 5000 },
      ))
        parts.push(chunk);
      assert.equal(Buffer.concat(parts).toString(), 'bytes of the target');
      await file.close();
      await assert.rejects(fileSystem.open('alias.txt', { deadline: Date.now() + 5000 }), {
        code: ErrorCode.NOT_FOUND,
      });
    } finally {
      await fileSystem.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reopens a stat-ed file by its normalised path only while its ETag still matches', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kstyles-fs-'));
    const fileSystem = await FileSystem.mount(dir, new StorageDriver());
    try {
      await writeFile(join(dir, 'a.txt'), 'first version');
      const { stat } = await fileSystem.open('a.txt', { deadline: Date.now() + 5000 });
      assert.equal((await fileSystem.reopen(stat, { deadline: Date.now() + 5000 })).stat.etag, stat.etag);
      await rm(join(dir, 'a.txt'));
      await writeFile(join(dir, 'a.txt'), 'other content');
      await assert.rejects(fileSystem.reopen(stat, { deadline: Date.now() + 5000 }), {
        code: ErrorCode.INTERNAL,
      });
    } finally {
      await fileSystem.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('FileSystem.mount', () => {
  it('names a missing data directory and says how to create it', async () => {
    await assert.rejects(
      FileSystem.mount('/nonexistent/kstyles-data', new StorageDriver()),
      /does not exist: create it with 'kstyles corpus/,
    );
  });

  it('refuses a data root that is a file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kstyles-fs-'));
    try {
      await writeFile(join(dir, 'f'), 'x');
      await assert.rejects(FileSystem.mount(join(dir, 'f'), new StorageDriver()), /is not a directory/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('serves a root that is itself reached through a symlink', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kstyles-fs-'));
    try {
      const corpus = await testCorpus();
      await symlink(corpus.dir, join(dir, 'data'));
      const fileSystem = await FileSystem.mount(join(dir, 'data'), new StorageDriver());
      const { stat } = await fileSystem.resolve('docs/hello%20world.txt');
      assert.equal(stat.size, 1200);
      await fileSystem.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
