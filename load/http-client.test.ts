import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { HttpPool, parseResponseHead, type ResponseHandler } from './http-client.ts';

type Outcome = {
  status: number;
  body: Buffer;
  error: (Error & { code?: string }) | null;
  buffers: Set<ArrayBufferLike>;
};

/** Sends GET `path` and collects what the handler hears (copies of the body views, and the buffers they were views of). */
function get(
  pool: HttpPool,
  path: string,
  onSent?: (abort: (err: Error) => void) => void,
  onBodyChunk?: () => void,
): Promise<Outcome> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    const buffers = new Set<ArrayBufferLike>();
    let status = 0;
    const handler: ResponseHandler = {
      onSent: (abort) => onSent?.(abort),
      onStatus: (s) => {
        status = s;
      },
      onBody: (chunk) => {
        buffers.add(chunk.buffer);
        parts.push(Buffer.from(chunk));
        onBodyChunk?.();
      },
      onEnd: () => resolve({ status, body: Buffer.concat(parts), error: null, buffers }),
      onError: (error) => resolve({ status, body: Buffer.concat(parts), error, buffers }),
    };
    pool.get(path, handler);
  });
}

async function listen(server: net.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

/** A server that answers every connection's first request with `pieces`, written one by one 5 ms apart. */
async function rawServer(pieces: (string | Buffer)[], end: 'close' | 'keep' = 'close') {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('data', async () => {
      for (const piece of pieces) {
        socket.write(piece);
        await sleep(5);
      }
      if (end === 'close') socket.end();
    });
  });
  const origin = await listen(server);
  return {
    origin,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe('the sender threads’ HTTP client', () => {
  const big = randomBytes(1 << 20);
  const connections: net.Socket[] = [];
  const server = http.createServer((req, res) => {
    if (req.url === '/big') res.writeHead(200, { 'content-length': big.length }).end(big);
    else if (req.url === '/chunked') {
      // No length: node:http sends it chunked, in pieces of every size.
      res.writeHead(200);
      for (let at = 0, size = 1; at < big.length; at += size, size = size * 3 + 1)
        res.write(big.subarray(at, at + size));
      res.end();
    } else if (req.url === '/hint')
      res.writeHead(200, { 'keep-alive': 'timeout=1', 'content-length': 2 }).end('ok');
    else res.writeHead(404, { 'content-length': 9 }).end('not found');
  });
  server.on('connection', (s) => connections.push(s));
  server.keepAliveTimeout = 10_000;
  let origin = '';
  after(() => server.close());

  test('reads Content-Length bodies into one reused buffer, over one keep-alive connection', async () => {
    origin ||= await listen(server);
    const seenBefore = connections.length;
    const pool = new HttpPool(origin, 1, 2000);
    const buffers = new Set<ArrayBufferLike>();
    for (let i = 0; i < 5; i++) {
      const r = await get(pool, '/big');
      assert.equal(r.error, null);
      assert.equal(r.status, 200);
      assert.ok(r.body.equals(big), 'the body is the bytes the server sent');
      for (const b of r.buffers) buffers.add(b);
    }
    assert.equal(buffers.size, 1, '5 MiB arrived as views of one buffer');
    assert.equal(connections.length - seenBefore, 1, 'five requests, one connection');
    const missing = await get(pool, '/nothing');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.toString(), 'not found');
    await pool.close();
    assert.equal(pool.size, 0);
  });

  test('reads chunked bodies, whatever the chunk sizes', async () => {
    origin ||= await listen(server);
    const pool = new HttpPool(origin, 2, 2000);
    const [a, b] = await Promise.all([get(pool, '/chunked'), get(pool, '/chunked')]);
    for (const r of [a!, b!]) {
      assert.equal(r.error, null);
      assert.ok(r.body.equals(big));
    }
    await pool.close();
  });

  test('drops an idle connection before the server’s keep-alive timeout would', async () => {
    origin ||= await listen(server);
    const seenBefore = connections.length;
    const pool = new HttpPool(origin, 1, 2000);
    // timeout=1 leaves no idle time once the client's 1 s margin is taken: each request gets a new connection.
    for (let i = 0; i < 3; i++) assert.equal((await get(pool, '/hint')).body.toString(), 'ok');
    assert.equal(connections.length - seenBefore, 3);
    await pool.close();
  });

  test('reads a head and chunk lines split over many reads, and a body that ends when the server closes', async () => {
    const split = await rawServer([
      'HTTP/1.1 200 OK\r\nTransfer-Enco',
      'ding: chunked\r\n\r',
      '\n3\r',
      '\nabc\r\n1',
      '0\r\n0123456789abcdef\r\n0\r\nx-trailer: 1\r\n',
      '\r\n',
    ]);
    const closeDelimited = await rawServer(['HTTP/1.0 200 OK\r\n\r\nuntil ', 'the end']);
    const interim = await rawServer([
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfi',
      'rst',
    ]);
    try {
      const afterContinue = await get(new HttpPool(interim.origin, 1, 2000), '/');
      assert.equal(afterContinue.error, null);
      assert.deepEqual([afterContinue.status, afterContinue.body.toString()], [200, 'first']);
      const chunked = await get(new HttpPool(split.origin, 1, 2000), '/');
      assert.equal(chunked.error, null);
      assert.equal(chunked.body.toString(), 'abc0123456789abcdef');
      const untilClose = await get(new HttpPool(closeDelimited.origin, 1, 2000), '/');
      assert.equal(untilClose.error, null);
      assert.equal(untilClose.body.toString(), 'until the end');
    } finally {
      split.close();
      closeDelimited.close();
      interim.close();
    }
  });

  test('names each failure: refused, reset mid-body, not HTTP, aborted', async () => {
    const closed = net.createServer();
    const closedOrigin = await listen(closed);
    await new Promise((resolve) => closed.close(resolve));
    const refused = await get(new HttpPool(closedOrigin, 1, 2000), '/');
    assert.equal(refused.error?.code, 'ECONNREFUSED');

    const short = await rawServer(['HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n', 'only 20 bytes here..']);
    const garbage = await rawServer(['SSH-2.0-OpenSSH_9.6\r\n\r\n']);
    const stalls = await rawServer(['HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n12345'], 'keep');
    try {
      const reset = await get(new HttpPool(short.origin, 1, 2000), '/');
      assert.equal(reset.error?.code, 'ECONNRESET');
      assert.equal(reset.body.toString(), 'only 20 bytes here..', 'the bytes that came were handed over');
      const notHttp = await get(new HttpPool(garbage.origin, 1, 2000), '/');
      assert.equal(notHttp.error?.code, 'EPROTO');
      assert.match(notHttp.error!.message, /not an HTTP\/1\.x response: 'SSH-2\.0/);

      const pool = new HttpPool(stalls.origin, 1, 2000);
      let abort: ((err: Error) => void) | null = null;
      // Aborted once the first bytes are in, not after a fixed sleep (which a loaded machine can outlast).
      let bodyArrived = () => {};
      const firstBytes = new Promise<void>((resolve) => {
        bodyArrived = resolve;
      });
      const pending = get(
        pool,
        '/',
        (a) => {
          abort = a;
        },
        () => bodyArrived(),
      );
      await firstBytes;
      abort!(Object.assign(new Error('gave up'), { code: 'ETIMEDOUT' }));
      const aborted = await pending;
      assert.equal(aborted.error?.code, 'ETIMEDOUT');
      assert.equal(aborted.body.toString(), '12345');
      assert.equal(pool.size, 0, 'the aborted request’s connection is closed');
    } finally {
      short.close();
      garbage.close();
      stalls.close();
    }
  });

  test('parses response heads', () => {
    assert.deepEqual(parseResponseHead('HTTP/1.1 200 OK\r\nContent-Length: 12\r\nKeep-Alive: timeout=5'), {
      status: 200,
      framing: 'length',
      contentLength: 12,
      keepAlive: true,
      keepAliveMs: 5000,
    });
    assert.equal(
      parseResponseHead('HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1')?.keepAlive,
      false,
    );
    assert.equal(parseResponseHead('HTTP/1.0 200 OK\r\ncontent-length: 1')?.keepAlive, false);
    assert.equal(parseResponseHead('HTTP/1.1 304 Not Modified')?.framing, 'none');
    assert.equal(
      parseResponseHead('HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked')?.framing,
      'chunked',
    );
    assert.equal(parseResponseHead('HTTP/1.1 200 OK\r\ncontent-length: -1'), null);
    assert.equal(parseResponseHead('HTTP/2 200'), null);
    assert.equal(parseResponseHead('HTTP/1.1 200 OK\r\nno colon'), null);
  });
});
