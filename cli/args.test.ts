import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { intFlag, parseCommand, UsageError } from './args.ts';
import { KSTYLES_BIN as KSTYLES } from './kit/repo.ts';

const run = promisify(execFile);

const spec = {
  name: 'demo-cmd',
  summary: 's',
  usage: 'u',
  flags: {
    port: { type: 'string', env: 'T_PORT', default: '8081', description: 'p' },
    chaos: { type: 'boolean', env: 'T_CHAOS', description: 'c' },
    target: { type: 'string', multiple: true, description: 't' },
  },
} as const;

describe('parseCommand', () => {
  it('reads flags, then their environment variable, then the default', () => {
    assert.equal(parseCommand(spec, ['--port', '1'], {})?.flags.port, '1');
    assert.equal(parseCommand(spec, [], { T_PORT: '2' })?.flags.port, '2');
    assert.equal(parseCommand(spec, [], {})?.flags.port, '8081');
    assert.equal(parseCommand(spec, [], { T_CHAOS: '1' })?.flags.chaos, true);
    assert.equal(parseCommand(spec, [], { T_CHAOS: 'off' })?.flags.chaos, false);
    assert.deepEqual(parseCommand(spec, ['--target', 'a', '--target', 'b'], {})?.flags.target, ['a', 'b']);
  });

  it('names an unknown flag, a missing value, a bad boolean and a stray argument', () => {
    assert.throws(() => parseCommand(spec, ['--prot', '1'], {}), /unknown flag '--prot'/);
    assert.throws(() => parseCommand(spec, ['--port'], {}), /flag '--port' needs a value/);
    assert.throws(() => parseCommand(spec, [], { T_CHAOS: 'maybe' }), /T_CHAOS='maybe' is not a boolean/);
    assert.throws(() => parseCommand(spec, ['extra'], {}), /unexpected argument 'extra'/);
  });

  it('checks integer bounds', () => {
    assert.equal(intFlag('x', 'n', '12', 1, 20), 12);
    assert.throws(() => intFlag('x', 'n', '21', 1, 20), UsageError);
    assert.throws(() => intFlag('x', 'n', '1e3', 1, 2000), /--n must be an integer/);
  });
});

describe('kstyles entry point', () => {
  it('prints help for every built command and exits 0', async () => {
    const { stdout: overview } = await run(process.execPath, [KSTYLES, '--help']);
    const built = [...overview.matchAll(/^ {2}(\w+) +(.*)$/gm)].filter(
      (m) => !m[2]!.includes('not built yet'),
    );
    assert.ok(built.some((m) => m[1] === 'corpus'));
    const helps = await Promise.all(
      built.map(async ([, name]) => ({ name, ...(await run(process.execPath, [KSTYLES, name!, '--help'])) })),
    );
    for (const { name, stdout } of helps) {
      assert.match(stdout, new RegExp(`kstyles ${name}`));
      assert.match(stdout, /--help/);
    }
  });

  it('exits 2 naming the issue for a command that is not built yet', async () => {
    const { stdout: overview } = await run(process.execPath, [KSTYLES, '--help']);
    for (const [, name] of overview.matchAll(/^ {2}(\w+) +.*not built yet/gm)) {
      await assert.rejects(
        run(process.execPath, [KSTYLES, name!]),
        (err: { code: number; stderr: string }) => {
          assert.equal(err.code, 2);
          assert.match(err.stderr, /not built yet — it arrives with issue #\d/);
          return true;
        },
      );
    }
  });

  it('exits 2 with a message, not a stack trace, for an unknown command', async () => {
    await assert.rejects(
      run(process.execPath, [KSTYLES, 'frobnicate']),
      (err: { code: number; stderr: string }) => {
        assert.equal(err.code, 2);
        assert.match(err.stderr, /unknown command 'frobnicate'/);
        assert.doesNotMatch(err.stderr, /at .*\.ts:\d+/);
        return true;
      },
    );
  });
});
