/**
 * Regenerates docs/console.png from a real browser: a scratch lab, its console, a minute-scale story
 * (load at 50 req/s, a driver kill on the microkernel, a poison request on the monolith, a crash loop
 * of 3 failing starts on the microkernel's driver) and a full-page screenshot once the recoveries are
 * measured. Run: npx tsx lab/console/screenshot.ts [FILE]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../../cli/kit/repo.ts';
import { launchChromium } from './browser.ts';
import { startScratchLab } from './lab-console.ts';

const out = path.resolve(process.argv[2] ?? path.join(REPO_ROOT, 'docs', 'console.png'));
const dir = mkdtempSync(path.join(os.tmpdir(), 'kstyles-console-shot-'));
const browser = await launchChromium();
const scratch = await startScratchLab(path.join(dir, 'data')).catch(async (err) => {
  await browser.close();
  throw err;
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.goto(scratch.server.url);
  await page.fill('input[name="rate"]', '50');
  await page.click('#load-start');
  await page.waitForTimeout(8000);
  await page.click('button[data-target="microkernel:driver"][data-kind="kill"]');
  await page.waitForTimeout(6000);
  await page.click('button[data-target="monolith"][data-kind="poison"]');
  await page.locator('#timeline-table tr.closed[data-kind="poison"]').waitFor({ timeout: 60_000 });
  await page.fill('#crashloop-starts', '3');
  await page.click('button[data-target="microkernel:driver"][data-kind="crashloop"]');
  await page.locator('#timeline-table tr.closed[data-kind="crashloop"]').waitFor({ timeout: 60_000 });
  await page.screenshot({ path: out, fullPage: true });
  await page.click('#load-stop');
  process.stdout.write(`wrote ${path.relative(process.cwd(), out)}\n`);
} finally {
  await browser.close();
  await scratch.stop();
  rmSync(dir, { recursive: true, force: true });
}
