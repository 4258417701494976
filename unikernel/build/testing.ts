/** Test helpers: a fresh build in a temporary directory, and the program started as a real process. */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { type BuildLayout, buildLayout, type Flavor } from '../runtime/layout.ts';
import { build, type ImageReport, removeTree } from './build.ts';

export type TestBuild = {
  layout: BuildLayout;
  /** What the tests run: the single executable, or the bundle when the executable could not be built. */
  form: 'single executable' | 'bundle';
  /** The command line that starts the program (before its flags). */
  command: string[];
  report: ImageReport | null;
  /** Why the executable is missing, when `form` is 'bundle'. */
  fallbackReason?: string;
};

/** Builds `flavor` into a temporary dist directory (removed at exit), without Docker or measurements. */
export async function buildForTest(flavor: Flavor): Promise<TestBuild> {
  const distDir = mkdtempSync(join(tmpdir(), `kstyles-unikernel-${flavor}-`));
  process.once('exit', () => removeTree(distDir));
  const layout = buildLayout(flavor, distDir);
  try {
    const report = await build({ flavor, distDir, docker: false, measure: false, quiet: true });
    return { layout, form: 'single executable', command: [layout.rootfsExecutable], report };
  } catch (err) {
    if (!existsSync(layout.bundle) || !existsSync(layout.bundleWorker)) throw err;
    return {
      layout,
      form: 'bundle',
      command: [process.execPath, layout.bundle],
      report: null,
      fallbackReason: (err as Error).message,
    };
  }
}

export type RunningProgram = {
  child: ChildProcess;
  port: number;
  baseUrl: string;
  /** Everything the process wrote so far (stdout and stderr). */
  output(): string;
  /** Resolves with the exit code and signal once the process has ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): Promise<void>;
};

/** Starts the program with `--port 0` and waits for its 'unikernel listening' log line. */
export async function startProgram(
  command: string[],
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<RunningProgram> {
  const [file, ...pre] = command;
  const child = spawn(file!, [...pre, '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '', ...env },
  });
  let output = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }));
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      output += `${line}\n`;
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg === 'unikernel listening' && entry.port) resolve(entry.port);
      } catch {
        // not a log line
      }
    });
    void exited.then(({ code, signal }) =>
      reject(new Error(`the program exited (${code ?? signal}) before listening:\n${output}`)),
    );
    setTimeout(() => reject(new Error(`the program did not listen within 15 s:\n${output}`)), 15_000).unref();
  });
  return {
    child,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
