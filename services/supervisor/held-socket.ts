/**
 * A listening socket that outlives the child serving it (systemd socket activation, inetd): the
 * supervisor binds the TCP address once and hands the socket to every incarnation of the child as file
 * descriptor 3. The child's listen(2) puts it in the listening state; when the child dies the
 * supervisor's descriptor keeps it there, so the kernel goes on completing handshakes and queueing
 * connections until the next incarnation accepts them. A restart then refuses no connection; only
 * the requests in flight on the dead child are lost.
 *
 * The supervisor only binds, never listens or accepts: a listening handle in its own event loop would
 * take connections from the child.
 */
import net from 'node:net';
import { getSystemErrorName } from 'node:util';
import { ProcessError, ProcessErrorCode } from '../contract/errors.ts';

/** Set in the child's environment when fd `LISTEN_FD` is its listening socket. */
export const LISTEN_FD_ENV = 'KSTYLES_LISTEN_FD';
/** The first descriptor after stdin, stdout and stderr, as in systemd's SD_LISTEN_FDS_START. */
export const LISTEN_FD = 3;

/** The TCP socket of a child spec cannot be bound: names the address and what to do. */
export class SocketBindError extends ProcessError {
  override readonly name = 'SocketBindError';
  readonly code = ProcessErrorCode.PORT_IN_USE;
}

export type HeldSocket = {
  host: string;
  port: number;
  /** The supervisor's descriptor, passed to each incarnation as fd LISTEN_FD. */
  fd: number;
  close(): void;
};

/** Node's bound-but-not-listening TCP handle (what its cluster module shares with workers). */
type TcpHandle = { fd: number; close(): void; getsockname(out: object): number };
type CreateServerHandle = (address: string, port: number, addressType: 4 | 6) => TcpHandle | number;

/** Binds host:port (an IP literal) without listening. Throws SocketBindError naming the address. */
export function holdSocket(host: string, port: number, owner: string): HeldSocket {
  const create = (net as unknown as { _createServerHandle?: CreateServerHandle })._createServerHandle;
  const shown = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  if (typeof create !== 'function') {
    throw new SocketBindError(
      `cannot hold the socket ${shown} of '${owner}': this Node.js (${process.version}) has no net._createServerHandle; run it on Node 20-26 or drop the child's 'socket'`,
    );
  }
  const created = create(host, port, net.isIPv6(host) ? 6 : 4);
  // libuv reports a failed bind late (at listen, or here at getsockname), not from the bind call.
  const failure = typeof created === 'number' ? created : created.getsockname({});
  if (typeof created !== 'number' && failure < 0) created.close();
  if (failure < 0) {
    const code = getSystemErrorName(failure);
    const what =
      code === 'EADDRINUSE'
        ? 'the address is already in use: stop what holds it (another supervisor? see kstyles ps) or choose another port'
        : code === 'EADDRNOTAVAIL'
          ? 'this machine has no such address'
          : code === 'EACCES'
            ? 'no permission: choose a port above 1023'
            : 'the system refused it';
    throw new SocketBindError(`cannot bind ${shown} for '${owner}' (${code}): ${what}`);
  }
  const handle = created as TcpHandle;
  if (typeof handle.fd !== 'number' || handle.fd < 0) {
    handle.close();
    throw new SocketBindError(
      `cannot hold the socket ${shown} of '${owner}': it has no file descriptor to hand over (${process.platform} is not supported)`,
    );
  }
  return { host, port, fd: handle.fd, close: () => handle.close() };
}

/** In a supervised child: the descriptor of the listening socket its supervisor holds, if any. */
export function inheritedListenFd(env: NodeJS.ProcessEnv = process.env): number | undefined {
  return env[LISTEN_FD_ENV] === String(LISTEN_FD) ? LISTEN_FD : undefined;
}
