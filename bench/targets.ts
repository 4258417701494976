/**
 * How each benchmark target is started, as a client would: a child process on a loopback port, reached
 * over HTTP. The styles run through `kstyles <style>`; the unikernel runs as its image's executable
 * when it is built, so that neither its cold start nor its memory includes a launcher.
 */

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { KSTYLES_BIN, REPO_ROOT } from '../cli/kit/repo.ts';
import { ProcessError, ProcessErrorCode } from '../services/contract/errors.ts';
import { freePort } from '../services/contract/http-server.ts';
import { mallocEnv } from '../services/contract/malloc-env.ts';
import type { TransferMode } from '../services/ipc/headers.ts';
import { ANY_FREE_METRICS_PORTS } from '../services/microkernel/composition.ts';
import { buildLayout } from '../unikernel/runtime/layout.ts';
import { type Spawned, startProcess, waitFor200 } from './procs.ts';
import { startNginx } from './references.ts';
import type { ImageFacts, TargetName } from './types.ts';

export const FLOOR_SCRIPT = path.join(REPO_ROOT, 'bench', 'floor-server.ts');
const UNIKERNEL_BUILD = buildLayout('production');

/** The probe that says a target serves: readiness, then a real 4 KiB file. */
export const READY_PATHS = ['/readyz', '/files/bench/4k.bin'] as const;

/** A target that cannot be measured here, with the reason. */
export class SkipTarget extends ProcessError {
  override readonly name = 'SkipTarget';
  readonly code = ProcessErrorCode.TARGET_SKIPPED;
}

/** How a target is started; every one is a Node process and runs with the allocator settings of services/contract/malloc-env.ts. */
export type Launch = { command: string; args: string[]; env: NodeJS.ProcessEnv; describe: string };

export type RunningTarget = { name: TargetName; url: string; child: Spawned; port: number };

/** The phases a target takes part in (the copy-through microkernel only where its data path matters). */
export type TargetPhase = 'throughput' | 'latency' | 'coldStart' | 'recovery';

export type TargetDef = {
  name: TargetName;
  kind: 'reference' | 'style';
  phases: readonly TargetPhase[];
  /** The command for a given port, or null for targets started another way (nginx). */
  launch(port: number, dataDir: string): Launch | null;
  /** How long it may take to serve. */
  readyTimeoutMs: number;
};

function kstyles(style: string, port: number, dataDir: string): Launch {
  return {
    command: process.execPath,
    args: [KSTYLES_BIN, style, '--port', String(port), '--data', dataDir],
    env: mallocEnv(),
    describe: `node bin/kstyles.js ${style} --port P --data DIR`,
  };
}

/** The transfer mode of each microkernel target. */
export const MICROKERNEL_TRANSFERS: Partial<Record<TargetName, TransferMode>> = {
  microkernel: 'grant',
  'microkernel-copy': 'copy',
  'microkernel-shm': 'shm',
};

/** The supervisor id of the benchmark's microkernel with one transfer mode (its control API's name). */
export const benchSupervisorId = (transfer: TransferMode) => `bench-${process.pid}-${transfer}`;

/** The microkernel with one transfer mode; its own supervisor id and free metrics ports, so two run side by side (and beside a lab). */
function microkernel(transfer: TransferMode, port: number, dataDir: string): Launch {
  const base = kstyles('microkernel', port, dataDir);
  const extra = ['--transfer', transfer, '--id', benchSupervisorId(transfer), ...ANY_FREE_METRICS_PORTS];
  return {
    ...base,
    args: [...base.args, ...extra],
    describe: `${base.describe} --transfer ${transfer} --id bench-<pid>-${transfer} (metrics ports 0)`,
  };
}

const ALL_PHASES: readonly TargetPhase[] = ['throughput', 'latency', 'coldStart', 'recovery'];

/** The microkernel with another transfer: it starts and recovers as the grant one does, so only its data path is measured. */
function transferVariant(name: TargetName, transfer: TransferMode): TargetDef {
  return {
    name,
    kind: 'style',
    phases: ['throughput', 'latency'],
    readyTimeoutMs: 60_000,
    launch: (port, dataDir) => microkernel(transfer, port, dataDir),
  };
}

export const TARGETS: Record<TargetName, TargetDef> = {
  floor: {
    name: 'floor',
    kind: 'reference',
    phases: ['throughput', 'latency', 'coldStart'],
    readyTimeoutMs: 15_000,
    launch: (port, dataDir) => ({
      command: process.execPath,
      args: ['--import', 'tsx', FLOOR_SCRIPT, '--port', String(port), '--data', dataDir],
      env: mallocEnv(),
      describe: 'node --import tsx bench/floor-server.ts (node:http + fs, nothing else)',
    }),
  },
  nginx: {
    name: 'nginx',
    kind: 'reference',
    phases: ['throughput', 'latency'],
    readyTimeoutMs: 10_000,
    launch: () => null,
  },
  monolith: {
    name: 'monolith',
    kind: 'style',
    phases: ALL_PHASES,
    readyTimeoutMs: 30_000,
    launch: (port, dataDir) => kstyles('monolith', port, dataDir),
  },
  microkernel: {
    name: 'microkernel',
    kind: 'style',
    phases: ALL_PHASES,
    readyTimeoutMs: 60_000,
    launch: (port, dataDir) => microkernel('grant', port, dataDir),
  },
  'microkernel-copy': transferVariant('microkernel-copy', 'copy'),
  // Its small files take the grant's path (under SHM_MIN_BYTES nothing goes in a segment).
  'microkernel-shm': transferVariant('microkernel-shm', 'shm'),
  unikernel: {
    name: 'unikernel',
    kind: 'style',
    phases: ALL_PHASES,
    readyTimeoutMs: 30_000,
    launch: (port, dataDir) =>
      existsSync(UNIKERNEL_BUILD.executable)
        ? {
            command: UNIKERNEL_BUILD.executable,
            args: ['--port', String(port), '--data', path.resolve(dataDir)],
            // As in its image: no NODE_OPTIONS (a single executable would still honour them).
            env: { ...mallocEnv(), NODE_OPTIONS: '' },
            describe:
              'unikernel/dist/kstyles-unikernel (the single executable of its image) --port P --data DIR',
          }
        : {
            ...kstyles('unikernel', port, dataDir),
            describe: 'node bin/kstyles.js unikernel (not built: its development form)',
          },
  },
};

/** Turns "the command is not built yet" into a skip with the CLI's own reason. */
function skipIfNotBuilt(child: Spawned): void {
  const notBuilt = child.log.find((l) => /not built yet/.test(l));
  if (notBuilt) throw new SkipTarget(notBuilt.replace(/^kstyles \w+: /, ''));
}

/** Starts a target on a free port and waits until it serves a 4 KiB file. */
export async function startTarget(def: TargetDef, dataDir: string, workDir: string): Promise<RunningTarget> {
  if (def.name === 'nginx') {
    const { child, url } = await startNginx(workDir, dataDir);
    try {
      await waitFor200(child, url, [...READY_PATHS], def.readyTimeoutMs);
    } catch (err) {
      await child.stop(2000);
      const log = await readFile(path.join(workDir, 'nginx', 'error.log'), 'utf8').catch(() => '');
      throw new Error(
        `${(err as Error).message}\n    nginx error.log: ${log.trim().split('\n').slice(-3).join(' | ')}`,
      );
    }
    return { name: def.name, url, child, port: Number(new URL(url).port) };
  }
  const port = await freePort();
  const launch = def.launch(port, dataDir)!;
  const child = startProcess(def.name, launch.command, launch.args, launch.env);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor200(child, url, [...READY_PATHS], def.readyTimeoutMs);
  } catch (err) {
    if (!child.running) {
      // Its last output may arrive just after the exit.
      await new Promise((resolve) => setTimeout(resolve, 100));
      skipIfNotBuilt(child);
    }
    await child.stop(2000);
    throw err;
  }
  return { name: def.name, url, child, port };
}

/** Image facts of the unikernel build (unikernel/dist/image.json), when it was built. */
export async function unikernelImageFacts(): Promise<ImageFacts | null> {
  try {
    const json = JSON.parse(await readFile(UNIKERNEL_BUILD.imageJson, 'utf8')) as {
      rootfs?: { bytes?: number; files?: number };
      shell?: { present?: boolean };
    };
    return {
      ...(typeof json.rootfs?.bytes === 'number' ? { imageBytes: json.rootfs.bytes } : {}),
      ...(typeof json.rootfs?.files === 'number' ? { fileCount: json.rootfs.files } : {}),
      ...(typeof json.shell?.present === 'boolean' ? { hasShell: json.shell.present } : {}),
    };
  } catch {
    return null;
  }
}
