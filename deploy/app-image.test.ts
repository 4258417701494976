/**
 * The app image (deploy/docker/app.Dockerfile) copies folders of the repository and installs only the
 * production dependencies: every module the compose services load from it must be in those folders, and
 * every package they import a production dependency. Checked over the real import graph, without Docker
 * (the container tier runs the image).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../cli/kit/repo.ts';
import { importGraph } from '../test/boundaries.ts';
import { appImageSources } from './app-image.ts';

/** The folders the image copies, with a trailing slash. */
function copiedFolders(): string[] {
  return appImageSources()
    .filter((source) => !source.includes('.'))
    .map((folder) => `${folder}/`);
}

const productionPackages = (): Set<string> => {
  const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  return new Set(Object.keys(pkg.dependencies));
};

describe('the app image', () => {
  const graph = importGraph(REPO_ROOT);

  /** Every local module and package reachable from the roots (the entry's own lazy commands excluded). */
  function closure(roots: string[]): { files: Set<string>; packages: Set<string> } {
    const files = new Set<string>();
    const packages = new Set<string>();
    const queue = [...roots];
    while (queue.length > 0) {
      const file = queue.shift()!;
      if (files.has(file)) continue;
      files.add(file);
      const node = graph.get(file);
      assert.ok(node, `${file} is in the tree`);
      for (const p of node.packages) packages.add(p);
      // cli/main.ts loads every command lazily: follow only the commands the roots name.
      if (file !== 'cli/main.ts') queue.push(...node.locals);
    }
    return { files, packages };
  }

  it('holds everything `kstyles console` loads, and the page bundle it builds at start', () => {
    const { files, packages } = closure([
      'bin/kstyles.js',
      'cli/main.ts',
      'lab/console/console-cli.ts',
      'lab/console/page.ts',
    ]);
    const folders = copiedFolders();
    assert.ok(folders.includes('lab/'), `the image copies lab/ (copies: ${folders.join(', ')})`);
    const missing = [...files].filter((f) => !folders.some((dir) => f.startsWith(dir)));
    assert.deepEqual(missing, [], 'modules outside the folders the image copies');
    const production = productionPackages();
    const notInstalled = [...packages].filter((p) => !p.startsWith('node:') && !production.has(p));
    assert.deepEqual(notInstalled, [], 'packages that npm ci --omit=dev does not install');
    assert.ok(packages.has('esbuild') && packages.has('uplot'), 'the console bundles its page at start');
  });
});
