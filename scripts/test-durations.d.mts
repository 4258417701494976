// Types for scripts/test-durations.mjs, plain JavaScript because run-tests.mjs loads it before tsx.
import type { TestsStream } from 'node:test';

export function durationsFile(): string;
export function readDurations(file?: string): Record<string, unknown>;
export function longestFirst(files: readonly string[], durations: Record<string, unknown>): string[];
export function recordDurations(
  stream: TestsStream,
  root: string,
  file?: string,
): Promise<string | undefined>;
