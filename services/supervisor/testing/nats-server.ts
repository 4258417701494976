import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../contract/http-server.ts';

export { freePort };

export const NATS_SERVER_BIN = process.env['NATS_SERVER_BIN'] ?? '/usr/sbin/nats-server';

export type TestNatsServer = {
  url: string;
  port: number;
  /** Stops the server (SIGTERM, then SIGKILL) and removes its temp dir. Safe to call twice. */
  stop(): Promise<void>;
  /** Stops it and starts it again on the same port (for reconnect tests). */
  restart(): Promise<void>;
};

function waitForPort(port: number, proc: ChildProcess, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (proc.exitCode !== null) {
        reject(new Error(`nats-server exited with code ${proc.exitCode} before listening on ${port}`));
        return;
      }
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > until)
          reject(new Error(`nats-server did not listen on 127.0.0.1:${port} within ${deadlineMs} ms`));
        else setTimeout(attempt, 25);
      });
    };
    attempt();
  });
}

/**
 * Starts a real nats-server on a free loopback port. `config` is nats-server config text (e.g.
 * `authorization { ... }`); the port and host are set on the command line and win over it.
 */
export async function startNatsServer(options: { config?: string } = {}): Promise<TestNatsServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kstyles-nats-'));
  const port = await freePort();
  const args = ['-a', '127.0.0.1', '-p', String(port)];
  if (options.config !== undefined) {
    const file = path.join(dir, 'nats.conf');
    writeFileSync(file, options.config);
    args.push('-c', file);
  }
  let proc: ChildProcess | undefined;
  const launch = async () => {
    proc = spawn(NATS_SERVER_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    proc.once('error', () => {});
    try {
      await waitForPort(port, proc, 5000);
    } catch (err) {
      proc.kill('SIGKILL');
      throw new Error(
        `${(err as Error).message}\n${stderr}\n(is nats-server installed at ${NATS_SERVER_BIN}?)`,
      );
    }
  };
  const halt = async () => {
    const running = proc;
    proc = undefined;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGTERM');
    const timer = setTimeout(() => running.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(timer);
  };
  await launch();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    stop: async () => {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
    restart: async () => {
      await halt();
      await launch();
    },
  };
}
