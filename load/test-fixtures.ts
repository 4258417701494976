import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** Test-only helpers: a small corpus manifest and real HTTP servers on 127.0.0.1, port 0. */

export type TestCorpus = { dir: string; bodies: Map<string, Buffer>; cleanup(): Promise<void> };

export async function makeCorpus(): Promise<TestCorpus> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kstyles-load-test-'));
  const bodies = new Map<string, Buffer>();
  const files: { path: string; size: number; sha256: string; poison?: boolean }[] = [];
  let totalBytes = 0;
  const add = (rel: string, body: Buffer, poison = false) => {
    bodies.set(`/files/${rel.split('/').map(encodeURIComponent).join('/')}`, body);
    totalBytes += body.length;
    files.push({
      path: rel,
      size: body.length,
      sha256: createHash('sha256').update(body).digest('hex'),
      ...(poison ? { poison } : {}),
    });
  };
  add('docs/hello world.txt', Buffer.from('hello world\n'));
  add('empty.txt', Buffer.alloc(0));
  for (let i = 0; i < 8; i++) add(`small/file-${i}.bin`, Buffer.alloc(100 + i * 300, i + 1));
  add('medium/page.bin', Buffer.alloc(100 * 1024, 7));
  add('chaos/poison.bin', Buffer.from('poison'), true);
  await writeFile(
    path.join(dir, 'MANIFEST.json'),
    JSON.stringify({ version: 1, seed: 1, count: files.length, totalBytes, files, notServable: [] }),
  );
  return { dir, bodies, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer | undefined) => void;

export type TestServer = { url: string; server: Server; requests: number; close(): Promise<void> };

export async function startServer(handler: Handler, bodies: Map<string, Buffer>): Promise<TestServer> {
  const state = { requests: 0 };
  const server = createServer((req, res) => {
    state.requests++;
    handler(req, res, bodies.get(req.url ?? ''));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    get requests() {
      return state.requests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Serves the corpus bytes like the real contract (200 with Content-Length, 404 problem+json). */
export function serveFile(res: ServerResponse, body: Buffer | undefined): void {
  if (!body) {
    res.writeHead(404, { 'content-type': 'application/problem+json' }).end('{"code":"NOT_FOUND"}');
    return;
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length }).end(body);
}

/** Serves the body with one byte flipped at `at`, its length announced honestly: data loss, not a transfer error. */
export function serveFlipped(res: ServerResponse, body: Buffer, at: number, mask = 0xff): void {
  const bad = Buffer.from(body);
  bad[at] = bad[at]! ^ mask;
  res.writeHead(200, { 'content-length': bad.length }).end(bad);
}
