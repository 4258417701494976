/**
 * What the app image (deploy/docker/app.Dockerfile) copies from its build context: read from the
 * Dockerfile itself, so the container tier's staged context and the check of what the image holds
 * (app-image.test.ts) never drift from it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../cli/kit/repo.ts';

export const APP_DOCKERFILE = path.join(REPO_ROOT, 'deploy/docker/app.Dockerfile');

/** The sources of the Dockerfile's `COPY` lines from the build context (files and folders). */
export function appImageSources(dockerfile = readFileSync(APP_DOCKERFILE, 'utf8')): string[] {
  return dockerfile
    .split('\n')
    .filter((line) => /^COPY\s/.test(line) && !/--from=/.test(line))
    .flatMap((line) => line.trim().split(/\s+/).slice(1, -1));
}
