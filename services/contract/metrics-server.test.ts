import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Registry } from 'prom-client';
import { reachableUrl } from './http-server.ts';
import { serveMetricsEndpoint } from './metrics-server.ts';

describe('the /metrics endpoint', () => {
  it('answers GET and HEAD on /metrics, 405 for other methods, 404 elsewhere', async (t) => {
    const registry = new Registry();
    new Counter({ name: 'kstyles_test_total', help: 'a test counter', registers: [registry] }).inc(3);
    const endpoint = await serveMetricsEndpoint(registry, 0);
    t.after(() => endpoint.close());
    assert.equal(endpoint.url, `http://127.0.0.1:${endpoint.port}/metrics`);

    const get = await fetch(endpoint.url);
    assert.equal(get.status, 200);
    assert.match(await get.text(), /^kstyles_test_total 3$/m);
    const head = await fetch(endpoint.url, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
    const post = await fetch(endpoint.url, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    await post.text();
    const other = await fetch(`http://127.0.0.1:${endpoint.port}/other`);
    assert.equal(other.status, 404);
    await other.text();
  });

  it('answers a status route beside /metrics with the status and text it computes at each request', async (t) => {
    let started = false;
    const endpoint = await serveMetricsEndpoint(new Registry(), 0, {
      routes: {
        '/started': () =>
          started ? { status: 200, text: 'started\n' } : { status: 503, text: 'starting\n' },
      },
    });
    t.after(() => endpoint.close());
    const url = `http://127.0.0.1:${endpoint.port}/started`;
    const before = await fetch(url);
    assert.equal(before.status, 503);
    assert.equal(await before.text(), 'starting\n');
    started = true;
    const after = await fetch(url);
    assert.equal(after.status, 200);
    assert.equal(await after.text(), 'started\n');
    const post = await fetch(url, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.match(await post.text(), /use GET \/started/);
    const other = await fetch(`http://127.0.0.1:${endpoint.port}/other`);
    assert.equal(other.status, 404);
    assert.match(await other.text(), /serves only GET \/metrics, \/started/);
  });

  it('names the port and the flag when the port is taken', async (t) => {
    const first = await serveMetricsEndpoint(new Registry(), 0);
    t.after(() => first.close());
    await assert.rejects(
      serveMetricsEndpoint(new Registry(), first.port, { flag: '--metrics-port' }),
      new RegExp(`port ${first.port} on 127\\.0\\.0\\.1 is already in use: .* --metrics-port`),
    );
  });
});

describe('reachableUrl', () => {
  it('turns wildcard addresses into loopback and brackets IPv6', () => {
    assert.equal(reachableUrl('0.0.0.0', 80), 'http://127.0.0.1:80');
    assert.equal(reachableUrl('::', 80, '/metrics'), 'http://[::1]:80/metrics');
    assert.equal(reachableUrl('::1', 8081), 'http://[::1]:8081');
    assert.equal(reachableUrl('10.0.0.7', 8082, '/healthz'), 'http://10.0.0.7:8082/healthz');
  });
});
