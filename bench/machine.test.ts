import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeMachine } from './machine.ts';

describe('describeMachine', () => {
  it('has every field, filled from this machine', async () => {
    const m = await describeMachine();
    assert.ok(Number.isInteger(m.cores) && m.cores >= 1);
    assert.equal(typeof m.cpuModel, 'string');
    assert.ok(m.cpuModel.length > 0);
    assert.ok(m.memoryBytes > 0);
    assert.equal(m.node, process.version);
    assert.match(m.os, /\S+ \S+ \S+/);
    assert.equal(m.loadAverage.length, 3);
    assert.ok(m.cpuPressure === null || (m.cpuPressure >= 0 && m.cpuPressure <= 1));
    for (const key of ['natsServer', 'nginx'] as const) {
      assert.ok(m[key] === null || (typeof m[key] === 'string' && m[key].length > 0), key);
    }
  });

  it('reports a missing binary as null rather than failing', async () => {
    const m = await describeMachine({ nats: '/nonexistent/nats-server', nginx: '/nonexistent/nginx' });
    assert.equal(m.natsServer, null);
    assert.equal(m.nginx, null);
  });
});
