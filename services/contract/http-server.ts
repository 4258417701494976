/** Starting and stopping an HTTP server the same way in every style. */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { type AddressInfo, createServer, isIPv6 } from 'node:net';
import { PortInUseError } from './errors.ts';

/** Ports freePort has handed out in this process: none is handed out twice. */
const handedOut = new Set<number>();

/** The lowest port freePort picks from; it picks below the kernel's ephemeral range. */
const FREE_PORT_FLOOR = 20_000;

/** The first port of the kernel's ephemeral range (where listen(0) and outgoing connections take theirs). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low)) return low;
  } catch {
    // Not Linux: the range IANA assigns to ephemeral ports.
  }
  return 49_152;
}

/** Binds 127.0.0.1:port (0: the OS picks) and releases it at once; the port bound, or null if it could not be. */
async function bindLoopback(port: number): Promise<number | null> {
  const server = createServer();
  server.listen(port, '127.0.0.1');
  try {
    await once(server, 'listening');
  } catch {
    return null;
  }
  const bound = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return bound;
}

/**
 * A free loopback port for a child told where to listen: a random one between FREE_PORT_FLOOR and the
 * kernel's ephemeral range, tried by binding it. Not one from the ephemeral range (what listen(0)
 * hands out): every outgoing connection on the machine takes its local port from there, and one took a
 * port handed out here before the child could bind it (seen in CI: nats-server's "address already in
 * use" while other tests ran). Where no room is left below that range, the OS picks.
 */
export async function freePort(): Promise<number> {
  const room = ephemeralLow() - FREE_PORT_FLOOR;
  for (let attempt = 0; room >= 1000 && attempt < 100; attempt++) {
    const port = FREE_PORT_FLOOR + Math.floor(Math.random() * room);
    if (!handedOut.has(port) && (await bindLoopback(port)) !== null) {
      handedOut.add(port);
      return port;
    }
  }
  for (;;) {
    const port = await bindLoopback(0);
    if (port === null) throw new Error('no port can be bound on 127.0.0.1: is the loopback interface up?');
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

/**
 * Fails with a PortInUseError naming `label`, the flag that sets the port and who may hold it, unless
 * `port` can be bound on `host` now: checked before a start that would otherwise fail halfway, in a
 * child (whose supervisor would restart it into the same wall) or after other ports were taken.
 */
export async function assertPortFree(
  port: number,
  label: string,
  options: { flag: string; holder: string; host?: string | undefined },
): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new PortInUseError(
              `port ${port} (${label}) is already in use: stop what holds it (${options.holder}) or choose another with ${options.flag}`,
            )
          : err,
      );
    });
    server.listen(port, options.host ?? '127.0.0.1', () => server.close(() => resolve()));
  });
}

/**
 * The URL at which this machine reaches a server listening on host:port: a wildcard address (0.0.0.0,
 * ::, empty) becomes its loopback, and an IPv6 address is bracketed.
 */
export function reachableUrl(host: string, port: number, path = ''): string {
  const reachable = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${isIPv6(reachable) ? `[${reachable}]` : reachable}:${port}${path}`;
}

/** Listens on host:port; a port in use becomes an error that names it and the flag that sets it. */
export async function listen(
  server: Server,
  port: number,
  host = '127.0.0.1',
  flag = '--port',
): Promise<number> {
  server.listen(port, host);
  try {
    await once(server, 'listening');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      throw new Error(
        `port ${port} on ${host} is already in use: stop what holds it or choose another with ${flag}`,
      );
    }
    if (code === 'EACCES')
      throw new Error(`no permission to listen on port ${port}: choose a port above 1023`);
    throw err;
  }
  return (server.address() as AddressInfo).port;
}

/**
 * Graceful stop: refuse new connections, let in-flight requests finish for up to `timeoutMs`, then cut
 * what is left. Resolves true when everything finished in time.
 */
export async function closeGracefully(server: Server, timeoutMs: number): Promise<boolean> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  // A keep-alive connection whose response was in flight turns idle when it finishes; without this sweep
  // it would hold the close open until keepAliveTimeout (5 s by default) ends it.
  const sweep = setInterval(() => server.closeIdleConnections(), 50);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  const finished = await Promise.race([closed.then(() => true), timedOut]);
  clearTimeout(timer);
  clearInterval(sweep);
  if (!finished) server.closeAllConnections();
  return finished;
}

/** One structured log line (JSON), the format every kstyles process writes. */
export function logLine(fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...fields })}\n`);
}
