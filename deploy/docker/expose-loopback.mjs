// Runs a Node entry point in this process after exposing some of its loopback-only ports on all
// interfaces of the container, so Prometheus (another container) can scrape them:
//
//   node deploy/docker/expose-loopback.mjs 9580=9480 [...] -- bin/kstyles.js microkernel ...
//
// Why: the microkernel's supervisor serves /metrics on 127.0.0.1 only (services/supervisor/metrics.ts).
// The relay is plain TCP; its listeners are unref()ed, so the entry point alone decides when the process
// ends, and signals reach the entry point's own handlers (same process, PID 1 of the container).
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const separator = process.argv.indexOf('--');
const pairs = separator > 2 ? process.argv.slice(2, separator) : [];
const [entry, ...rest] = separator === -1 ? [] : process.argv.slice(separator + 1);
if (!entry || pairs.length === 0 || pairs.some((pair) => !/^\d+=\d+$/.test(pair))) {
  process.stderr.write('usage: node expose-loopback.mjs LISTEN=LOOPBACK_PORT ... -- ENTRY.js [args...]\n');
  process.exit(2);
}

for (const pair of pairs) {
  const [listen, target] = pair.split('=').map(Number);
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.pipe(upstream).pipe(client);
  });
  server.on('error', (err) =>
    process.stderr.write(`expose-loopback: :${listen} → 127.0.0.1:${target}: ${err.message}\n`),
  );
  server.listen(listen, '0.0.0.0');
  server.unref();
}

const file = path.resolve(entry);
process.argv = [process.argv[0], file, ...rest];
await import(pathToFileURL(file).href);
