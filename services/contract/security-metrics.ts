/**
 * The Security row's facts about the process that parses requests, measured by that process of itself
 * and served on its /metrics as `kstyles_security_*` gauges (docs/architecture.md, 'Metrics'): what it
 * holds (descriptors, listening sockets, credentials, the code in its address space), what it may do (uid,
 * capabilities, writable places, a shell to exec) and, in a container image, what the image holds. Every
 * style serves /metrics, the unikernel's production build too, so a client anywhere reads the same facts
 * (securityFactsOf); wherever the process runs, in a container or on another machine.
 */
import { accessSync, constants, existsSync, realpathSync } from 'node:fs';
import { lstat, opendir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { Gauge, type Registry } from 'prom-client';
import {
  type BundleInventory,
  bundleInventoryBeside,
  type CodeInventory,
  CodeInventoryCache,
} from './code-inventory.ts';
import { inspectProcess, type ProcessInspection } from './process-inspection.ts';

export const SECURITY_METRICS = {
  pid: 'kstyles_security_pid',
  uid: 'kstyles_security_uid',
  capability: 'kstyles_security_capability',
  noNewPrivs: 'kstyles_security_no_new_privs',
  threads: 'kstyles_security_threads',
  openFds: 'kstyles_security_open_fds',
  listeningSockets: 'kstyles_security_listening_sockets',
  openRegularFiles: 'kstyles_security_open_regular_files',
  openDataFiles: 'kstyles_security_open_data_files',
  credential: 'kstyles_security_credential',
  writable: 'kstyles_security_writable',
  shell: 'kstyles_security_shell',
  codeModules: 'kstyles_security_code_modules',
  codeBytes: 'kstyles_security_code_bytes',
  npmPackages: 'kstyles_security_npm_packages',
  codeBundled: 'kstyles_security_code_bundled',
  imageFiles: 'kstyles_security_image_files',
  imageBytes: 'kstyles_security_image_bytes',
} as const;

/** Set in a container image (its Dockerfile's ENV) to the image's name: the process then counts its root filesystem. */
export const IMAGE_ENV = 'KSTYLES_IMAGE';

/** Where a shell would be: a process that can exec one gives an attacker an interpreter for free. */
export const SHELL_PATHS = [
  '/bin/sh',
  '/usr/bin/sh',
  '/bin/bash',
  '/usr/bin/bash',
  '/bin/dash',
  '/bin/ash',
  '/bin/busybox',
  '/usr/bin/busybox',
] as const;

/** A place the process might write to: its root, system directories, its temp directory, its code, its data. */
export type Place = 'root' | 'etc' | 'usr' | 'tmp' | 'code' | 'data';

/** The Security row's facts of one process, as the gauges carry them (and as a client reads them back). */
export type SecurityFacts = Omit<ProcessInspection, 'capEff'> & {
  /** Each place checked, its path and whether this process may write there (access(2) W_OK: uid, mode, read-only mounts). */
  writable: { place: Place; path: string; writable: boolean }[];
  /** The shells this process could exec (SHELL_PATHS that exist in its filesystem). */
  shells: string[];
  code?: CodeInventory;
  /** The container image's root filesystem, counted at start (IMAGE_ENV set); absent outside an image. */
  image?: { name: string; files: number; bytes: number };
};

export type SecurityMetricsOptions = {
  /** The data root the process serves (a place it may or may not write). */
  dataDir?: string;
  /** The bundle this process runs, from its build's metafile (the unikernel's executable). */
  bundle?: BundleInventory;
};

/** The places to check: fixed system paths, the entry point's directory, the data root. */
function places(dataDir: string | undefined): { place: Place; path: string }[] {
  const entry = process.argv[1] ?? process.execPath;
  let code = path.dirname(process.execPath);
  try {
    code = path.dirname(realpathSync(entry));
  } catch {
    // A single executable's argv[1] is its name as typed: its directory is the executable's.
  }
  return [
    { place: 'root', path: '/' },
    { place: 'etc', path: '/etc' },
    { place: 'usr', path: '/usr' },
    { place: 'tmp', path: '/tmp' },
    { place: 'code', path: code },
    ...(dataDir ? [{ place: 'data' as const, path: path.resolve(dataDir) }] : []),
  ];
}

function mayWrite(file: string): boolean {
  try {
    accessSync(file, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Mount points other than `/` (from /proc/self/mountinfo, octal escapes decoded). */
export async function otherMounts(): Promise<Set<string>> {
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const mounts = new Set<string>();
  for (const line of text.split('\n')) {
    const point = line.split(' ')[4];
    if (point && point !== '/')
      mounts.add(
        point.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8))),
      );
  }
  return mounts;
}

/** Files (symbolic links included, not followed) and bytes under `root`, not descending into `skip`. */
export async function countFiles(
  root: string,
  skip: ReadonlySet<string>,
): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  const pending = [root];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    let handle: Awaited<ReturnType<typeof opendir>>;
    try {
      handle = await opendir(dir);
    } catch {
      continue; // Not ours to read.
    }
    for await (const entry of handle) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!skip.has(full)) pending.push(full);
        continue;
      }
      files++;
      if (entry.isFile()) bytes += (await lstat(full).catch(() => ({ size: 0 }))).size;
    }
  }
  return { files, bytes };
}

/**
 * Files and bytes of the root filesystem this process sees, without what is mounted on it (/proc, /sys,
 * /dev, volumes, tmpfs): in a container, the image.
 */
export async function rootFilesystemCount(): Promise<{ files: number; bytes: number }> {
  return countFiles('/', await otherMounts());
}

/**
 * Registers the `kstyles_security_*` gauges; each scrape measures again (the code inventory at most every
 * 30 s, the image once). Linux only: elsewhere nothing is registered.
 */
export function registerSecurityMetrics(registry: Registry, options: SecurityMetricsOptions = {}): void {
  if (process.platform !== 'linux') return;
  const checked = places(options.dataDir);
  let dataRoot: string | undefined;
  try {
    dataRoot = options.dataDir === undefined ? undefined : realpathSync(options.dataDir);
  } catch {
    dataRoot = undefined; // Not there (yet): the style itself says so when it opens it.
  }
  const code = new CodeInventoryCache(options.bundle ?? bundleInventoryBeside(process.argv[1]));
  const imageName = process.env[IMAGE_ENV];
  const image = imageName ? rootFilesystemCount() : undefined;
  image?.catch(() => {});
  // One measurement sets every gauge: the registry asks all gauges at once, and they share it.
  let scrape: Promise<void> | undefined;
  const collect = async () => {
    scrape ??= measure().finally(() => {
      scrape = undefined;
    });
    await scrape;
  };
  const gauge = <L extends string>(name: string, help: string, labelNames: L[] = []) =>
    new Gauge<L>({ name, help, labelNames, registers: [registry], collect });
  const pid = gauge(SECURITY_METRICS.pid, 'Process id of this process (the one that parses requests)');
  const uid = gauge(SECURITY_METRICS.uid, 'Effective uid of this process (0 = root)');
  const capability = gauge(
    SECURITY_METRICS.capability,
    'Effective capabilities of this process, one series each',
    ['name'],
  );
  const noNewPrivs = gauge(SECURITY_METRICS.noNewPrivs, '1 when no exec can gain privileges (no_new_privs)');
  const threads = gauge(SECURITY_METRICS.threads, 'Threads sharing this address space');
  const openFds = gauge(SECURITY_METRICS.openFds, 'Open file descriptors');
  const sockets = gauge(
    SECURITY_METRICS.listeningSockets,
    'TCP sockets in LISTEN state held by this process',
  );
  const regular = gauge(SECURITY_METRICS.openRegularFiles, 'Descriptors open on regular files');
  const dataFiles = dataRoot
    ? gauge(
        SECURITY_METRICS.openDataFiles,
        'Descriptors open on files under the data root this process serves',
      )
    : undefined;
  const credential = gauge(
    SECURITY_METRICS.credential,
    'Environment variables holding a credential (nkey seed, password, token), one series each, by name',
    ['variable'],
  );
  const writable = gauge(SECURITY_METRICS.writable, '1 when this process may write to the place', [
    'place',
    'path',
  ]);
  const shell = gauge(SECURITY_METRICS.shell, 'Shells this process could exec, one series each', ['path']);
  const modules = gauge(
    SECURITY_METRICS.codeModules,
    'Modules of code loaded in this address space, by origin',
    ['origin'],
  );
  const codeBytes = gauge(
    SECURITY_METRICS.codeBytes,
    'Bytes of code loaded in this address space, by origin',
    ['origin'],
  );
  const npmPackages = gauge(
    SECURITY_METRICS.npmPackages,
    'npm packages with code loaded in this address space',
  );
  const bundled = gauge(
    SECURITY_METRICS.codeBundled,
    '1 when the code is one bundle, counted from its build metafile',
  );
  const imageFiles = gauge(SECURITY_METRICS.imageFiles, "Files in the container image's root filesystem", [
    'image',
  ]);
  const imageBytes = gauge(SECURITY_METRICS.imageBytes, "Bytes of the container image's root filesystem", [
    'image',
  ]);

  /** Each part on its own: one that fails (no /proc, no inspector) leaves its gauges out, never /metrics. */
  async function measure(): Promise<void> {
    await Promise.allSettled([measureProcess(), measureCode(), measureImage()]);
  }

  async function measureProcess(): Promise<void> {
    for (const place of checked) writable.set(place, mayWrite(place.path) ? 1 : 0);
    shell.reset();
    for (const file of SHELL_PATHS.filter((file) => existsSync(file))) shell.set({ path: file }, 1);
    const facts = inspectProcess('self', dataRoot);
    pid.set(facts.pid);
    uid.set(facts.uid);
    capability.reset();
    for (const name of facts.capabilities) capability.set({ name }, 1);
    noNewPrivs.set(facts.noNewPrivs ? 1 : 0);
    threads.set(facts.threads);
    openFds.set(facts.openFds);
    sockets.set(facts.listeningSockets);
    regular.set(facts.openRegularFiles);
    if (facts.openDataFiles !== undefined) dataFiles?.set(facts.openDataFiles);
    credential.reset();
    for (const variable of facts.credentials) credential.set({ variable }, 1);
  }

  async function measureCode(): Promise<void> {
    const inventory = await code.get();
    for (const origin of ['own', 'npm', 'node'] as const) {
      modules.set({ origin }, inventory[origin].modules);
      codeBytes.set({ origin }, inventory[origin].bytes);
    }
    npmPackages.set(inventory.npm.packages);
    bundled.set(inventory.bundled ? 1 : 0);
  }

  async function measureImage(): Promise<void> {
    if (!image || !imageName) return;
    const counted = await image;
    imageFiles.set({ image: imageName }, counted.files);
    imageBytes.set({ image: imageName }, counted.bytes);
  }
}

type Sample = { name: string; labels: Record<string, string>; value: number };

/** The `kstyles_security_*` samples of a Prometheus text exposition. */
function securitySamples(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const match = /^(kstyles_security_\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[key!] = value!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The facts the gauges carry, read back from a /metrics text; undefined when it has none of them. */
export function securityFactsOf(text: string): SecurityFacts | undefined {
  const samples = securitySamples(text);
  const one = (name: string) => samples.find((s) => s.name === name)?.value;
  const all = (name: string) => samples.filter((s) => s.name === name);
  const uid = one(SECURITY_METRICS.uid);
  if (uid === undefined) return undefined;
  const byOrigin = (origin: string) => ({
    modules: all(SECURITY_METRICS.codeModules).find((s) => s.labels['origin'] === origin)?.value ?? 0,
    bytes: all(SECURITY_METRICS.codeBytes).find((s) => s.labels['origin'] === origin)?.value ?? 0,
  });
  const imageFiles = all(SECURITY_METRICS.imageFiles)[0];
  const facts: SecurityFacts = {
    pid: one(SECURITY_METRICS.pid) ?? -1,
    uid,
    capabilities: all(SECURITY_METRICS.capability)
      .filter((s) => s.value === 1)
      .map((s) => s.labels['name']!),
    noNewPrivs: one(SECURITY_METRICS.noNewPrivs) === 1,
    threads: one(SECURITY_METRICS.threads) ?? 0,
    openFds: one(SECURITY_METRICS.openFds) ?? 0,
    listeningSockets: one(SECURITY_METRICS.listeningSockets) ?? 0,
    openRegularFiles: one(SECURITY_METRICS.openRegularFiles) ?? 0,
    ...(one(SECURITY_METRICS.openDataFiles) !== undefined
      ? { openDataFiles: one(SECURITY_METRICS.openDataFiles)! }
      : {}),
    credentials: all(SECURITY_METRICS.credential)
      .filter((s) => s.value === 1)
      .map((s) => s.labels['variable']!)
      .sort(),
    writable: all(SECURITY_METRICS.writable).map((s) => ({
      place: s.labels['place'] as Place,
      path: s.labels['path']!,
      writable: s.value === 1,
    })),
    shells: all(SECURITY_METRICS.shell)
      .filter((s) => s.value === 1)
      .map((s) => s.labels['path']!),
  };
  if (all(SECURITY_METRICS.codeModules).length > 0) {
    facts.code = {
      own: byOrigin('own'),
      npm: { ...byOrigin('npm'), packages: one(SECURITY_METRICS.npmPackages) ?? 0 },
      node: byOrigin('node'),
      bundled: one(SECURITY_METRICS.codeBundled) === 1,
    };
  }
  if (imageFiles) {
    const name = imageFiles.labels['image']!;
    const bytes = all(SECURITY_METRICS.imageBytes).find((s) => s.labels['image'] === name)?.value ?? 0;
    facts.image = { name, files: imageFiles.value, bytes };
  }
  return facts;
}
