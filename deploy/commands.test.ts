/**
 * The command lines the deployments run exist: every flag that compose and the Kubernetes manifests pass
 * to the project's programs is accepted by them (each command validates its flags even with --help), so
 * a renamed flag fails here rather than in a crash-looping container.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { REPO_ROOT as REPO } from '../cli/kit/repo.ts';
import { buildForTest } from '../unikernel/build/testing.ts';

const DEPLOY = path.join(REPO, 'deploy');

/** Compose's `${VAR:-default}` → default, as compose does with VAR unset. */
const withDefaults = (arg: string) => arg.replace(/\$\{\w+:-([^}]*)\}/g, '$1');

function acceptsFlags(args: string[], program = process.execPath): void {
  const result = spawnSync(program, [...args, '--help'], { cwd: REPO, encoding: 'utf8' });
  assert.equal(result.status, 0, `${args.join(' ')} --help exited ${result.status}: ${result.stderr}`);
}

type ComposeService = { image?: string; command?: string[]; healthcheck?: { test: string[] } };
const UNIKERNEL = path.join(REPO, 'unikernel/dist/kstyles-unikernel');
const compose = parse(readFileSync(path.join(DEPLOY, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
};

describe('commands the deployments run', () => {
  for (const [name, service] of Object.entries(compose.services)) {
    if (service.image !== 'kstyles/app:local' || !service.command) continue;
    it(`compose ${name}: kstyles ${service.command[0]} accepts its flags`, () => {
      acceptsFlags(['bin/kstyles.js', ...service.command!.map(withDefaults)]);
    });
  }

  it('compose unikernel: the program accepts its flags and its healthcheck subcommand', async (t) => {
    // The image's executable when it is built; otherwise a fresh build of it (the bundle if the
    // executable cannot be made here), so a clean clone checks the same flags.
    const [program, ...prefix] = existsSync(UNIKERNEL)
      ? [UNIKERNEL]
      : (await buildForTest('production')).command;
    t.diagnostic(`checked with ${program} ${prefix.join(' ')}`);
    const service = compose.services['unikernel']!;
    acceptsFlags([...prefix, ...service.command!.map(withDefaults)], program);
    acceptsFlags([...prefix, ...service.healthcheck!.test.slice(2)], program);
  });

  type Container = { name: string; image: string; command?: string[]; args?: string[] };
  const kustomization = parse(readFileSync(path.join(DEPLOY, 'k8s/kustomization.yaml'), 'utf8')) as {
    resources: string[];
  };
  const containers = kustomization.resources.flatMap((file) =>
    parseAllDocuments(readFileSync(path.join(DEPLOY, 'k8s', file), 'utf8')).flatMap((doc) => {
      const r = doc.toJS() as { spec?: { template?: { spec: { containers: Container[] } } } };
      return (r.spec?.template?.spec.containers ?? []).map((c) => ({ file, ...c }));
    }),
  );
  for (const c of containers.filter((c) => c.image === 'kstyles/app')) {
    it(`k8s ${c.file} ${c.name}: its command accepts its flags`, () => {
      // The image's entry point is `node bin/kstyles.js`; a `command` replaces it (node --import tsx <server>).
      const args = c.command
        ? [...c.command.slice(1), ...(c.args ?? [])]
        : ['bin/kstyles.js', ...(c.args ?? [])];
      if (c.command) assert.equal(c.command[0], '/usr/local/bin/node');
      acceptsFlags(args);
    });
  }
});
