#!/usr/bin/env node
// First-run set-up behind `npm test`, `npm run demo` and `npm run bench`: installs npm dependencies when
// they are missing or stale and makes sure a nats-server binary exists. Plain JavaScript with no
// dependencies, because it runs before anything is installed.
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const quiet = process.argv.includes('--quiet');
const say = (message) => process.stderr.write(`setup: ${message}\n`);
const root = new URL('..', import.meta.url).pathname;

function fail(message) {
  process.stderr.write(`\nsetup failed: ${message}\n`);
  process.exit(1);
}

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) {
  fail(
    `Node ${process.versions.node} is too old: kernel-styles needs Node 20.19 or newer (https://nodejs.org).`,
  );
}

const lock = join(root, 'package-lock.json');
const installed = join(root, 'node_modules', '.package-lock.json');
if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs) {
  say('installing npm dependencies (npm ci)…');
  const result = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) fail('npm ci failed; see the output above (is the npm registry reachable?).');
}

export function findExecutable(name, extraDirs = []) {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), ...extraDirs];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return null;
}

const natsDirs = ['/usr/sbin', '/usr/local/sbin', '/usr/local/bin', '/usr/bin'];
let nats = process.env.NATS_SERVER_BIN || findExecutable('nats-server', natsDirs);
if (!nats) {
  const isRoot = process.getuid?.() === 0;
  const hasApt = findExecutable('apt-get', ['/usr/bin']) !== null;
  if (isRoot && hasApt) {
    say('nats-server not found: installing it with apt-get (Debian/Ubuntu package nats-server)…');
    try {
      execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
      execFileSync('apt-get', ['install', '-y', '-qq', 'nats-server'], {
        stdio: 'inherit',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
    } catch {
      fail('apt-get could not install nats-server; install it by hand (see below) and run this again.');
    }
    nats = findExecutable('nats-server', natsDirs);
  }
  if (!nats) {
    fail(
      'the microkernel needs a nats-server binary (2.9 or newer) and none was found.\n' +
        '  Debian/Ubuntu: sudo apt-get install nats-server\n' +
        '  macOS:         brew install nats-server\n' +
        '  anywhere:      a release binary from the nats-server project, on PATH or named by NATS_SERVER_BIN',
    );
  }
}
if (!quiet) say(`ready: node ${process.versions.node}, nats-server at ${nats}`);
