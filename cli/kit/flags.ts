/**
 * The flags every entry point shares, spelled once: their names, environment variables and value names
 * (`kstyles monolith|microkernel|unikernel`, the microkernel's servers). Each command gives its own
 * description and default.
 */

type StringFlag = {
  readonly type: 'string';
  readonly env: string;
  readonly value: string;
  readonly default?: string;
  readonly description: string;
};
type BooleanFlag = { readonly type: 'boolean'; readonly env: string; readonly description: string };

const withDefault = (flag: StringFlag, value: string | number | undefined): StringFlag =>
  value === undefined ? flag : { ...flag, default: String(value) };

/** `--port P` (KSTYLES_PORT); 0 means any free port. */
export function portFlagSpec(defaultPort: number | undefined, description: string): StringFlag {
  return withDefault({ type: 'string', env: 'KSTYLES_PORT', value: 'P', description }, defaultPort);
}

/** `--host H` (KSTYLES_HOST), loopback unless told otherwise. */
export function hostFlagSpec(description: string): StringFlag {
  return { type: 'string', env: 'KSTYLES_HOST', value: 'H', default: '127.0.0.1', description };
}

/** `--data DIR` (KSTYLES_DATA): the data root to serve, a corpus (`kstyles corpus`). */
export function dataFlagSpec(description: string, defaultDir?: string): StringFlag {
  return withDefault({ type: 'string', env: 'KSTYLES_DATA', value: 'DIR', description }, defaultDir);
}

/** `--chaos` (KSTYLES_CHAOS=1): arms the driver's fault hooks. */
export function chaosFlagSpec(description: string): BooleanFlag {
  return { type: 'boolean', env: 'KSTYLES_CHAOS', description };
}

/** `--<name> P`: a /metrics port, read from `env`. */
export function metricsPortFlagSpec(
  env: string,
  defaultPort: number | undefined,
  description: string,
): StringFlag {
  return withDefault({ type: 'string', env, value: 'P', description }, defaultPort);
}

/** `--metrics-host H` (KSTYLES_METRICS_HOST): the address of the /metrics ports, loopback by default. */
export function metricsHostFlagSpec(description: string): StringFlag {
  return { type: 'string', env: 'KSTYLES_METRICS_HOST', value: 'H', default: '127.0.0.1', description };
}
