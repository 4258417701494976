/**
 * The reference points: nginx serving the same corpus (a native server's ceiling here), and the NATS
 * request/reply round trip that every microkernel hop pays.
 */

import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createHistogram, recordMicros, summarize } from '../load/histogram.ts';
import { freePort } from '../services/contract/http-server.ts';
import { NATS_SERVER_BIN, NGINX_BIN } from './machine.ts';
import { type Spawned, startProcess, waitFor200 } from './procs.ts';
import type { NatsRound } from './types.ts';

/** Why a reference cannot run here, or null when it can. */
export function missingBinary(bin: string, install: string): string | null {
  return existsSync(bin) ? null : `${bin} is not installed (${install})`;
}

/** nginx.conf for one worker on loopback, serving DATA under /files/ with sendfile, logging nothing. */
export function nginxConfig(dir: string, dataDir: string, port: number): string {
  const tmp = (name: string) => path.join(dir, name);
  return `daemon off;
worker_processes 1;
pid ${tmp('nginx.pid')};
error_log ${tmp('error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  default_type application/octet-stream;
  client_body_temp_path ${tmp('body')};
  proxy_temp_path ${tmp('proxy')};
  fastcgi_temp_path ${tmp('fastcgi')};
  uwsgi_temp_path ${tmp('uwsgi')};
  scgi_temp_path ${tmp('scgi')};
  server {
    listen 127.0.0.1:${port};
    location /files/ { alias ${path.resolve(dataDir)}/; }
    location = /readyz { return 200 "ok\\n"; }
    location = /healthz { return 200 "ok\\n"; }
  }
}
`;
}

export async function startNginx(workDir: string, dataDir: string): Promise<{ child: Spawned; url: string }> {
  const dir = path.join(workDir, 'nginx');
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const conf = path.join(dir, 'nginx.conf');
  await writeFile(conf, nginxConfig(dir, dataDir, port));
  const child = startProcess('nginx', NGINX_BIN, ['-p', dir, '-c', conf, '-e', path.join(dir, 'error.log')]);
  const url = `http://127.0.0.1:${port}`;
  await waitFor200(child, url, ['/readyz'], 10_000);
  return { child, url };
}

export const NATS_PAYLOAD_BYTES = 1024;

const ECHO_SUBJECT = 'kstyles.bench.echo';
const ECHO_RESPONDER = fileURLToPath(new URL('./nats-echo-responder.ts', import.meta.url));

/** A nats-server on loopback with an echo responder in its own process: batches of round trips on demand. */
export type NatsEcho = {
  /**
   * `count` sequential request/reply round trips (each waits for its reply), back to back, or started
   * `ratePerSecond` apart (a round trip that outlasts the gap delays the next); percentiles in µs.
   */
  roundTrips(count: number, ratePerSecond?: number): Promise<NatsRound>;
  /** The responder's process, so a test can see it is not this one. */
  responderPid: number;
  how: string;
  close(): Promise<void>;
};

/**
 * Starts a real nats-server on loopback and an echo responder in a process of its own, and warms the
 * path up. Requester and responder are separate processes, as the gateway and a file server are: a
 * responder on the requester's own event loop would be woken with it and measure less than a hop costs.
 */
export async function openNatsEcho(workDir: string, payloadBytes = NATS_PAYLOAD_BYTES): Promise<NatsEcho> {
  const port = await freePort();
  const server = startProcess('nats-server', NATS_SERVER_BIN, [
    '-a',
    '127.0.0.1',
    '-p',
    String(port),
    '--store_dir',
    path.join(workDir, 'nats'),
  ]);
  const servers = `127.0.0.1:${port}`;
  let requester: NatsConnection | null = null;
  let responder: Spawned | null = null;
  const closeAll = async () => {
    await requester?.close();
    await responder?.stop(2000);
    await server.stop(2000);
  };
  try {
    const deadline = performance.now() + 10_000;
    let nc: NatsConnection | null = null;
    while (!nc) {
      try {
        nc = await connect({ servers, timeout: 500 });
      } catch (err) {
        if (performance.now() > deadline || !server.running)
          throw new Error(
            `nats-server did not accept connections: ${(err as Error).message}\n    ${server.tail()}`,
          );
        await sleep(50);
      }
    }
    requester = nc;
    responder = startProcess('nats echo responder', process.execPath, [
      '--import',
      'tsx',
      ECHO_RESPONDER,
      servers,
      ECHO_SUBJECT,
    ]);
    const payload = new Uint8Array(payloadBytes).fill(42);
    const once = async (histogram?: ReturnType<typeof createHistogram>) => {
      const t0 = performance.now();
      const reply = await nc.request(ECHO_SUBJECT, payload, { timeout: 2000 });
      histogram && recordMicros(histogram, (performance.now() - t0) * 1000);
      if (reply.data.length !== payloadBytes)
        throw new Error(`NATS echo returned ${reply.data.length} bytes, sent ${payloadBytes}`);
    };
    // The responder answers once it has subscribed; until then a request finds no responders.
    while (true) {
      try {
        await once();
        break;
      } catch (err) {
        if (performance.now() > deadline || !responder.running)
          throw new Error(
            `the NATS echo responder did not answer: ${(err as Error).message}\n    ${responder.tail()}`,
          );
        await sleep(50);
      }
    }
    for (let i = 0; i < 200; i++) await once();
    const responderPid = responder.pid;
    return {
      responderPid,
      how: `sequential ${payloadBytes}-byte request/reply round trips (echo) through nats-server on loopback, requester and responder in two processes (@nats-io/transport-node), after 200 to warm up`,
      async roundTrips(count, ratePerSecond) {
        const histogram = createHistogram();
        try {
          const start = performance.now();
          for (let i = 0; i < count; i++) {
            if (ratePerSecond) {
              const due = start + (i * 1000) / ratePerSecond;
              const wait = due - performance.now();
              if (wait > 0) await sleep(wait);
            }
            await once(histogram);
          }
          const s = summarize(histogram);
          return { count, p50Us: s.p50, p90Us: s.p90, p99Us: s.p99, p999Us: s.p999 };
        } finally {
          histogram.destroy();
        }
      },
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
