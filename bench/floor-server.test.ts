import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { createFloorServer } from './floor-server.ts';

describe('floor server', () => {
  let dir: string;
  let base: string;
  const server = { close: async () => undefined } as { close: () => Promise<void> };
  const files = {
    small: Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) % 256)),
    large: Buffer.alloc(3 * 1024 * 1024 + 5, 0xab),
  };

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kstyles-floor-'));
    await mkdir(path.join(dir, 'data', 'bench'), { recursive: true });
    await writeFile(path.join(dir, 'data', 'bench', '4k.bin'), files.small);
    await writeFile(path.join(dir, 'data', 'bench', 'big file.bin'), files.large);
    await writeFile(path.join(dir, 'secret.txt'), 'outside the root');
    const http = createFloorServer(path.join(dir, 'data'));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    server.close = () => new Promise((resolve) => http.close(() => resolve()));
  });

  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const get = async (p: string) => {
    const res = await request(`${base}${p}`);
    return { status: res.statusCode, body: Buffer.from(await res.body.arrayBuffer()), headers: res.headers };
  };

  it('serves a small file byte for byte', async () => {
    const res = await get('/files/bench/4k.bin');
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-length'], '4096');
    assert.ok(res.body.equals(files.small));
  });

  it('streams a file larger than 1 MiB byte for byte, with an encoded name', async () => {
    const res = await get('/files/bench/big%20file.bin');
    assert.equal(res.status, 200);
    assert.ok(res.body.equals(files.large));
  });

  it('answers 404 for missing files, directories and paths outside the root', async () => {
    assert.equal((await get('/files/bench/none.bin')).status, 404);
    assert.equal((await get('/files/bench')).status, 404);
    assert.equal((await get('/files/..%2Fsecret.txt')).status, 404);
    assert.equal((await get('/other')).status, 404);
  });

  it('answers its readiness probe', async () => {
    assert.equal((await get('/readyz')).status, 200);
  });
});
