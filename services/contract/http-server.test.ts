import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort, reachableUrl } from './http-server.ts';

test('freePort never hands out the same port twice in one process', async () => {
  // A NATS node asks for its client, monitor and route ports before binding any; the kernel may offer a
  // just-closed port again (seen in CI: one node's monitor and route got the same port).
  const ports = [];
  for (let i = 0; i < 300; i++) ports.push(await freePort());
  assert.equal(new Set(ports).size, ports.length);
  for (const port of ports) assert.ok(port > 0 && port < 65536, String(port));
});

test('reachableUrl turns wildcard addresses into loopback and brackets IPv6', () => {
  assert.equal(reachableUrl('0.0.0.0', 8081, '/healthz'), 'http://127.0.0.1:8081/healthz');
  assert.equal(reachableUrl('::', 8082), 'http://[::1]:8082');
  assert.equal(reachableUrl('127.0.0.1', 8083), 'http://127.0.0.1:8083');
});
