import { ProcessError } from '../services/contract/errors.ts';
import { UsageError } from './args.ts';

type CommandModule = { run(argv: string[]): Promise<number | undefined> | number | undefined };

type CommandEntry = {
  summary: string;
  /** Loads the command lazily, so `kstyles corpus` never pays for NATS or Express. */
  load?: () => Promise<CommandModule>;
  /** For commands whose issue has not landed yet. */
  notBuilt?: string;
};

/** The commands of docs/architecture.md, 'The command line', in help order. */
export const COMMANDS: Record<string, CommandEntry> = {
  corpus: {
    summary: 'write deterministic test files and DIR/MANIFEST.json',
    load: () => import('../services/corpus/cli.ts'),
  },
  monolith: {
    summary: 'serve the contract from one in-process Express app',
    load: () => import('../monolith/cli.ts'),
  },
  microkernel: {
    summary: 'serve the contract from NATS servers under a supervisor',
    load: () => import('../services/microkernel/cli.ts'),
  },
  unikernel: {
    summary: 'serve the contract from the single-purpose executable',
    load: () => import('../unikernel/runtime/cli.ts'),
  },
  up: { summary: 'run the whole local lab on loopback', load: () => import('../lab/up-cli.ts') },
  console: {
    summary: 'the lab console beside a running deployment (compose)',
    load: () => import('../lab/console/console-cli.ts'),
  },
  ps: {
    summary: 'show what runs: PIDs, restarts, health',
    load: () => import('../services/supervisor/ps-cli.ts'),
  },
  chaos: {
    summary: 'inject a fault, e.g. microkernel:driver kill',
    load: () => import('../services/supervisor/chaos-cli.ts'),
  },
  load: {
    summary: 'open-loop load with byte verification and reports',
    load: () => import('../load/cli.ts'),
  },
  demo: {
    summary: 'the lab, a short load with chaos, and the report',
    load: () => import('../lab/demo-cli.ts'),
  },
  bench: { summary: 'the side-by-side benchmark', load: () => import('../bench/cli.ts') },
};

function mainHelp(): string {
  const lines = [
    'kstyles — one file-read service, three kernel architectures',
    '',
    'usage: kstyles <command> [flags]',
    '',
  ];
  for (const [name, entry] of Object.entries(COMMANDS)) {
    lines.push(`  ${name.padEnd(12)} ${entry.summary}${entry.notBuilt ? '  (not built yet)' : ''}`);
  }
  lines.push('', "Run 'kstyles <command> --help' for a command's flags.");
  return `${lines.join('\n')}\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(mainHelp());
    return name === undefined ? 2 : 0;
  }
  const entry = COMMANDS[name];
  if (!entry) throw new UsageError(`kstyles: unknown command '${name}'. Run 'kstyles --help' for the list.`);
  if (!entry.load) {
    throw new UsageError(`kstyles ${name}: not built yet — it arrives with ${entry.notBuilt}.`);
  }
  const mod = await entry.load();
  return (await mod.run(rest)) ?? 0;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  if (err instanceof UsageError) {
    process.stderr.write(`${err.message}\n`);
    process.exitCode = err.exitCode;
  } else if (err instanceof ProcessError) {
    // A registered condition with a message that says what to do: the stack would only bury it.
    process.stderr.write(`kstyles: ${err.message}\n`);
    process.exitCode = err.exitCode;
  } else {
    process.stderr.write(`kstyles: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  }
}
