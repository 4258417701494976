/**
 * `kstyles microkernel` as a real process tree for tests: spawned with its own TMPDIR and
 * XDG_RUNTIME_DIR (so its runtime state and NATS config never meet another run's), read back through the runtime state file, the
 * supervisor's control API and its event subject, and always torn down (SIGTERM, then SIGKILL of
 * anything left) even when a test fails.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/nats-core';
import { KSTYLES_BIN, REPO_ROOT } from '../../../cli/kit/repo.ts';
import { connectNats } from '../../ipc/connect.ts';
import { SupervisorControlClient } from '../../supervisor/control-client.ts';
import {
  isProcessAlive,
  type RuntimeState,
  runtimeStateDir,
  signalProcessGroup,
} from '../../supervisor/runtime-state.ts';
import { SUPERVISOR_SUBJECTS } from '../../supervisor/subjects.ts';
import type { SupervisorEvent, SupervisorStatus } from '../../supervisor/supervisor.ts';
import { ANY_FREE_METRICS_PORTS } from '../composition.ts';

export type ProcessKernel = {
  proc: ChildProcess;
  tmp: string;
  /** The environment under which a `kstyles` command finds this kernel's runtime state. */
  stateEnv: { TMPDIR: string; XDG_RUNTIME_DIR: string };
  /** Everything the process tree wrote (supervisor lines and prefixed child lines). */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Present once ready (waitReady). */
  url: string;
  state: RuntimeState;
  /** Supervisor events seen since ready. */
  events: SupervisorEvent[];
  status(): Promise<SupervisorStatus>;
  pidOf(child: string): Promise<number>;
  waitFor(
    predicate: (e: SupervisorEvent) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<SupervisorEvent>;
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
};

export type ProcessKernelOptions = {
  data: string;
  args?: string[];
  env?: Record<string, string>;
  /** Default true: resolve once "microkernel ready" is printed. */
  waitReady?: boolean;
  readyTimeoutMs?: number;
};

/** One supervisor event as a line of a measurement's timeline, in seconds after `since` (ms epoch). */
export function eventLine(e: SupervisorEvent, since: number): string {
  const at = ((Date.parse(e.time) - since) / 1000).toFixed(1);
  return `at ${at} s: ${e.service} ${e.type}${e.message ? ` (${e.message})` : ''}`;
}

export async function startProcessKernel(options: ProcessKernelOptions): Promise<ProcessKernel> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'kstyles-mk-test-'));
  const stateEnv = { TMPDIR: tmp, XDG_RUNTIME_DIR: tmp };
  const env: NodeJS.ProcessEnv = { ...process.env, ...stateEnv, ...options.env };
  for (const key of ['KSTYLES_PORT', 'NATS_URL', 'KSTYLES_CHAOS', 'KSTYLES_DATA']) {
    if (!options.env?.[key]) delete env[key];
  }
  const proc = spawn(
    process.execPath,
    [
      KSTYLES_BIN,
      'microkernel',
      '--data',
      options.data,
      '--port',
      '0',
      ...ANY_FREE_METRICS_PORTS,
      ...(options.args ?? []),
    ],
    { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  proc.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  proc.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const seenPids = new Set<number>();
  let nc: NatsConnection | undefined;
  let control: SupervisorControlClient | undefined;
  const events: SupervisorEvent[] = [];
  const listeners = new Set<() => void>();

  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
    const result = await exited;
    clearTimeout(timer);
    await control?.close().catch(() => {});
    await nc?.close().catch(() => {});
    // Children run in their own process groups: anything the supervisor left behind goes now.
    for (const pid of seenPids) if (isProcessAlive(pid)) signalProcessGroup(pid, 'SIGKILL');
    rmSync(tmp, { recursive: true, force: true });
    return result;
  };

  const kernel: ProcessKernel = {
    proc,
    tmp,
    stateEnv,
    output: () => output,
    exited,
    url: '',
    state: undefined as unknown as RuntimeState,
    events,
    status: async () => {
      const status = await control!.status(kernel.state.id);
      for (const child of status.children) if (child.pid) seenPids.add(child.pid);
      return status;
    },
    pidOf: async (child) => {
      const found = (await kernel.status()).children.find((c) => c.name === child);
      if (!found?.pid) throw new Error(`child ${child} has no pid (state ${found?.state})`);
      return found.pid;
    },
    waitFor: (predicate, timeoutMs, what) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const hit = events.find(predicate);
          if (!hit) return false;
          listeners.delete(check);
          clearTimeout(timer);
          resolve(hit);
          return true;
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(
            new Error(
              `no ${what} within ${timeoutMs} ms; events: ${JSON.stringify(events.map((e) => `${e.service}:${e.type}`))}`,
            ),
          );
        }, timeoutMs);
        if (!check()) listeners.add(check);
      }),
    stop,
  };
  if (options.waitReady === false) return kernel;

  try {
    const readyBy = Date.now() + (options.readyTimeoutMs ?? 30_000);
    while (!/microkernel ready: (\S+)/.test(output)) {
      if (proc.exitCode !== null)
        throw new Error(`kstyles microkernel exited ${proc.exitCode} before ready:\n${output}`);
      if (Date.now() > readyBy) throw new Error(`kstyles microkernel not ready in time:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    kernel.url = /microkernel ready: (\S+)/.exec(output)![1]!;
    const stateFile = path.join(runtimeStateDir(stateEnv), 'microkernel.json');
    kernel.state = JSON.parse(readFileSync(stateFile, 'utf8')) as RuntimeState;
    const creds = kernel.state.nats!;
    nc = await connectNats({ ...creds, name: 'kstyles-test-events', reconnectTimeWaitMs: 100 });
    nc.subscribe(SUPERVISOR_SUBJECTS.events(kernel.state.id), {
      callback: (err, msg) => {
        if (err) return;
        events.push(msg.json<SupervisorEvent>());
        for (const listener of [...listeners]) listener();
      },
    });
    await nc.flush();
    control = await SupervisorControlClient.connect(creds);
    await kernel.status();
    return kernel;
  } catch (err) {
    await stop();
    throw err;
  }
}
