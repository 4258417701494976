import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { UsageError } from '../../cli/args.ts';
import { CHAOS_KINDS, CHAOS_SIGNALS, parseChaosArgs } from './chaos-cli.ts';

describe('kstyles chaos arguments', () => {
  it('accepts every kind the microkernel README offers, and sends the fault menu signal', () => {
    const readme = readFileSync(new URL('../microkernel/README.md', import.meta.url), 'utf8');
    const line = /kstyles chaos microkernel:driver kill\s+# ([a-z |]+);/.exec(readme);
    assert.ok(line, 'the README shows the chaos kinds');
    const offered = line[1]!.split('|').map((kind) => kind.trim());
    assert.deepEqual(offered.sort(), [...CHAOS_KINDS].sort());
    for (const kind of offered) {
      assert.equal(parseChaosArgs(['microkernel:driver', kind]).kind, kind);
    }
    assert.equal(CHAOS_SIGNALS.slow, 'SIGUSR2');
    assert.equal(CHAOS_SIGNALS.resume, 'SIGCONT');
  });

  it('refuses an unknown kind and a malformed target with a UsageError that names them', () => {
    assert.throws(
      () => parseChaosArgs(['microkernel:driver', 'melt']),
      (err: unknown) => {
        assert.ok(err instanceof UsageError);
        assert.match(
          err.message,
          /unknown kind 'melt'; valid kinds: kill, term, hang, slow, resume, crashloop/,
        );
        return true;
      },
    );
    assert.throws(() => parseChaosArgs(['driver', 'kill']), /must be <supervisor>:<service>/);
  });
});
