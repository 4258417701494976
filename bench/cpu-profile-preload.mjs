// Preloaded through NODE_OPTIONS=--import=… by `kstyles bench --profile`: Node 20 refuses --cpu-prof in
// NODE_OPTIONS, but a preload reaches every node process of a target's tree (the microkernel's
// supervisor and servers too). It profiles through the inspector and writes the profile at exit, with
// the wall-clock start so the summary can leave out start-up and warm-up.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import path from 'node:path';

const dir = process.env.KSTYLES_BENCH_PROFILE_DIR;
if (dir) {
  const wallStartMs = Date.now();
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.start');
  const script = process.argv[1] ?? process.execPath;
  const sub = script.endsWith('kstyles.js') ? `-${process.argv[2] ?? ''}` : '';
  const name = `${path.basename(path.dirname(script))}-${path.basename(script).replace(/\.\w+$/, '')}${sub}`;
  process.on('exit', () => {
    // A same-thread inspector session answers synchronously, so this completes inside 'exit'.
    session.post('Profiler.stop', (err, result) => {
      if (err || !result) return;
      writeFileSync(
        path.join(dir, `${name}-${process.pid}.cpuprofile`),
        JSON.stringify({ ...result.profile, wallStartMs }),
      );
    });
  });
}
