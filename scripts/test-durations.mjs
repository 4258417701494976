// How long each test file took last time on this machine, so run-tests.mjs can start the longest first.
//
// Two files run at a time. In alphabetical order (what `node --test` imposes on the files it is given)
// the slowest, test/microkernel-faults.test.ts at about a minute and a half, started near the end and
// ran alone while the other worker sat idle. Longest first (the LPT rule) keeps both busy to the end.
// The record is a hint, never a result: a file with no record runs first, as if it were long, and a
// lost or corrupt record only brings back alphabetical order.
//
// The record lives beside the fetched Node binaries: $XDG_CACHE_HOME/kstyles/test-durations.json
// (default ~/.cache/kstyles), or $KSTYLES_TEST_DURATIONS. Plain JavaScript, like run-tests.mjs.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative } from 'node:path';

const TEST_FILE = /\.test\.[cm]?[jt]s$/;

export function durationsFile() {
  if (process.env.KSTYLES_TEST_DURATIONS) return process.env.KSTYLES_TEST_DURATIONS;
  const base = process.env.XDG_CACHE_HOME || join(os.homedir(), '.cache');
  return join(base, 'kstyles', 'test-durations.json');
}

/** Seconds per test file (relative to the root the record was made from); {} when none or unreadable. */
export function readDurations(file = durationsFile()) {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8'));
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed : {};
  } catch {
    return {};
  }
}

/** `files` longest first by the record; files without a record first of all; ties alphabetical. */
export function longestFirst(files, durations) {
  const seconds = (file) =>
    typeof durations[file] === 'number' ? durations[file] : Number.POSITIVE_INFINITY;
  return [...files].sort((a, b) => seconds(b) - seconds(a) || a.localeCompare(b));
}

/**
 * Sums the top-level test durations of each file a node:test `run()` stream reports, and once the
 * stream ends merges them into the record (files that did not run keep theirs). Resolves to the path
 * written, or undefined when nothing was recorded or it could not be written (a read-only home must not
 * fail the tests).
 */
export function recordDurations(stream, root, file = durationsFile()) {
  const seconds = {};
  const add = (data) => {
    // A test declared in a shared helper (the contract suite) names the helper's file, not the test
    // file that ran it: such tests are left out, and their files run early, as files with no record.
    if (data.nesting !== 0 || !TEST_FILE.test(data.file ?? '')) return;
    const key = relative(root, data.file);
    seconds[key] = (seconds[key] ?? 0) + (data.details?.duration_ms ?? 0) / 1000;
  };
  stream.on('test:pass', add);
  stream.on('test:fail', add);
  return new Promise((resolve) => {
    stream.once('end', () => {
      if (Object.keys(seconds).length === 0) return resolve(undefined);
      const merged = { ...readDurations(file) };
      for (const [key, value] of Object.entries(seconds)) merged[key] = Math.round(value * 10) / 10;
      try {
        mkdirSync(dirname(file), { recursive: true });
        const temporary = `${file}.${process.pid}.tmp`;
        writeFileSync(temporary, `${JSON.stringify(merged, null, 1)}\n`);
        renameSync(temporary, file);
        resolve(file);
      } catch {
        resolve(undefined);
      }
    });
  });
}
