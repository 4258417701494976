/**
 * The code loaded in a process's address space, counted: its own modules, npm packages' modules and
 * Node's built-in JavaScript, with their bytes. At run time from V8 itself: an in-process inspector
 * session lists every script the isolate has compiled (Debugger.enable replays them all, CommonJS, ES
 * modules and built-ins alike), then is switched off again; no port is opened. A bundle is one script to
 * V8: its modules are counted from the build's esbuild metafile instead (bundleInventoryOf).
 */
import { readFileSync } from 'node:fs';
import { Session } from 'node:inspector';

export type CodeCount = { modules: number; bytes: number };

export type CodeInventory = {
  /** This project's modules (a bundle's, when bundled). */
  own: CodeCount;
  /** Modules of npm packages, and how many packages. */
  npm: CodeCount & { packages: number };
  /** Node's own JavaScript (`node:` built-ins) compiled in this isolate. */
  node: CodeCount;
  /** Whether own and npm were counted from a bundle's metafile rather than from the scripts V8 holds. */
  bundled: boolean;
};

/** What a bundle holds, from esbuild's metafile: modules and their bytes in the output, by origin. */
export type BundleInventory = { own: CodeCount; npm: CodeCount; packages: string[] };

/** Beside a bundle that is a process's entry, what it holds: `<bundle>.inventory.json` (server-bundles.ts). */
export const INVENTORY_SUFFIX = '.inventory.json';

/** The inventory written beside `entry` (a bundle run as a program), or undefined when there is none. */
export function bundleInventoryBeside(entry: string | undefined): BundleInventory | undefined {
  if (!entry) return undefined;
  try {
    return JSON.parse(readFileSync(`${entry}${INVENTORY_SUFFIX}`, 'utf8')) as BundleInventory;
  } catch {
    return undefined; // Not a bundle, or one built without it: V8's list of scripts counts.
  }
}

/** One script V8 compiled: its URL (`node:…`, `file://…`, a path) and its length. */
export type LoadedScript = { url: string; bytes: number };

/** The package a module file belongs to (`express`, `@nats-io/nats-core`), when it is under node_modules. */
export function npmPackageOf(file: string): string | undefined {
  const at = file.lastIndexOf('node_modules/');
  if (at === -1) return undefined;
  const [first, second] = file.slice(at + 'node_modules/'.length).split('/');
  if (!first) return undefined;
  return first.startsWith('@') && second ? `${first}/${second}` : first;
}

/** Counts scripts by origin; with `bundle`, the non-built-in scripts are the bundle and its metafile counts instead. */
export function inventoryOf(scripts: LoadedScript[], bundle?: BundleInventory): CodeInventory {
  const own = { modules: 0, bytes: 0 };
  const npm = { modules: 0, bytes: 0 };
  const node = { modules: 0, bytes: 0 };
  const packages = new Set<string>();
  for (const script of scripts) {
    if (script.url === '') continue; // eval'd code and wrappers: no module behind it.
    const pkg = npmPackageOf(script.url);
    const into = script.url.startsWith('node:') ? node : pkg ? npm : own;
    if (pkg) packages.add(pkg);
    into.modules++;
    into.bytes += script.bytes;
  }
  if (bundle) {
    return {
      own: { ...bundle.own },
      npm: { ...bundle.npm, packages: bundle.packages.length },
      node,
      bundled: true,
    };
  }
  return { own, npm: { ...npm, packages: packages.size }, node, bundled: false };
}

/** Every script this isolate has compiled, from an in-process inspector session (enabled, then off again). */
export function loadedScripts(): Promise<LoadedScript[]> {
  return new Promise((resolve, reject) => {
    const session = new Session();
    session.connect();
    const scripts: LoadedScript[] = [];
    session.on('Debugger.scriptParsed', (message) => {
      const { url, length } = message.params as { url: string; length?: number };
      scripts.push({ url, bytes: length ?? 0 });
    });
    session.post('Debugger.enable', (err) => {
      if (err) {
        session.disconnect();
        reject(err);
        return;
      }
      session.post('Debugger.disable', () => {
        session.disconnect();
        resolve(scripts);
      });
    });
  });
}

/**
 * The code this process has loaded since it started: the union of every scan. V8 drops a script once
 * nothing needs it (a module whose code ran once at load), so a single late scan undercounts; measured on
 * the monolith, 228 npm modules at start, 169 in a scan 30 s later. The first scan runs a second after
 * the cache exists (or at the first read before that), later ones at most every `maxAgeMs`: a scan stops the
 * event loop for a few ms (about 10 ms for the monolith's ~450 scripts, 60 ms the first time), so a
 * scrape every 2 s must not pay it each time.
 */
const FIRST_SCAN_DELAY_MS = 1000;

export class CodeInventoryCache {
  readonly #seen = new Map<string, number>();
  #scanned: { at: number; done: Promise<void> } | undefined;

  constructor(
    private readonly bundle?: BundleInventory,
    private readonly maxAgeMs = 30_000,
    private readonly scan: () => Promise<LoadedScript[]> = loadedScripts,
  ) {
    // A second after start: the static imports are done and nothing dropped yet, and a cold start's
    // first answer (what the benchmark times) does not wait for the scan.
    setTimeout(() => void this.#scan().catch(() => {}), FIRST_SCAN_DELAY_MS).unref();
  }

  #scan(): Promise<void> {
    const now = Date.now();
    if (!this.#scanned || now - this.#scanned.at >= this.maxAgeMs) {
      const done = this.scan().then((scripts) => {
        for (const { url, bytes } of scripts) this.#seen.set(url, Math.max(bytes, this.#seen.get(url) ?? 0));
      });
      this.#scanned = { at: now, done };
      done.catch(() => {
        this.#scanned = undefined;
      });
    }
    return this.#scanned.done;
  }

  async get(): Promise<CodeInventory> {
    await this.#scan();
    return inventoryOf(
      [...this.#seen].map(([url, bytes]) => ({ url, bytes })),
      this.bundle,
    );
  }
}

/** The part of esbuild's metafile this reads: each output's inputs and the bytes each left in it. */
export type MetafileOutputs = {
  outputs: Record<string, { inputs: Record<string, { bytesInOutput: number }> }>;
};

/**
 * What bundles hold, from their metafiles: each input file counted once across the bundles (the program
 * and its pool worker share modules), its bytes in every output summed (each output is loaded). Inputs
 * that left no byte (tree-shaken away) are not loaded code and are not counted.
 */
export function bundleInventoryOf(metafiles: MetafileOutputs[]): BundleInventory {
  const own = { modules: 0, bytes: 0 };
  const npm = { modules: 0, bytes: 0 };
  const seen = new Set<string>();
  const packages = new Set<string>();
  for (const metafile of metafiles) {
    for (const output of Object.values(metafile.outputs)) {
      for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
        if (bytesInOutput === 0) continue;
        const pkg = npmPackageOf(input);
        const into = pkg ? npm : own;
        into.bytes += bytesInOutput;
        if (seen.has(input)) continue;
        seen.add(input);
        into.modules++;
        if (pkg) packages.add(pkg);
      }
    }
  }
  return { own, npm, packages: [...packages].sort() };
}
