/** How a page folds the console's pushes into its state (applyUpdate): pure data, no browser needed. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { emptyOutcomeCounts } from '../../load/types.ts';
import type { LiveSecond } from './live-load.ts';
import { applyUpdate, type ConsoleDelta, type ConsoleState } from './render.ts';
import type { TreeSnapshot } from './supervisor-watch.ts';

const second = (target: string, at: number): LiveSecond => ({
  target,
  at,
  t: 0,
  sent: 1,
  outcomes: { ...emptyOutcomeCounts(), ok: 1 },
  p50: 1000,
  p90: 1000,
  p99: 1000,
  max: 1000,
});

const tree: TreeSnapshot = { id: 'lab', readAt: 1, status: null };
const load = (startedAt: number) => ({ rate: 10, mix: 'small=1', startedAt });

function stateWith(seconds: number[], startedAt: number | null): ConsoleState {
  return {
    now: 0,
    load: startedAt === null ? null : load(startedAt),
    seconds: { monolith: seconds.map((at) => second('monolith', at)), microkernel: [], unikernel: [] },
    totals: {},
    trees: [tree],
    events: [],
    faults: [],
  };
}

function delta(seconds: number[], startedAt: number | null, extra: Partial<ConsoleDelta> = {}): ConsoleDelta {
  return {
    now: 9,
    load: startedAt === null ? null : load(startedAt),
    totals: {},
    faults: [],
    seconds: { monolith: seconds.map((at) => second('monolith', at)) },
    keep: 3,
    ...extra,
  };
}

const ats = (state: ConsoleState) => state.seconds['monolith']!.map((s) => s.at);

describe('applyUpdate', () => {
  it('a full update replaces the state', () => {
    const full = stateWith([5], 1);
    assert.equal(applyUpdate(stateWith([1, 2], 1), { full: true, state: full }), full);
  });

  it('appends only seconds newer than the last one it has, and keeps the last `keep`', () => {
    const next = applyUpdate(stateWith([1000, 2000], 1), {
      full: false,
      delta: delta([2000, 3000, 4000], 1),
    });
    assert.deepEqual(ats(next), [2000, 3000, 4000]);
    assert.equal(next.now, 9);
  });

  it('a new run of the load starts the charts afresh; a stopped load keeps them', () => {
    const stopped = applyUpdate(stateWith([1000, 2000], 1), { full: false, delta: delta([], null) });
    assert.deepEqual(ats(stopped), [1000, 2000]);
    const restarted = applyUpdate(stopped, { full: false, delta: delta([9000], 7) });
    assert.deepEqual(ats(restarted), [9000]);
  });

  it('keeps the trees and events when an update leaves them out, takes them when it carries them', () => {
    const kept = applyUpdate(stateWith([], 1), { full: false, delta: delta([], 1) });
    assert.deepEqual(kept.trees, [tree]);
    const other: TreeSnapshot = { id: 'microkernel', readAt: 2, status: null };
    const taken = applyUpdate(kept, { full: false, delta: delta([], 1, { trees: [other], events: [] }) });
    assert.deepEqual(taken.trees, [other]);
  });
});
