import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { summariseProfile } from './profile.ts';

const frame = (functionName: string, url = 'file:///app/x.js', lineNumber = 9) => ({
  functionName,
  url,
  lineNumber,
});

describe('summariseProfile', () => {
  // Samples every 1 ms: node 2 (hot) 3 times, node 3 twice, idle twice; hot appears at two call sites.
  const profile = {
    nodes: [
      { id: 1, callFrame: frame('(root)', '') },
      { id: 2, callFrame: frame('hot') },
      { id: 3, callFrame: frame('warm', 'file:///app/node_modules/lib/y.js', 0) },
      { id: 4, callFrame: frame('(idle)', '') },
      { id: 5, callFrame: frame('hot') },
    ],
    samples: [2, 3, 4, 2, 3, 4, 5, 2],
    timeDeltas: [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000],
    startTime: 0,
    endTime: 8000,
  };

  it('adds self time per function over call sites and leaves idle out of the shares', () => {
    const s = summariseProfile(profile);
    assert.equal(s.idleMs, 2);
    assert.equal(s.top[0]!.name, 'hot');
    assert.equal(s.top[0]!.where, '/app/x.js:10');
    assert.equal(s.top[0]!.selfMs, 3);
    assert.equal(s.top[1]!.name, 'warm');
    assert.equal(s.top[1]!.where, 'node_modules/lib/y.js:1');
    assert.equal(s.top[1]!.selfMs, 2);
    assert.ok(Math.abs(s.top[0]!.share - 0.6) < 1e-9);
  });

  it('leaves out the start-up samples it is asked to skip', () => {
    const s = summariseProfile(profile, 15, 4);
    // Samples from 4 ms on: hot 1 ms, warm 1 ms, idle 1 ms, hot 1 ms, hot (last: no next delta) 0 ms.
    assert.deepEqual(
      s.top.map((e) => [e.name, e.selfMs]),
      [
        ['hot', 2],
        ['warm', 1],
      ],
    );
    assert.equal(s.idleMs, 1);
  });
});
