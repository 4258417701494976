import path from 'node:path';
import { freePort } from '../../services/contract/http-server.ts';
import { ensureCorpus } from '../corpus-setup.ts';
import { LAB_ID, LAB_PORTS, type Lab, type LabPorts, startLab } from '../lab.ts';
import { DEFAULT_TRACES_RATIO } from '../traces.ts';
import { type ConsoleServer, startConsole } from './console-server.ts';

/** The microkernel's supervisor id inside the lab (`kstyles microkernel --id`'s default). */
const MICROKERNEL_SUPERVISOR_ID = 'microkernel';

/** Serves the console of a running lab: its styles, its two supervisors (as the console's NATS user). */
export function startLabConsole(lab: Lab, port: number, corpusDir: string): Promise<ConsoleServer> {
  return startConsole({
    port,
    portFlag: '--console-port',
    urls: lab.urls,
    corpusDir,
    nats: lab.consoleNats,
    supervisorIds: [LAB_ID, MICROKERNEL_SUPERVISOR_ID],
    ...(lab.traces ? { tracesDir: lab.traces.dir } : {}),
  });
}

/** A whole lab with chaos on and its console, every port free-chosen: for the browser tests and the screenshot. */
export async function startScratchLab(
  data: string,
): Promise<{ lab: Lab; server: ConsoleServer; stop(): Promise<void> }> {
  await ensureCorpus(data, () => {});
  const names = Object.keys(LAB_PORTS) as (keyof LabPorts)[];
  const ports = Object.fromEntries(
    await Promise.all(names.map(async (name) => [name, await freePort()])),
  ) as LabPorts;
  const quiet = { write: () => true } as unknown as NodeJS.WritableStream;
  // Traces beside the data, in the caller's scratch directory, at the lab's default ratio.
  const traces = { dir: path.join(path.dirname(data), 'traces'), ratio: DEFAULT_TRACES_RATIO };
  const lab = await startLab({ data, chaos: true, ports, stdout: quiet, stderr: quiet, traces });
  try {
    await lab.supervisor.whenReady();
    // Port 0: the console binds a port the kernel picks then. One picked free before the lab started
    // was taken by the time the console bound it (seen in CI: PORT_IN_USE under concurrent tests).
    const server = await startLabConsole(lab, 0, data);
    return {
      lab,
      server,
      stop: async () => {
        await server.close();
        await lab.stop();
      },
    };
  } catch (err) {
    await lab.stop();
    throw err;
  }
}
