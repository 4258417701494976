import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { UsageError } from '../args.ts';
import { requireDataDir } from './data-dir.ts';

describe('requireDataDir', () => {
  it('returns the resolved directory, and refuses a missing flag, a missing folder and a file', (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kstyles-data-dir-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(path.join(dir, 'file'), 'x');
    assert.equal(requireDataDir('monolith', path.relative(process.cwd(), dir)), dir);

    const usage = (pattern: RegExp) => (err: unknown) =>
      err instanceof UsageError && pattern.test(err.message);
    assert.throws(
      () => requireDataDir('unikernel', undefined),
      usage(/^kstyles unikernel: --data DIR \(or KSTYLES_DATA\) is required/),
    );
    const missing = path.join(dir, 'missing');
    assert.throws(
      () => requireDataDir('microkernel', missing),
      usage(
        new RegExp(
          `data directory ${missing} does not exist: create it with 'kstyles corpus --dir ${missing}'`,
        ),
      ),
    );
    assert.throws(() => requireDataDir('monolith', path.join(dir, 'file')), usage(/is not a directory/));
  });
});
