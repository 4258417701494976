/**
 * Test helpers of the monolith's suites: a download whose reader pauses (a slow client, to hold a large
 * response in flight on purpose), and a spawned `kstyles monolith` process that reports its start line.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { KSTYLES_BIN } from '../cli/kit/repo.ts';

export const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

export type DownloadResult = {
  status: number;
  headers: Record<string, string>;
  /** Body bytes received (hashed as they came, not kept: the bodies can be large). */
  bodyLength: number;
  bodySha256: string;
  /** The body has exactly Content-Length bytes and the connection closed without an error. */
  complete: boolean;
  error?: Error;
};

/**
 * A GET over a raw socket that stops reading once `pauseAfterBytes` of the body have arrived, until
 * `resume()`: TCP flow control then pushes back on the server, as a slow client would.
 */
export class PausedDownload {
  /** Resolves once the status line, the headers and `pauseAfterBytes` of the body have arrived. */
  readonly paused: Promise<void>;
  readonly finished: Promise<DownloadResult>;
  private readonly socket: Socket;
  private head = Buffer.alloc(0);
  private status = 0;
  private headers: Record<string, string> = {};
  private readonly hash = createHash('sha256');
  private bodyLength = 0;

  constructor(baseUrl: string, target: string, pauseAfterBytes = 64 * 1024) {
    const url = new URL(baseUrl);
    this.socket = connect(Number(url.port), url.hostname);
    let onPaused: () => void = () => {};
    let onPauseFailed: (err: Error) => void = () => {};
    this.paused = new Promise((resolve, reject) => {
      onPaused = resolve;
      onPauseFailed = reject;
    });
    // Callers that never wait for the pause must not see an unhandled rejection.
    this.paused.catch(() => {});
    let pausedOnce = false;
    let inBody = false;
    this.socket.on('data', (chunk: Buffer) => {
      if (!inBody) {
        this.head = Buffer.concat([this.head, chunk]);
        const end = this.head.indexOf('\r\n\r\n');
        if (end === -1) return;
        inBody = true;
        this.parseHead(this.head.subarray(0, end).toString('latin1'));
        chunk = this.head.subarray(end + 4);
      }
      this.hash.update(chunk);
      this.bodyLength += chunk.length;
      if (!pausedOnce && this.bodyLength >= pauseAfterBytes) {
        pausedOnce = true;
        this.socket.pause();
        onPaused();
      }
    });
    this.finished = new Promise((resolve) => {
      let error: Error | undefined;
      this.socket.on('error', (err) => {
        error = err;
      });
      this.socket.on('close', () => {
        if (!pausedOnce) {
          onPauseFailed(new Error(`${target} ended before its reader paused (status ${this.status})`));
        }
        const complete =
          error === undefined && inBody && this.bodyLength === Number(this.headers['content-length']);
        resolve({
          status: this.status,
          headers: this.headers,
          bodyLength: this.bodyLength,
          bodySha256: this.hash.digest('hex'),
          complete,
          ...(error ? { error } : {}),
        });
      });
    });
    this.socket.write(`GET ${target} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n\r\n`);
  }

  resume(): void {
    this.socket.resume();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private parseHead(head: string): void {
    const [statusLine = '', ...lines] = head.split('\r\n');
    this.status = Number(statusLine.split(' ')[1]);
    for (const line of lines) {
      const colon = line.indexOf(':');
      this.headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
  }
}

export type StartLine = {
  msg: string;
  style: string;
  pid: number;
  port: number;
  url: string;
  dataRoot: string;
  chaos: {
    enabled: boolean;
    poisonPath?: string;
    latencyMs?: number;
    errorRate?: number;
    slowToggleMs?: number;
  };
};

export type Exit = { code: number | null; signal: NodeJS.Signals | null };

/** A `kstyles monolith` child process; `stdout` and `stderr` accumulate as it runs. */
export class MonolithProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  stdout = '';
  stderr = '';

  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [KSTYLES_BIN, 'monolith', ...args], {
      // Only the test's settings: none of the caller's KSTYLES_* variables leak in.
      env: {
        ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('KSTYLES_'))),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.setEncoding('utf8').on('data', (text: string) => {
      this.stdout += text;
    });
    this.child.stderr!.setEncoding('utf8').on('data', (text: string) => {
      this.stderr += text;
    });
    this.exited = new Promise((resolve) =>
      this.child.once('close', (code, signal) => resolve({ code, signal })),
    );
  }

  /** Structured log lines written so far. */
  get lines(): Array<Record<string, unknown>> {
    return this.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  /** Waits for a log line matching `predicate`; fails if the process exits first or `timeoutMs` passes. */
  async waitForLine(
    predicate: (line: Record<string, unknown>) => boolean,
    timeoutMs = 15_000,
  ): Promise<Record<string, unknown>> {
    const until = Date.now() + timeoutMs;
    let gone = false;
    void this.exited.then(() => {
      gone = true;
    });
    for (;;) {
      const line = this.lines.find(predicate);
      if (line) return line;
      if (gone) assert.fail(`the process exited before the expected log line; stderr: ${this.stderr}`);
      if (Date.now() > until)
        assert.fail(`no expected log line within ${timeoutMs} ms; stdout: ${this.stdout}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async started(): Promise<StartLine> {
    return (await this.waitForLine((line) => line.msg === 'monolith listening')) as unknown as StartLine;
  }

  /** Ends the process if it still runs (cleanup after a failed test). */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}
