import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeDirectory } from '../cli/kit/make-directory.ts';
import { renderHtml } from './report-html.ts';
import { renderMarkdown } from './report-md.ts';
import type { LoadResults } from './types.ts';

export type WrittenReports = { json: string; markdown: string; html: string };

/** Writes DIR/results.json, DIR/report.md and the self-contained DIR/report.html. */
export async function writeReports(results: LoadResults, dir: string): Promise<WrittenReports> {
  makeDirectory(dir);
  const files = {
    json: path.join(dir, 'results.json'),
    markdown: path.join(dir, 'report.md'),
    html: path.join(dir, 'report.html'),
  };
  await writeFile(files.json, `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(files.markdown, renderMarkdown(results));
  await writeFile(files.html, renderHtml(results));
  return files;
}
