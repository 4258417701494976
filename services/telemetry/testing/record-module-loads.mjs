// Test helper: `node --import <this file>` records the URL of every module the process resolves through
// the ES module loader into the file KSTYLES_TEST_MODULE_LOG names, so a test can tell which packages a
// real process loaded (services/telemetry tests: no SDK module while tracing is off).
import { register } from 'node:module';

const log = process.env.KSTYLES_TEST_MODULE_LOG;
if (log) register(new URL('./module-loads-hooks.mjs', import.meta.url), { data: { log } });
