#!/usr/bin/env node
// Runs node's test runner through tsx over the project's test files. Node 20's runner takes paths, not
// globs, so the files are listed here: unit tests beside the code and cross-style tests in test/; the
// container tier (test/containers) only with --containers.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const containers = process.argv.includes('--containers');
const roots = containers
  ? ['test/containers']
  : ['cli', 'services', 'monolith', 'unikernel', 'load', 'lab', 'deploy', 'bench', 'test'];

function collect(dir, files) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return files;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name === 'node_modules' || entry.name === 'dist') continue;
      if (!containers && relative(root, path) === join('test', 'containers')) continue;
      collect(path, files);
    } else if (entry.name.endsWith('.test.ts')) {
      files.push(relative(root, path));
    }
  }
  return files;
}

const files = roots.flatMap((dir) => collect(join(root, dir), [])).sort();
if (files.length === 0) {
  process.stderr.write(`no test files found under ${roots.join(', ')}\n`);
  process.exit(1);
}
const extra = process.argv.slice(2).filter((arg) => arg !== '--containers');
// Node 20 applies --test-timeout to a whole file; fresh image builds on the vfs driver take minutes.
const timeout = containers ? 1_500_000 : 300_000;
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', `--test-timeout=${timeout}`, ...extra, ...files],
  { cwd: root, stdio: 'inherit' },
);
process.exit(result.status ?? 1);
