import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT as REPO } from '../../cli/kit/repo.ts';
import { ERRORS, ErrorCode, PROCESS_ERRORS, ProcessErrorCode } from './errors.ts';

/** The rows of the README's error table (section "The HTTP contract"): code → status. */
function readmeErrorTable(): Map<string, number> {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const section = readme.split(/^## /m).find((s) => s.startsWith('The HTTP contract'));
  assert.ok(section, 'README.md has a section "The HTTP contract"');
  const rows = new Map<string, number>();
  for (const [, code, status] of section.matchAll(/^\| `([A-Z_]+)` \| (\d{3})\b[^|]*\|/gm)) {
    assert.ok(!rows.has(code!), `README lists ${code} twice`);
    rows.set(code!, Number(status));
  }
  return rows;
}

describe('the error registry', () => {
  it('has unique codes across HTTP and process errors, each registered with its status or exit code', () => {
    const http = Object.values(ErrorCode);
    const process = Object.values(ProcessErrorCode);
    assert.equal(new Set([...http, ...process]).size, http.length + process.length);
    for (const code of http) assert.ok(ERRORS[code].status >= 400 && ERRORS[code].status < 600, code);
    for (const code of process) assert.ok(PROCESS_ERRORS[code].exitCode > 0, code);
    const statuses = http.map((code) => ERRORS[code].status);
    assert.equal(new Set(statuses).size, statuses.length, 'one code per HTTP status');
  });

  it('gives every error class in the tree a registered code', async () => {
    const files = execFileSync('git', ['grep', '-l', '-E', 'class \\w+ extends \\w*Error\\b', '--', '*.ts'], {
      cwd: REPO,
      encoding: 'utf8',
    })
      .split('\n')
      // The test harness (test/, */testing/) reports to the developer running the suite, never to a user.
      .filter((f) => f && !f.endsWith('.test.ts') && !f.includes('/testing/') && !f.startsWith('test/'));
    const seen = new Set<string>();
    for (const file of files) {
      const mod = (await import(join(REPO, file))) as Record<string, unknown>;
      for (const [name, value] of Object.entries(mod)) {
        if (typeof value !== 'function' || !(value.prototype instanceof Error)) continue;
        if (name === 'ServiceError' || name === 'ProcessError') continue;
        const code = (Reflect.construct(value, ['probe', 0]) as { code?: unknown }).code;
        const registered =
          typeof code === 'string' && (Object.hasOwn(ERRORS, code) || Object.hasOwn(PROCESS_ERRORS, code));
        assert.ok(registered, `${file}: ${name} carries no registered code (got ${String(code)})`);
        seen.add(name);
      }
    }
    assert.ok(seen.has('UsageError') && seen.has('NotFoundError') && seen.has('PortInUseError'));
  });

  it("matches the README's error table exactly", () => {
    const table = readmeErrorTable();
    const registry = new Map(Object.values(ErrorCode).map((code) => [code, ERRORS[code].status]));
    assert.deepEqual([...table].sort(), [...registry].sort());
  });
});
