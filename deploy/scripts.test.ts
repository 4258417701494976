/** The deployment's helper scripts parse. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const DEPLOY = fileURLToPath(new URL('.', import.meta.url));

describe('deploy scripts', () => {
  for (const script of ['offline-bases.sh', 'ci-docker.sh']) {
    it(`${script} is valid bash`, () => {
      const result = spawnSync('bash', ['-n', path.join(DEPLOY, script)], { encoding: 'utf8' });
      assert.equal(result.status, 0, result.stderr);
    });
  }
});
