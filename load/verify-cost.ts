/**
 * CPU cost of checking one body, byte compare against sha256, and of handing the body to another
 * thread instead (load/README.md has the figures): `npx tsx load/verify-cost.ts`. Bodies arrive in
 * 16 KiB chunks, as undici handed them over (the sender's own client, http-client.ts, hands up to 64 KiB:
 * fewer calls for the same bytes); the cost is process CPU time (user + system) over many
 * bodies, after a warm-up, divided by the bodies. The hand-off columns are what the sender thread would
 * pay before another thread even began the check: a copy into shared memory, or a postMessage.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ManifestFile } from '../services/corpus/corpus.ts';
import { type BodyVerifier, byteVerifier, sha256Verifier } from './body-verifier.ts';

const CHUNK = 16 * 1024;
const SIZES = [
  { label: '4 KiB', size: 4 * 1024, bodies: 200_000 },
  { label: '1 MiB', size: 1024 * 1024, bodies: 2_000 },
];

function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

function checkAll(verifier: BodyVerifier, file: ManifestFile, chunks: Buffer[], bodies: number): void {
  const request = { ...file, urlPath: '' };
  for (let i = 0; i < bodies; i++) {
    const check = verifier.begin(request);
    for (const chunk of chunks) check.update(chunk);
    if (check.finish() !== null) throw new Error('verify-cost: a clean body failed its check');
  }
}

/** CPU µs per body of `handOff`, after a warm-up. */
function handOffCost(bodies: number, handOff: (i: number) => void): number {
  for (let i = 0; i < Math.ceil(bodies / 10); i++) handOff(i);
  const start = cpuMicros();
  for (let i = 0; i < bodies; i++) handOff(i);
  return (cpuMicros() - start) / bodies;
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'kstyles-verify-cost-'));
try {
  console.log(
    '| body | byte compare, µs/body | sha256, µs/body | sha256 / byte compare | copy to another thread, µs/body | postMessage to another thread, µs/body |',
  );
  console.log('|---|--:|--:|--:|--:|--:|');
  // A thread that receives and drops what it is sent: the cost measured is the sender's.
  const sink = new Worker("require('node:worker_threads').parentPort.on('message', () => {});", {
    eval: true,
  });
  for (const { label, size, bodies } of SIZES) {
    const body = Buffer.alloc(size);
    for (let i = 0; i < size; i++) body[i] = (i * 2654435761) >>> 24;
    const file: ManifestFile = {
      path: `f-${size}.bin`,
      size,
      sha256: createHash('sha256').update(body).digest('hex'),
    };
    await writeFile(path.join(dir, file.path), body);
    // Separate buffers, as bodies off a socket are: the compare cannot short-cut on identical memory.
    const chunks: Buffer[] = [];
    for (let i = 0; i < size; i += CHUNK) chunks.push(Buffer.from(body.subarray(i, i + CHUNK)));
    const bytes = await byteVerifier(dir, [file]);
    const sha = sha256Verifier();
    const perBody: number[] = [];
    for (const verifier of [bytes, sha]) {
      checkAll(verifier, file, chunks, Math.ceil(bodies / 10));
      const start = cpuMicros();
      checkAll(verifier, file, chunks, bodies);
      perBody.push((cpuMicros() - start) / bodies);
    }
    const [b, s] = perBody as [number, number];
    const whole = Buffer.concat(chunks);
    const shared = Buffer.from(new SharedArrayBuffer(size * 8));
    const copy = handOffCost(bodies, (i) => whole.copy(shared, (i % 8) * size));
    const post = handOffCost(Math.min(bodies, 50_000), () => sink.postMessage(whole));
    console.log(
      `| ${label} | ${b.toFixed(2)} | ${s.toFixed(2)} | ${(s / b).toFixed(1)}× | ${copy.toFixed(2)} | ${post.toFixed(2)} |`,
    );
  }
  await sink.terminate();
} finally {
  await rm(dir, { recursive: true, force: true });
}
