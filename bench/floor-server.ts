/**
 * The floor: the least a Node server must do to serve a file over HTTP (node:http + fs, no framework,
 * no validation beyond staying inside the root). Every style is measured against it.
 * Run: `node --import tsx bench/floor-server.ts --port P --data DIR`.
 */
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

/** Files up to this size are read whole; larger ones are streamed. */
const READ_WHOLE_MAX = 1024 * 1024;

export function createFloorServer(dataDir: string): Server {
  const root = path.resolve(dataDir);
  return createServer(async (req, res) => {
    const url = req.url ?? '/';
    if (url === '/healthz' || url === '/readyz') return void res.end('ok\n');
    let file: string;
    try {
      file = path.join(root, decodeURIComponent(url.split('?')[0]!.slice('/files/'.length)));
    } catch {
      res.statusCode = 400;
      return void res.end();
    }
    if (!url.startsWith('/files/') || !file.startsWith(root + path.sep)) {
      res.statusCode = 404;
      return void res.end();
    }
    try {
      const info = await stat(file);
      if (!info.isFile()) throw new Error('not a file');
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': info.size });
      if (info.size <= READ_WHOLE_MAX) res.end(await readFile(file));
      else
        createReadStream(file)
          .on('error', () => res.destroy())
          .pipe(res);
    } catch {
      if (res.headersSent) return void res.destroy();
      res.statusCode = 404;
      res.end();
    }
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { port: { type: 'string' }, data: { type: 'string' } } });
  if (!values.data) throw new Error('floor-server: --data DIR is required');
  const server = createFloorServer(values.data);
  server.listen(Number(values.port ?? 0), '127.0.0.1', () => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    process.stdout.write(`${JSON.stringify({ msg: 'floor listening', pid: process.pid, port })}\n`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) await main();
