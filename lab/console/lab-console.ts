import { clientOptionsFromState } from '../../services/supervisor/control-client.ts';
import { readRuntimeState } from '../../services/supervisor/runtime-state.ts';
import { LAB_ID, type Lab } from '../lab.ts';
import { type ConsoleServer, startConsole } from './console-server.ts';

/** The microkernel's supervisor id inside the lab (`kstyles microkernel --id`'s default). */
const MICROKERNEL_SUPERVISOR_ID = 'microkernel';

/** Serves the console of a running lab: its styles, its two supervisors, its NATS. */
export async function startLabConsole(lab: Lab, port: number, corpusDir: string): Promise<ConsoleServer> {
  const state = readRuntimeState(LAB_ID);
  const nats = state ? clientOptionsFromState(state) : undefined;
  if (!nats) throw new Error(`the lab's runtime state (${LAB_ID}.json) names no NATS: is the lab running?`);
  return startConsole({
    port,
    urls: lab.urls,
    corpusDir,
    nats,
    supervisorIds: [LAB_ID, MICROKERNEL_SUPERVISOR_ID],
  });
}
