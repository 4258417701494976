import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { HttpHealthChecks } from './health.ts';

test('HTTP health checks keep their connection; a timed-out check drops it and the next opens a new one; keepAlive false opens one per check', async (t) => {
  let connections = 0;
  let stallNext = false;
  const server = http.createServer((_req, res) => {
    if (stallNext) {
      stallNext = false;
      return; // never answered: the check times out
    }
    res.end('ok');
  });
  server.on('connection', () => connections++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const checks = new HttpHealthChecks();
  t.after(() => {
    checks.close();
    server.closeAllConnections();
    server.close();
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/healthz`;
  for (let i = 0; i < 3; i++) assert.equal(await checks.check(url, 2000), true);
  assert.equal(connections, 1, 'three checks, one connection');
  stallNext = true;
  assert.equal(await checks.check(url, 200), false);
  assert.equal(await checks.check(url, 2000), true);
  assert.equal(connections, 2, 'the check after a timeout opened a new connection');
  const fresh = new HttpHealthChecks({ keepAlive: false });
  t.after(() => fresh.close());
  for (let i = 0; i < 2; i++) assert.equal(await fresh.check(url, 2000), true);
  assert.equal(connections, 4, 'without keepAlive, a connection per check');
});
