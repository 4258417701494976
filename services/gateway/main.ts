/**
 * The gateway as a process:
 *   node --import tsx services/gateway/main.ts [--port P] [--host H] [--nats URL] [--shm-dir DIR]
 * GET /files/<path>, /healthz, /readyz and /metrics, served through kstyles-fs over NATS. Under a
 * supervisor that holds its socket (KSTYLES_LISTEN_FD=3) it serves that socket and ignores --port and
 * --host: the supervisor's spec says where it listens.
 */

import { intFlag, portFlag } from '../../cli/args.ts';
import { DEFAULT_PORTS } from '../../cli/kit/defaults.ts';
import { hostFlagSpec, portFlagSpec } from '../../cli/kit/flags.ts';
import { DEFAULT_DEADLINE_MS } from '../contract/file-service.ts';
import { NATS_FLAGS, runServerMain, SHM_DIR_FLAG, shmSegmentsFlag } from '../ipc/server-main.ts';
import { followSupervisedChild } from '../ipc/supervisor-news.ts';
import { CHILD_NAMES } from '../microkernel/composition.ts';
import { inheritedListenFd } from '../supervisor/held-socket.ts';
import { startGateway } from './gateway.ts';

await runServerMain({
  command: {
    name: 'gateway',
    summary: 'the HTTP gateway of the microkernel',
    usage: 'node --import tsx services/gateway/main.ts [--port P] [--host H] [--nats URL] [--shm-dir DIR]',
    flags: {
      ...NATS_FLAGS,
      port: portFlagSpec(DEFAULT_PORTS.microkernel, 'HTTP port'),
      host: hostFlagSpec('HTTP address'),
      'deadline-ms': {
        type: 'string',
        env: 'KSTYLES_DEADLINE_MS',
        value: 'MS',
        default: String(DEFAULT_DEADLINE_MS),
        description: 'request deadline (past it: 504)',
      },
      ...SHM_DIR_FLAG,
    },
  },
  prepare(flags) {
    portFlag('gateway', flags.port);
    intFlag('gateway', 'deadline-ms', flags['deadline-ms'], 1, 600_000);
    shmSegmentsFlag('gateway', flags['shm-dir']);
  },
  async start(nc, flags) {
    const fd = inheritedListenFd();
    const shm = shmSegmentsFlag('gateway', flags['shm-dir']);
    const gateway = await startGateway(nc, {
      port: portFlag('gateway', flags.port),
      host: flags.host ?? '127.0.0.1',
      ...(fd !== undefined ? { fd } : {}),
      deadlineMs: intFlag('gateway', 'deadline-ms', flags['deadline-ms'], 1, 600_000),
      ...(shm ? { shm } : {}),
    });
    // A file server's exit (or return) from the supervisor reissues the requests it held at once.
    const fsNews = followSupervisedChild(nc, CHILD_NAMES.fs, () => gateway.nudge());
    return {
      facts: { url: gateway.url, metrics: `${gateway.url}/metrics` },
      stop: async () => {
        fsNews.unsubscribe();
        await gateway.close(5000);
      },
    };
  },
});
