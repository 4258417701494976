/**
 * The sender threads' HTTP/1.1 client: keep-alive connections, one request at a time on each (no
 * pipelining), GET only. It exists for one reason: bodies are read into **one reused buffer**
 * (`net.Socket`'s `onread`) and handed to the caller as views of it, so receiving megabytes a second
 * allocates nothing per read. A client that allocates a fresh buffer per read (undici) makes the sender
 * thread run a full collection every second or so at the demo's rates, and its pauses are seconds where
 * the generator fell behind (load/measure-body-gc.ts; load/README.md, 'In the demo').
 *
 * Framing: Content-Length, chunked, or (HTTP/1.0 style) until the server closes. A response that is
 * not HTTP, a head over 64 KiB or a broken chunk is a protocol error (code EPROTO) and ends its
 * connection; a connection that closes before its response ended fails with ECONNRESET. https targets
 * are served too, through TLS sockets that read the ordinary way.
 */
import net from 'node:net';
import tls from 'node:tls';

/** What a request's owner hears; every request gets onSent or onError first, then exactly one of onEnd / onError. */
export type ResponseHandler = {
  /** The request went on the wire. `abort` ends it, and its connection, with `err` (heard through onError). */
  onSent(abort: (err: Error) => void): void;
  onStatus(status: number): void;
  /** A piece of the body: a view of a reused buffer, valid only during this call. */
  onBody(chunk: Buffer): void;
  onEnd(): void;
  onError(err: Error): void;
};

/**
 * A transport failure, shaped like Node's own socket errors (an Error with `code`: ECONNRESET, EPROTO,
 * ETIMEDOUT, ECONNABORTED) so that one classification serves both. It never reaches a user as an error:
 * the load report counts it as an outcome (reset, timeout) with its message as the sample.
 */
export function transportError(code: string, message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

const MAX_HEAD_BYTES = 64 * 1024;
const READ_BUFFER_BYTES = 64 * 1024;
/** Idle time after which we drop a connection when the server did not say how long it keeps one. */
const DEFAULT_IDLE_MS = 30_000;
/** Drop an idle connection this long before the server's own keep-alive timeout would. */
const IDLE_MARGIN_MS = 1_000;

type Framing = 'length' | 'chunked' | 'close' | 'none';
type ChunkState = 'size' | 'data' | 'data-end' | 'trailer';

/** The parts of a response head the client acts on. */
export type ResponseHead = {
  status: number;
  framing: Framing;
  contentLength: number;
  keepAlive: boolean;
  /** The server's keep-alive timeout in ms, if it said (`Keep-Alive: timeout=N`). */
  keepAliveMs: number | null;
};

/** Parses a response head (status line and headers, without the blank line); null if it is not HTTP/1.x. */
export function parseResponseHead(text: string): ResponseHead | null {
  const lines = text.split('\r\n');
  const status = /^HTTP\/1\.([01]) (\d{3})(?: |$)/.exec(lines[0]!);
  if (!status) return null;
  const http10 = status[1] === '0';
  let contentLength = -1;
  let chunked = false;
  let connection = '';
  let keepAliveMs: number | null = null;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) return null;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-length') {
      if (!/^\d+$/.test(value)) return null;
      contentLength = Number(value);
    } else if (name === 'transfer-encoding') chunked = /(?:^|,)\s*chunked\s*$/i.test(value);
    else if (name === 'connection') connection = value.toLowerCase();
    else if (name === 'keep-alive') {
      const timeout = /timeout=(\d+)/i.exec(value);
      if (timeout) keepAliveMs = Number(timeout[1]) * 1000;
    }
  }
  const code = Number(status[2]);
  const framing: Framing =
    code === 204 || code === 304 || (code >= 100 && code < 200)
      ? 'none'
      : chunked
        ? 'chunked'
        : contentLength >= 0
          ? 'length'
          : 'close';
  const keepAlive =
    framing !== 'close' && (http10 ? connection.includes('keep-alive') : !connection.includes('close'));
  return { status: code, framing, contentLength, keepAlive, keepAliveMs };
}

/** One keep-alive connection: at most one request on it at a time. */
class Connection {
  readonly socket: net.Socket;
  connected = false;
  closed = false;
  idleSince = 0;
  idleLimitMs = DEFAULT_IDLE_MS;
  private handler: ResponseHandler | null = null;
  private pendingRequest: string | null = null;
  private head = '';
  private response: ResponseHead | null = null;
  private left = 0;
  private chunkState: ChunkState = 'size';
  private chunkLine = '';
  private error: Error | null = null;
  private connectTimer: NodeJS.Timeout | null;

  constructor(
    private readonly pool: HttpPool,
    target: URL,
    readBuffer: Buffer,
    connectTimeoutMs: number,
  ) {
    const host = target.hostname.replace(/^\[|\]$/g, '');
    const port = Number(target.port || (target.protocol === 'https:' ? 443 : 80));
    if (target.protocol === 'https:') {
      this.socket = tls.connect({ host, port, servername: net.isIP(host) ? undefined : host });
      this.socket.on('data', (data: Buffer) => this.consume(data, data.length));
    } else {
      this.socket = net.connect({
        host,
        port,
        onread: {
          buffer: readBuffer,
          callback: (n, buffer) => {
            this.consume(buffer as Buffer, n);
            return true;
          },
        },
      });
    }
    this.socket.setNoDelay(true);
    this.connectTimer = setTimeout(
      () => this.fail(transportError('ETIMEDOUT', `no connection within ${connectTimeoutMs} ms`)),
      connectTimeoutMs,
    );
    this.socket.once(target.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
      this.clearConnectTimer();
      this.connected = true;
      if (this.pendingRequest !== null) this.write();
    });
    this.socket.on('error', (err) => {
      this.error ??= err;
    });
    this.socket.once('close', () => this.onClose());
  }

  send(request: string, handler: ResponseHandler): void {
    this.handler = handler;
    this.pendingRequest = request;
    this.head = '';
    this.response = null;
    if (this.connected) this.write();
  }

  private write(): void {
    const request = this.pendingRequest!;
    this.pendingRequest = null;
    this.socket.write(request, 'latin1');
    this.handler!.onSent((err) => this.fail(err));
  }

  /** Reads `n` bytes of `data`: the head, then the body by its framing; whatever follows a response is an error. */
  private consume(data: Buffer, n: number): void {
    let at = 0;
    while (at < n && !this.closed) {
      if (!this.handler) {
        this.fail(transportError('EPROTO', 'the server sent bytes nobody asked for'));
        break;
      }
      if (!this.response) {
        at = this.readHead(data, at, n);
        continue;
      }
      at = this.readBody(data, at, n);
    }
  }

  private readHead(data: Buffer, at: number, n: number): number {
    const before = this.head.length;
    this.head += data.toString('latin1', at, n);
    const end = this.head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (this.head.length > MAX_HEAD_BYTES)
        this.fail(transportError('EPROTO', `response head over ${MAX_HEAD_BYTES} bytes`));
      return n;
    }
    const response = parseResponseHead(this.head.slice(0, end));
    if (!response) {
      this.fail(transportError('EPROTO', `not an HTTP/1.x response: '${this.head.slice(0, 40)}'`));
      return n;
    }
    const consumed = at + end + 4 - before;
    if (response.status < 200) {
      // An interim answer (100 Continue): the real one follows, read from `consumed` on.
      this.head = '';
      return consumed;
    }
    this.response = response;
    this.head = '';
    this.left = response.contentLength;
    this.chunkState = 'size';
    this.chunkLine = '';
    this.handler!.onStatus(response.status);
    if (response.framing === 'none' || (response.framing === 'length' && this.left === 0)) this.complete();
    return consumed;
  }

  private readBody(data: Buffer, at: number, n: number): number {
    const response = this.response!;
    if (response.framing === 'close') {
      this.handler!.onBody(data.subarray(at, n));
      return n;
    }
    if (response.framing === 'length') {
      const take = Math.min(this.left, n - at);
      this.handler!.onBody(data.subarray(at, at + take));
      this.left -= take;
      if (this.left === 0) this.complete();
      return at + take;
    }
    return this.readChunked(data, at, n);
  }

  private readChunked(data: Buffer, at: number, n: number): number {
    switch (this.chunkState) {
      case 'data': {
        const take = Math.min(this.left, n - at);
        this.handler!.onBody(data.subarray(at, at + take));
        this.left -= take;
        if (this.left === 0) this.chunkState = 'data-end';
        return at + take;
      }
      default: {
        // Size lines, the CRLF after each chunk and the trailer are lines: read up to the next LF.
        const lf = data.indexOf(10, at);
        const stop = lf < 0 || lf >= n ? n : lf + 1;
        this.chunkLine += data.toString('latin1', at, stop);
        if (this.chunkLine.length > MAX_HEAD_BYTES) {
          this.fail(transportError('EPROTO', 'chunked body: a line over 64 KiB'));
          return n;
        }
        if (!this.chunkLine.endsWith('\n')) return stop;
        const line = this.chunkLine.replace(/\r?\n$/, '');
        this.chunkLine = '';
        this.onChunkLine(line);
        return stop;
      }
    }
  }

  private onChunkLine(line: string): void {
    if (this.chunkState === 'data-end') {
      if (line !== '') this.fail(transportError('EPROTO', 'chunked body: no CRLF after a chunk'));
      else this.chunkState = 'size';
    } else if (this.chunkState === 'size') {
      const size = /^([0-9a-fA-F]+)(?:;.*)?$/.exec(line);
      if (!size) {
        this.fail(transportError('EPROTO', `chunked body: bad chunk size '${line.slice(0, 20)}'`));
        return;
      }
      this.left = Number.parseInt(size[1]!, 16);
      this.chunkState = this.left === 0 ? 'trailer' : 'data';
    } else if (line === '') this.complete();
  }

  /** The response ended: the connection is free again (or closed, if either side said so) before the owner hears. */
  private complete(): void {
    const handler = this.handler!;
    const keepAlive = this.response!.keepAlive;
    const keepAliveMs = this.response!.keepAliveMs;
    this.handler = null;
    this.response = null;
    if (keepAlive) {
      this.idleSince = performance.now();
      this.idleLimitMs = keepAliveMs !== null ? Math.max(0, keepAliveMs - IDLE_MARGIN_MS) : DEFAULT_IDLE_MS;
      this.pool.idle(this);
    } else this.close();
    handler.onEnd();
  }

  /** Ends the connection; the request on it, if any, hears `err`. */
  fail(err: Error): void {
    this.error ??= err;
    this.retire();
  }

  /** Closes the connection and leaves the pool now, not when the socket's close event comes. */
  retire(): void {
    this.close();
    this.onClose();
  }

  close(): void {
    this.clearConnectTimer();
    this.socket.destroy();
  }

  private clearConnectTimer(): void {
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearConnectTimer();
    this.pool.gone(this);
    const handler = this.handler;
    if (!handler) return;
    this.handler = null;
    if (this.response?.framing === 'close' && !this.error) {
      handler.onEnd();
      return;
    }
    handler.onError(
      this.error ??
        transportError('ECONNRESET', 'the server closed the connection before the response ended'),
    );
  }
}

/**
 * Up to `connections` keep-alive connections to one origin. The caller keeps at most that many requests
 * on it at once (it queues the rest itself, so a request waiting for a connection keeps its own clock).
 */
export class HttpPool {
  private readonly target: URL;
  private readonly hostHeader: string;
  private readonly readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  private readonly idleConnections: Connection[] = [];
  private readonly open = new Set<Connection>();
  private closing = false;

  constructor(
    origin: string,
    readonly connections: number,
    /** A connection not made within this fails its request with ETIMEDOUT. */
    private readonly connectTimeoutMs: number,
  ) {
    this.target = new URL(origin);
    this.hostHeader = this.target.host;
  }

  /** Sends `GET path` on an idle connection, or a new one. */
  get(path: string, handler: ResponseHandler): void {
    if (this.closing) {
      handler.onError(transportError('ECONNABORTED', 'the pool is closed'));
      return;
    }
    let connection = this.takeIdle(performance.now());
    if (!connection) {
      if (this.open.size >= this.connections)
        throw new Error(`HttpPool: more than ${this.connections} requests at once`);
      connection = new Connection(this, this.target, this.readBuffer, this.connectTimeoutMs);
      this.open.add(connection);
    }
    connection.send(`GET ${path} HTTP/1.1\r\nhost: ${this.hostHeader}\r\n\r\n`, handler);
  }

  /** The most recently used idle connection; those idle beyond their limit are closed on the way. */
  private takeIdle(now: number): Connection | undefined {
    for (;;) {
      const connection = this.idleConnections.pop();
      if (!connection || now - connection.idleSince < connection.idleLimitMs) return connection;
      connection.retire();
    }
  }

  /** Connections open now (busy or idle). */
  get size(): number {
    return this.open.size;
  }

  idle(connection: Connection): void {
    if (this.closing) connection.close();
    else this.idleConnections.push(connection);
  }

  gone(connection: Connection): void {
    this.open.delete(connection);
    const at = this.idleConnections.indexOf(connection);
    if (at >= 0) this.idleConnections.splice(at, 1);
  }

  /** Closes every connection; requests still on one hear ECONNABORTED. */
  async close(): Promise<void> {
    this.closing = true;
    const closes = [...this.open].map(
      (c) => new Promise<void>((resolve) => (c.closed ? resolve() : c.socket.once('close', () => resolve()))),
    );
    for (const c of [...this.open]) c.fail(transportError('ECONNABORTED', 'the pool is closed'));
    await Promise.all(closes);
  }
}
