/**
 * IpcClient, the microkernel's request/reply multiplexer, against a real nats-server run with the
 * generated per-role permissions: every outcome it classifies, each counted in the IPC histogram.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { NatsRole } from '../microkernel/nats-config.ts';
import { type RoleNats, startRoleNats } from '../microkernel/testing/role-nats.ts';
import { createIpcMetrics, IpcClient, IpcOutcome } from './ipc.ts';
import { SUBJECTS } from './subjects.ts';

const hop = { from: 'gateway', to: 'fs', op: 'stat' };

describe('IpcClient on a real nats-server with the role permissions', () => {
  let roles: RoleNats;
  before(async () => {
    roles = await startRoleNats();
  });
  after(async () => {
    await roles?.stop();
  });
  const connectAs = (role: NatsRole) => roles.connectAs(role);

  it('classifies ok, error, no responders, timeout, abandoned and denied, and counts each', async () => {
    const registry = new Registry();
    const gateway = await connectAs('gateway');
    const fs = await connectAs('fs');
    const client = new IpcClient(gateway, createIpcMetrics(registry));

    const nobody = await client.request(hop, SUBJECTS.fsStat, 'x', { timeoutMs: 2000 }).result;
    assert.equal(nobody.outcome, IpcOutcome.noResponders);

    let answered = 0;
    const sub = fs.subscribe(SUBJECTS.fsStat, {
      callback: (_err, msg) => {
        answered++;
        const text = msg.string();
        if (text === 'silent') return;
        // Two replies to one request: the second must be ignored.
        msg.respond(`fs:${text}`);
        if (text === 'twice') msg.respond('again');
      },
    });
    await fs.flush();

    const ok = await client.request(hop, SUBJECTS.fsStat, 'bytes', { timeoutMs: 2000 }).result;
    assert.equal(ok.outcome, IpcOutcome.ok);
    assert.equal(ok.outcome === IpcOutcome.ok && ok.msg.string(), 'fs:bytes');
    const many = await Promise.all(
      Array.from(
        { length: 50 },
        (_, i) => client.request(hop, SUBJECTS.fsStat, String(i), { timeoutMs: 2000 }).result,
      ),
    );
    assert.deepEqual(
      many.map((r) => (r.outcome === IpcOutcome.ok ? r.msg.string() : r.outcome)),
      Array.from({ length: 50 }, (_, i) => `fs:${i}`),
      'each reply reaches its own request',
    );
    const twice = await client.request(hop, SUBJECTS.fsStat, 'twice', { timeoutMs: 2000 }).result;
    assert.equal(twice.outcome === IpcOutcome.ok && twice.msg.string(), 'fs:twice');

    const started = Date.now();
    const silent = await client.request(hop, SUBJECTS.fsStat, 'silent', { timeoutMs: 300 }).result;
    assert.equal(silent.outcome, IpcOutcome.timeout);
    assert.ok(Date.now() - started >= 290, 'a timeout waits the whole attempt');

    const call = client.request(hop, SUBJECTS.fsStat, 'silent', { timeoutMs: 60_000 });
    call.abandon('the instance holding it vanished');
    const abandoned = await call.result;
    assert.equal(abandoned.outcome, IpcOutcome.timeout);
    assert.match(abandoned.outcome === IpcOutcome.timeout ? abandoned.cause.message : '', /vanished/);

    // The gateway's user may not publish to a driver subject: NATS says so, and the request is denied
    // at once instead of waiting out its timeout.
    const deniedAt = Date.now();
    const denied = await client.request(hop, SUBJECTS.drvRead, '', { timeoutMs: 10_000 }).result;
    assert.equal(denied.outcome, IpcOutcome.denied);
    assert.ok(Date.now() - deniedAt < 5000, 'denied before the timeout');
    sub.unsubscribe();

    const counts = await registry.getSingleMetricAsString('kstyles_ipc_request_duration_seconds');
    const count = (outcome: string) =>
      Number(
        new RegExp(
          `kstyles_ipc_request_duration_seconds_count\\{from="gateway",to="fs",op="stat",outcome="${outcome}"\\} (\\d+)`,
        ).exec(counts)?.[1] ?? 0,
      );
    assert.equal(count('ok'), 52);
    assert.equal(count('no_responders'), 1);
    assert.equal(count('timeout'), 2);
    assert.equal(count('denied'), 1);
    assert.ok(answered >= 53);
  });

  it('fails the requests in flight as disconnected when its connection closes', async () => {
    const gateway = await connectAs('gateway');
    const fs = await connectAs('fs');
    fs.subscribe(SUBJECTS.fsStat, { callback: () => {} });
    await fs.flush();
    const client = new IpcClient(gateway);
    const pending = client.request(hop, SUBJECTS.fsStat, 'x', { timeoutMs: 60_000 }).result;
    await gateway.close();
    assert.equal((await pending).outcome, IpcOutcome.disconnected);
    const after = await client.request(hop, SUBJECTS.fsStat, 'x', { timeoutMs: 60_000 }).result;
    assert.equal(after.outcome, IpcOutcome.disconnected, 'a request on a closed connection fails at once');
  });
});
