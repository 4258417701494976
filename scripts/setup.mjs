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

/**
 * The binary `name` (searched on PATH and in `dirs`), installed with apt-get as root on Debian/Ubuntu
 * when missing; otherwise fails with `hint`, which says how to install it by hand.
 */
function ensureBinary({ name, override, dirs, aptPackage, purpose, hint }) {
  let found = override || findExecutable(name, dirs);
  if (found) return found;
  const isRoot = process.getuid?.() === 0;
  const hasApt = findExecutable('apt-get', ['/usr/bin']) !== null;
  if (isRoot && hasApt) {
    say(`${name} not found: installing it with apt-get (Debian/Ubuntu package ${aptPackage})…`);
    try {
      execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
      execFileSync('apt-get', ['install', '-y', '-qq', aptPackage], {
        stdio: 'inherit',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
    } catch {
      fail(
        `apt-get could not install ${aptPackage}; install it by hand (see below) and run this again.\n${hint}`,
      );
    }
    found = findExecutable(name, dirs);
  }
  if (!found) fail(`${purpose} and none was found.\n${hint}`);
  return found;
}

const nats = ensureBinary({
  name: 'nats-server',
  override: process.env.NATS_SERVER_BIN,
  dirs: ['/usr/sbin', '/usr/local/sbin', '/usr/local/bin', '/usr/bin'],
  aptPackage: 'nats-server',
  purpose: 'the microkernel needs a nats-server binary (2.9 or newer)',
  hint:
    '  Debian/Ubuntu: sudo apt-get install nats-server\n' +
    '  macOS:         brew install nats-server\n' +
    '  anywhere:      a release binary from the nats-server project, on PATH or named by NATS_SERVER_BIN',
});
// The console's browser tests (lab/console/browser.ts) drive Debian's Chromium, or KSTYLES_CHROMIUM.
const chromium = ensureBinary({
  name: 'chromium',
  override: process.env.KSTYLES_CHROMIUM,
  dirs: ['/usr/bin'],
  aptPackage: 'chromium',
  purpose: "the console's browser tests need Chromium at /usr/bin/chromium",
  hint: '  Debian/Ubuntu: sudo apt-get install chromium',
});

/**
 * Tools some tests use when they are there (docker-compose validates the compose file, promtool and
 * prometheus the Prometheus config and the Grafana queries): installed like the binaries above where
 * set-up runs as root with apt-get, else left to those tests, which then say they were skipped and why.
 */
function offerBinary({ name, dirs, aptPackage }) {
  const found = findExecutable(name, dirs);
  if (found) return found;
  const isRoot = process.getuid?.() === 0;
  if (!isRoot || findExecutable('apt-get', ['/usr/bin']) === null) return null;
  say(`${name} not found: installing it with apt-get (Debian/Ubuntu package ${aptPackage})…`);
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '-qq', aptPackage], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    }).status === 0;
  // Package lists may be stale on a machine that had everything else: refresh them once, then retry.
  const installed =
    install() || (spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit' }).status === 0 && install());
  if (!installed) say(`apt-get could not install ${aptPackage}: the tests that use ${name} will say so`);
  return findExecutable(name, dirs);
}
const optional = [
  offerBinary({ name: 'docker-compose', dirs: ['/usr/bin', '/usr/local/bin'], aptPackage: 'docker-compose' }),
  offerBinary({ name: 'promtool', dirs: ['/usr/bin'], aptPackage: 'prometheus' }),
];
const optionalText = optional.filter(Boolean).join(', ') || 'none';
if (!quiet) {
  say(
    `ready: node ${process.versions.node}, nats-server at ${nats}, chromium at ${chromium}; optional tools: ${optionalText}`,
  );
}
