/**
 * Measures one large file read through the microkernel's data path (gateway FileService → NATS → file
 * server → NATS → driver, all in this process but connected through a real nats-server) for each chunk
 * size and window, interleaved so a busy machine slows every configuration alike:
 *   npx tsx services/microkernel/testing/measure-pipeline.ts [--mib 8] [--rounds 7] [--transfer grant|copy|shm]
 * Prints the median time per read, its throughput and the median CPU time of this process per read (the
 * gateway logic, file server and driver; nats-server not counted). services/microkernel/README.md keeps
 * the figures.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { spreadOf } from '../../../cli/kit/spread.ts';
import { NatsFileService, type PipelineOptions } from '../../gateway/file-service-client.ts';
import { DEFAULT_TRANSFER } from '../../ipc/headers.ts';
import { transferFlag } from '../../ipc/server-main.ts';
import { startInProcessKernel } from './in-process-kernel.ts';

const KiB = 1024;
const { values } = parseArgs({
  options: {
    mib: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '7' },
    transfer: { type: 'string', default: DEFAULT_TRANSFER },
  },
});
const size = Number(values.mib) * KiB * KiB;
const rounds = Number(values.rounds);
const configs: PipelineOptions[] = [];
for (const chunkBytes of [64 * KiB, 128 * KiB, 256 * KiB]) {
  for (const windowBytes of [chunkBytes, 512 * KiB, 1024 * KiB, 2048 * KiB]) {
    if (windowBytes >= chunkBytes) configs.push({ chunkBytes, windowBytes });
  }
}

const dir = await mkdtemp(path.join(tmpdir(), 'kstyles-measure-'));
await writeFile(path.join(dir, 'big.bin'), randomBytes(size));
const kernel = await startInProcessKernel(dir, {
  transfer: transferFlag('measure-pipeline', values.transfer),
});
try {
  const nc = await kernel.connectAs('gateway');
  const services = configs.map((pipeline) => new NatsFileService(nc, { pipeline }));
  const times: number[][] = configs.map(() => []);
  /** CPU time (user + system) of this process, which runs the gateway logic, file server and driver. */
  const cpuMs: number[][] = configs.map(() => []);
  const readOnce = async (service: NatsFileService) => {
    const deadline = Date.now() + 30_000;
    const file = await service.open('big.bin', { deadline });
    let bytes = 0;
    for await (const chunk of file.read({ start: 0, end: size - 1 }, { deadline })) bytes += chunk.byteLength;
    await file.close();
    if (bytes !== size) throw new Error(`read ${bytes} of ${size} bytes`);
  };
  for (const service of services) await readOnce(service); // warm-up: page cache, JIT, fd cache
  for (let round = 0; round < rounds; round++) {
    for (const [index, service] of services.entries()) {
      const started = process.hrtime.bigint();
      const cpu = process.cpuUsage();
      await readOnce(service);
      times[index]!.push(Number(process.hrtime.bigint() - started) / 1e6);
      const used = process.cpuUsage(cpu);
      cpuMs[index]!.push((used.user + used.system) / 1000);
    }
  }
  console.log(`${values.mib} MiB file, ${values.transfer} transfers, ${rounds} rounds, median per read:`);
  for (const [index, { chunkBytes, windowBytes }] of configs.entries()) {
    const { median, min, max } = spreadOf(times[index]!)!;
    const cpu = spreadOf(cpuMs[index]!)!.median;
    console.log(
      `chunk ${String(chunkBytes / KiB).padStart(3)} KiB  window ${String(windowBytes / KiB).padStart(4)} KiB  ` +
        `${median.toFixed(1).padStart(7)} ms  ${(((size / median) * 1000) / KiB / KiB).toFixed(0).padStart(4)} MiB/s` +
        `  (min ${min.toFixed(1)}, max ${max.toFixed(1)})  CPU ${cpu.toFixed(0)} ms`,
    );
  }
} finally {
  await kernel.stop();
  await rm(dir, { recursive: true, force: true });
}
