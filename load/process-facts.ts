/**
 * What a running process exposes and holds, read from /proc (Linux) as any observer on the machine
 * would: its uid, how many file descriptors it has open, and how many TCP sockets it listens on. These
 * are the measured part of the report's Security row for the process that parses requests.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export type ProcessFacts = {
  pid: number;
  /** Effective uid (0 = root). */
  uid: number;
  openFds: number;
  /** TCP sockets of this process in LISTEN state (IPv4 and IPv6). */
  listeningSockets: number;
};

/** TCP state 0A is LISTEN in /proc/net/tcp{,6}. */
const TCP_LISTEN = '0A';

/** The inodes of the sockets in LISTEN state in one /proc/<pid>/net/tcp{,6} table. */
function listeningInodes(table: string): Set<string> {
  const inodes = new Set<string>();
  for (const line of table.split('\n').slice(1)) {
    const columns = line.trim().split(/\s+/);
    if (columns[3] === TCP_LISTEN && columns[9]) inodes.add(columns[9]);
  }
  return inodes;
}

/** Reads the facts of `pid`; throws (ENOENT, EACCES) when the process is gone or not ours to inspect. */
export function processFacts(pid: number): ProcessFacts {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const uidLine = /^Uid:\s+(\d+)\s+(\d+)/m.exec(status);
  const fdDir = `/proc/${pid}/fd`;
  const socketInodes = new Set<string>();
  const fds = readdirSync(fdDir);
  for (const fd of fds) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`${fdDir}/${fd}`));
      if (match) socketInodes.add(match[1]!);
    } catch {
      // Closed between the listing and the read.
    }
  }
  let listeningSockets = 0;
  for (const table of ['tcp', 'tcp6']) {
    let text = '';
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue; // No IPv6 in this kernel or namespace.
    }
    for (const inode of listeningInodes(text)) if (socketInodes.has(inode)) listeningSockets++;
  }
  return { pid, uid: Number(uidLine?.[2] ?? -1), openFds: fds.length, listeningSockets };
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** Port → inode of a TCP socket listening on it, from one /proc/<pid>/net/tcp{,6} table. */
function listenerInode(table: string, port: number): string | undefined {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const line of table.split('\n').slice(1)) {
    const columns = line.trim().split(/\s+/);
    if (columns[3] === TCP_LISTEN && columns[1]?.endsWith(`:${hexPort}`)) return columns[9];
  }
  return undefined;
}

/**
 * The facts of the process listening on a loopback URL's port on this machine; undefined when the
 * URL is not on loopback, nobody here listens on it, or the listener is a container engine's port
 * proxy (the parser then runs in a container, out of this view).
 */
export function listenerFacts(url: string): ProcessFacts | undefined {
  if (process.platform !== 'linux') return undefined;
  const parsed = new URL(url);
  if (!LOOPBACK.has(parsed.hostname)) return undefined;
  const port = Number(parsed.port || (parsed.protocol === 'https:' ? 443 : 80));
  let inode: string | undefined;
  for (const table of ['tcp', 'tcp6']) {
    try {
      inode ??= listenerInode(readFileSync(`/proc/self/net/${table}`, 'utf8'), port);
    } catch {
      // No such table here.
    }
  }
  if (!inode) return undefined;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue; // Gone, or not ours to inspect.
    }
    for (const fd of fds) {
      let target = '';
      try {
        target = readlinkSync(`/proc/${entry}/fd/${fd}`);
      } catch {
        continue;
      }
      if (target !== `socket:[${inode}]`) continue;
      const comm = readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
      if (comm === 'docker-proxy') return undefined;
      try {
        return processFacts(Number(entry));
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}
