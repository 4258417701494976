import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
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

test('freePort picks below the ephemeral range, where outgoing connections take their ports', async () => {
  const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
    .trim()
    .split(/\s+/)
    .map(Number);
  const ports = [];
  for (let i = 0; i < 50; i++) ports.push(await freePort());
  for (const port of ports) assert.ok(port >= 20_000 && port < low!, `${port}, ephemeral from ${low}`);
  // Each can be bound.
  for (const port of ports.slice(0, 5)) {
    const server = createServer().listen(port, '127.0.0.1');
    await once(server, 'listening');
    await new Promise((resolve) => server.close(resolve));
  }
});

test('reachableUrl turns wildcard addresses into loopback and brackets IPv6', () => {
  assert.equal(reachableUrl('0.0.0.0', 8081, '/healthz'), 'http://127.0.0.1:8081/healthz');
  assert.equal(reachableUrl('::', 8082), 'http://[::1]:8082');
  assert.equal(reachableUrl('127.0.0.1', 8083), 'http://127.0.0.1:8083');
});
