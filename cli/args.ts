import { parseArgs } from 'node:util';
import { ProcessError, ProcessErrorCode } from '../services/contract/errors.ts';

/** A command-line failure the user can fix: printed without a stack trace, exit code 2. */
export class UsageError extends ProcessError {
  override readonly name = 'UsageError';
  readonly code = ProcessErrorCode.USAGE;
}

export type FlagSpec = {
  type: 'string' | 'boolean';
  /** Environment variable that supplies the value when the flag is absent. */
  env?: string;
  short?: string;
  multiple?: boolean;
  default?: string | boolean;
  /** Shown in --help, e.g. "P" for --port P. */
  value?: string;
  description: string;
};

export type CommandSpec<F extends Record<string, FlagSpec>> = {
  name: string;
  summary: string;
  usage: string;
  flags: F;
  /** Extra help text after the flag list (examples, notes). */
  details?: string;
  /** Whether positional arguments are accepted. */
  positionals?: boolean;
};

type FlagValue<S extends FlagSpec> = S['type'] extends 'boolean'
  ? boolean
  : S['multiple'] extends true
    ? string[]
    : string | undefined;

export type ParsedFlags<F extends Record<string, FlagSpec>> = { [K in keyof F]: FlagValue<F[K]> };

export function helpText<F extends Record<string, FlagSpec>>(spec: CommandSpec<F>): string {
  const lines = [`kstyles ${spec.name} — ${spec.summary}`, '', `usage: ${spec.usage}`, ''];
  const entries = Object.entries(spec.flags);
  if (entries.length > 0) lines.push('flags:');
  for (const [name, flag] of entries) {
    const head = `  --${name}${flag.value ? ` ${flag.value}` : ''}${flag.short ? `, -${flag.short}` : ''}`;
    const extras = [
      flag.env ? `env ${flag.env}` : '',
      flag.default !== undefined ? `default ${String(flag.default)}` : '',
      flag.multiple ? 'repeatable' : '',
    ].filter(Boolean);
    lines.push(`${head.padEnd(28)} ${flag.description}${extras.length ? ` (${extras.join(', ')})` : ''}`);
  }
  lines.push(`${'  --help, -h'.padEnd(28)} show this help`);
  if (spec.details) lines.push('', spec.details.trimEnd());
  return `${lines.join('\n')}\n`;
}

const TRUE_WORDS = new Set(['1', 'true', 'yes', 'on']);
const FALSE_WORDS = new Set(['0', 'false', 'no', 'off', '']);

/**
 * Parses argv strictly: an unknown flag or a missing value is a UsageError naming the flag.
 * Absent flags fall back to their environment variable, then to their default.
 * Returns null when --help was asked for (the help has been printed).
 */
export function parseCommand<F extends Record<string, FlagSpec>>(
  spec: CommandSpec<F>,
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): { flags: ParsedFlags<F>; positionals: string[] } | null {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, flag] of Object.entries(spec.flags)) {
    options[name] = {
      type: flag.type,
      ...(flag.short ? { short: flag.short } : {}),
      multiple: !!flag.multiple,
    };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError(
      `kstyles ${spec.name}: ${describeParseError(err)}. Run 'kstyles ${spec.name} --help'.`,
    );
  }
  if (parsed.values.help) {
    process.stdout.write(helpText(spec));
    return null;
  }
  if (!spec.positionals && parsed.positionals.length > 0) {
    throw new UsageError(
      `kstyles ${spec.name}: unexpected argument '${parsed.positionals[0]}'. Run 'kstyles ${spec.name} --help'.`,
    );
  }
  const flags: Record<string, unknown> = {};
  for (const [name, flag] of Object.entries(spec.flags)) {
    let value: unknown = parsed.values[name];
    const envValue = flag.env ? env[flag.env] : undefined;
    if (value === undefined && envValue !== undefined) {
      if (flag.type === 'boolean') {
        const word = envValue.trim().toLowerCase();
        if (TRUE_WORDS.has(word)) value = true;
        else if (FALSE_WORDS.has(word)) value = false;
        else
          throw new UsageError(
            `kstyles ${spec.name}: environment variable ${flag.env}='${envValue}' is not a boolean (use 1 or 0).`,
          );
      } else {
        value = flag.multiple ? envValue.split(/\s+/).filter(Boolean) : envValue;
      }
    }
    if (value === undefined)
      value = flag.default ?? (flag.type === 'boolean' ? false : flag.multiple ? [] : undefined);
    flags[name] = value;
  }
  return { flags: flags as ParsedFlags<F>, positionals: parsed.positionals };
}

function describeParseError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const unknown = /Unknown option '([^']+)'/.exec(message);
  if (unknown) return `unknown flag '${unknown[1]}'`;
  const missing = /Option '([^']+?)(?: <value>)?' argument missing/.exec(message);
  if (missing) return `flag '${missing[1]}' needs a value`;
  return message.replace(/\.$/, '');
}

/** Reads an integer flag within bounds, or throws a UsageError naming the flag. */
export function intFlag(
  command: string,
  flag: string,
  raw: string | undefined,
  min: number,
  max: number,
): number {
  if (raw === undefined) throw new UsageError(`kstyles ${command}: --${flag} is required.`);
  const value = Number(raw);
  if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(
      `kstyles ${command}: --${flag} must be an integer from ${min} to ${max}, got '${raw}'.`,
    );
  }
  return value;
}

/** Reads a port flag (0 = any free port). */
export function portFlag(command: string, raw: string | undefined): number {
  return intFlag(command, 'port', raw, 0, 65535);
}
