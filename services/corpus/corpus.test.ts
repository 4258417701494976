import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { KSTYLES_BIN as KSTYLES } from '../../cli/kit/repo.ts';
import {
  encodeFilePath,
  generateCorpus,
  type Manifest,
  ManifestError,
  POISON_PATH,
  readManifest,
} from './corpus.ts';

const run = promisify(execFile);

describe('kstyles corpus', () => {
  let base: string;
  let manifest: Manifest;
  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'kstyles-corpus-test-'));
    const { stdout } = await run(process.execPath, [
      KSTYLES,
      'corpus',
      '--dir',
      join(base, 'a'),
      '--count',
      '60',
    ]);
    assert.match(stdout, /wrote \d+ servable files/);
    manifest = await readManifest(join(base, 'a'));
  });
  after(() => rm(base, { recursive: true, force: true }));

  it('writes a manifest whose sizes and sha256 match the files on disk', async () => {
    assert.equal(manifest.count, 60);
    for (const file of manifest.files) {
      const bytes = await readFile(join(base, 'a', file.path));
      assert.equal(bytes.length, file.size, file.path);
      assert.equal(createHash('sha256').update(bytes).digest('hex'), file.sha256, file.path);
    }
  });

  it('covers the sizes and names the styles must handle', () => {
    const sizes = manifest.files.map((file) => file.size);
    assert.ok(sizes.includes(0) && sizes.includes(1), 'empty and 1-byte files');
    assert.ok(
      sizes.some((size) => size > 4 * 1024 * 1024),
      'a file over 4 MiB',
    );
    assert.ok(
      manifest.files.some((file) => file.path.includes(' ')),
      'a name with a space',
    );
    assert.ok(
      manifest.files.some((file) => [...file.path].some((char) => char.charCodeAt(0) > 127)),
      'a non-ASCII name',
    );
    assert.ok(
      manifest.files.some((file) => file.path.split('/').length >= 3),
      'nested folders',
    );
    assert.deepEqual(
      manifest.files.filter((file) => file.poison).map((file) => file.path),
      [POISON_PATH],
    );
  });

  it('lists escaping symlinks as not servable, and they really escape', async () => {
    const escaping = manifest.notServable.find((entry) => entry.path === 'links/escape');
    assert.ok(escaping);
    assert.equal(escaping.expectedStatus, 403);
    assert.equal(await readlink(join(base, 'a', 'links/escape')), '/etc/passwd');
    assert.ok((await lstat(join(base, 'a', 'links/loop-a'))).isSymbolicLink());
    assert.ok(!manifest.files.some((file) => file.path === 'links/escape'));
  });

  it('is deterministic: the same seed gives the same bytes, another seed other bytes', async () => {
    const again = await generateCorpus(join(base, 'b'), { seed: 1, count: 60 });
    assert.deepEqual(again.files, manifest.files);
    const other = await generateCorpus(join(base, 'c'), { seed: 2, count: 60 });
    const hashOf = (m: Manifest, path: string) => m.files.find((file) => file.path === path)?.sha256;
    assert.notEqual(hashOf(other, 'bench/4k.bin'), hashOf(manifest, 'bench/4k.bin'));
  });

  it('refuses to write into a non-empty folder that is not a corpus', async () => {
    await mkdir(join(base, 'foreign'));
    await writeFile(join(base, 'foreign', 'precious.txt'), 'keep me');
    await assert.rejects(
      run(process.execPath, [KSTYLES, 'corpus', '--dir', join(base, 'foreign')]),
      (err: { code: number; stderr: string }) => {
        assert.equal(err.code, 2);
        assert.match(err.stderr, /not empty and holds no MANIFEST.json/);
        return true;
      },
    );
    assert.equal(await readFile(join(base, 'foreign', 'precious.txt'), 'utf8'), 'keep me');
  });

  it('names a bad flag value and exits 2', async () => {
    await assert.rejects(
      run(process.execPath, [KSTYLES, 'corpus', '--dir', join(base, 'd'), '--count', '5']),
      (err: { code: number; stderr: string }) => {
        assert.equal(err.code, 2);
        assert.match(err.stderr, /--count must be an integer from 12/);
        return true;
      },
    );
  });

  it('readManifest names what is wrong with a missing or malformed manifest', async () => {
    const dir = join(base, 'broken');
    await mkdir(dir);
    const rejects = (pattern: RegExp) =>
      assert.rejects(
        readManifest(dir),
        (err: Error) => err instanceof ManifestError && pattern.test(err.message),
      );
    await rejects(/cannot read .*MANIFEST\.json \(ENOENT\): create it with 'kstyles corpus --dir/);
    await writeFile(join(dir, 'MANIFEST.json'), '{ not json');
    await rejects(/MANIFEST\.json is not valid JSON .*regenerate it with 'kstyles corpus/);
    await writeFile(join(dir, 'MANIFEST.json'), JSON.stringify({ ...manifest, version: 2 }));
    await rejects(/is not a version 1 manifest/);
    await writeFile(join(dir, 'MANIFEST.json'), JSON.stringify({ ...manifest, files: undefined }));
    await rejects(/has no "files" array/);
    const badEntry = { ...manifest, files: [manifest.files[0], { path: 'x', size: '3' }] };
    await writeFile(join(dir, 'MANIFEST.json'), JSON.stringify(badEntry));
    await rejects(/files\[1\] needs string "path", number "size" and string "sha256"/);
  });

  it('encodeFilePath percent-encodes each segment and keeps the slashes', () => {
    assert.equal(encodeFilePath('données/naïve café.txt'), 'donn%C3%A9es/na%C3%AFve%20caf%C3%A9.txt');
    assert.equal(encodeFilePath('a/#?%/b'), 'a/%23%3F%25/b');
  });
});
