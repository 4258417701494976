/** The machine a benchmark ran on: enough to judge whether two runs are comparable. */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { Machine } from './types.ts';

export const NATS_SERVER_BIN = '/usr/sbin/nats-server';
export const NGINX_BIN = '/usr/sbin/nginx';

/** Runs a binary for its version line; null when it is missing or fails (the caller says why it skips). */
export function versionOf(bin: string, args: string[]): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: 5000 }, (err, stdout, stderr) => {
      if (err) {
        resolve(null);
        return;
      }
      // nginx prints its version on stderr.
      const line = `${stdout}\n${stderr}`.split('\n').find((l) => l.trim() !== '');
      resolve(line?.trim() ?? null);
    });
  });
}

/**
 * Share of the last 60 s in which some runnable task waited for a CPU (/proc/pressure/cpu, "some
 * avg60"), 0..1; null where the kernel has no PSI. Near 1 means others' work competed with the run.
 */
export function cpuPressure(): number | null {
  try {
    const match = /^some .*avg60=([\d.]+)/m.exec(readFileSync('/proc/pressure/cpu', 'utf8'));
    return match ? Number(match[1]) / 100 : null;
  } catch {
    return null;
  }
}

export async function describeMachine(bins: { nats?: string; nginx?: string } = {}): Promise<Machine> {
  const cpus = os.cpus();
  const [natsServer, nginx] = await Promise.all([
    versionOf(bins.nats ?? NATS_SERVER_BIN, ['--version']),
    versionOf(bins.nginx ?? NGINX_BIN, ['-v']),
  ]);
  return {
    cores: cpus.length,
    cpuModel: cpus[0]?.model.trim() || 'unknown',
    memoryBytes: os.totalmem(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    natsServer,
    nginx,
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
    cpuPressure: cpuPressure(),
  };
}
