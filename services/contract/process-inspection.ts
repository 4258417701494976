/**
 * What a running process holds and may do, read from /proc (Linux) as any observer with the same uid
 * would: its uid and capabilities, its threads, its open file descriptors (listening TCP sockets and
 * regular files among them) and the credentials in its environment. A style reads it of itself for its
 * /metrics (security-metrics.ts); the load generator reads it of the process listening on a target's port.
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';

export type ProcessInspection = {
  pid: number;
  /** Effective uid (0 = root). */
  uid: number;
  /** Effective capabilities (CapEff), as the kernel's hexadecimal mask. */
  capEff: string;
  /** CapEff decoded: `cap_net_admin`, …; bits this table does not know are `cap_<bit>`. */
  capabilities: string[];
  /** The no_new_privs bit: no exec can gain privileges (setuid, file capabilities). */
  noNewPrivs: boolean;
  /** Threads of the process: every one shares its address space. */
  threads: number;
  openFds: number;
  /** TCP sockets of this process in LISTEN state (IPv4 and IPv6). */
  listeningSockets: number;
  /** Descriptors open on regular files (a data file the process reads itself, a log, …). */
  openRegularFiles: number;
  /** Of those, the ones under the data root asked about: the process reads that data itself. */
  openDataFiles?: number;
  /** Names of the environment variables that hold a credential (credentialVariables). */
  credentials: string[];
};

/** Capability names by bit number (linux/capability.h, up to CAP_CHECKPOINT_RESTORE = 40). */
export const CAPABILITY_NAMES = [
  'cap_chown',
  'cap_dac_override',
  'cap_dac_read_search',
  'cap_fowner',
  'cap_fsetid',
  'cap_kill',
  'cap_setgid',
  'cap_setuid',
  'cap_setpcap',
  'cap_linux_immutable',
  'cap_net_bind_service',
  'cap_net_broadcast',
  'cap_net_admin',
  'cap_net_raw',
  'cap_ipc_lock',
  'cap_ipc_owner',
  'cap_sys_module',
  'cap_sys_rawio',
  'cap_sys_chroot',
  'cap_sys_ptrace',
  'cap_sys_pacct',
  'cap_sys_admin',
  'cap_sys_boot',
  'cap_sys_nice',
  'cap_sys_resource',
  'cap_sys_time',
  'cap_sys_tty_config',
  'cap_mknod',
  'cap_lease',
  'cap_audit_write',
  'cap_audit_control',
  'cap_setfcap',
  'cap_mac_override',
  'cap_mac_admin',
  'cap_syslog',
  'cap_wake_alarm',
  'cap_block_suspend',
  'cap_audit_read',
  'cap_perfmon',
  'cap_bpf',
  'cap_checkpoint_restore',
] as const;

/** The capability names set in a /proc status mask such as `000001fffeffffff`. */
export function decodeCapabilities(hex: string): string[] {
  let mask = BigInt(`0x${hex || '0'}`);
  const names: string[] = [];
  for (let bit = 0; mask > 0n; bit++, mask >>= 1n) {
    if (mask & 1n) names.push(CAPABILITY_NAMES[bit] ?? `cap_${bit}`);
  }
  return names;
}

/** An nkey seed (`SU…` user, `SN…` server, …): the secret half of an nkey. */
const NKEY_SEED = /^S[UNOACPX][A-Z2-7]{56}$/;
/** A secret's name, word by word: DB_PASS, ADMIN_PASSWORD, API_TOKEN, APIKEY — not TOX_TESTENV_PASSENV. */
const SECRET_NAME = /(^|_)(PASS(WORD|WD)?|SECRET|TOKEN|CREDENTIALS?|(API|PRIVATE)_?KEY)(_|$)/i;
const URL_WITH_PASSWORD = /:\/\/[^/@:\s]+:[^/@\s]+@/;

/**
 * The variables of an environment that hold a credential: an nkey seed, a value under a secret's name
 * (…PASSWORD, …SECRET, …TOKEN, …) or a URL with a password in it. Sorted names, never values.
 */
export function credentialVariables(env: Record<string, string | undefined>): string[] {
  return Object.entries(env)
    .filter(
      ([name, value]) =>
        !!value && (NKEY_SEED.test(value) || SECRET_NAME.test(name) || URL_WITH_PASSWORD.test(value)),
    )
    .map(([name]) => name)
    .sort();
}

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

function statusField(status: string, field: string): string | undefined {
  return new RegExp(`^${field}:\\s+(.*)$`, 'm').exec(status)?.[1]?.trim();
}

/** The environment a process was started with (/proc/<pid>/environ); empty when it cannot be read. */
function environmentOf(pid: number | 'self'): Record<string, string> {
  let text = '';
  try {
    text = readFileSync(`/proc/${pid}/environ`, 'latin1');
  } catch {
    return {};
  }
  const env: Record<string, string> = {};
  for (const entry of text.split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}

/**
 * Reads the facts of `pid` (with `dataRoot`, a real path: how many descriptors it holds on files under
 * it); throws (ENOENT, EACCES) when the process is gone or not ours to inspect.
 */
export function inspectProcess(pid: number | 'self', dataRoot?: string): ProcessInspection {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const fdDir = `/proc/${pid}/fd`;
  const socketInodes = new Set<string>();
  const fds = readdirSync(fdDir);
  let openRegularFiles = 0;
  let openDataFiles = 0;
  const dataPrefix = dataRoot === undefined ? undefined : `${dataRoot.replace(/\/+$/, '')}/`;
  for (const fd of fds) {
    try {
      const target = readlinkSync(`${fdDir}/${fd}`);
      const socket = /^socket:\[(\d+)\]$/.exec(target);
      if (socket) socketInodes.add(socket[1]!);
      else if (target.startsWith('/') && statSync(`${fdDir}/${fd}`).isFile()) {
        openRegularFiles++;
        if (dataPrefix && target.startsWith(dataPrefix)) openDataFiles++;
      }
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
  const capEff = statusField(status, 'CapEff') ?? '0';
  return {
    pid: Number(statusField(status, 'Pid') ?? -1),
    uid: Number(statusField(status, 'Uid')?.split(/\s+/)[1] ?? -1),
    capEff,
    capabilities: decodeCapabilities(capEff),
    noNewPrivs: statusField(status, 'NoNewPrivs') === '1',
    threads: Number(statusField(status, 'Threads') ?? 0),
    openFds: fds.length,
    listeningSockets,
    openRegularFiles,
    ...(dataPrefix ? { openDataFiles } : {}),
    credentials: credentialVariables(environmentOf(pid)),
  };
}

/** A process holding a listening socket: its pid, its parent's and its command name. */
export type SocketHolder = { pid: number; ppid: number; comm: string };

/**
 * The processes holding the TCP socket that listens on `port` here: usually one, several when a parent
 * passed it down (the microkernel's supervisor holds the gateway's socket across restarts).
 */
export function listenerPids(port: number): SocketHolder[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let inode: string | undefined;
  for (const table of ['tcp', 'tcp6']) {
    let text = '';
    try {
      text = readFileSync(`/proc/self/net/${table}`, 'utf8');
    } catch {
      continue; // No such table here.
    }
    for (const line of text.split('\n').slice(1)) {
      const columns = line.trim().split(/\s+/);
      if (columns[3] === TCP_LISTEN && columns[1]?.endsWith(`:${hexPort}`)) inode ??= columns[9];
    }
  }
  if (!inode) return [];
  const holders: SocketHolder[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue; // Gone, or not ours to inspect.
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${entry}/fd/${fd}`) !== `socket:[${inode}]`) continue;
        const status = readFileSync(`/proc/${entry}/status`, 'utf8');
        holders.push({
          pid: Number(entry),
          ppid: Number(statusField(status, 'PPid') ?? 0),
          comm: readFileSync(`/proc/${entry}/comm`, 'utf8').trim(),
        });
        break;
      } catch {
        // Closed or gone meanwhile.
      }
    }
  }
  return holders;
}
