/**
 * The console's trace waterfalls in a real browser (Chromium through playwright-core) against a real
 * lab whose styles trace into a scratch directory: the button traces one request in each style, and each
 * style's newest request is drawn, span by span, with the hops that style has.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from './browser.ts';
import { startScratchLab } from './lab-console.ts';
import type { TraceView } from './trace-waterfall-view.ts';

let scratch: Awaited<ReturnType<typeof startScratchLab>> | undefined;
let browser: Browser;
let page: Page;
const dir = mkdtempSync(path.join(os.tmpdir(), 'kstyles-waterfall-test-'));
// The lab's and its microkernel's runtime state go here, not to the user's runtime directory, where the
// console's own browser test (console.test.ts) may be running another scratch lab at the same time.
process.env.XDG_RUNTIME_DIR = dir;

before(async () => {
  browser = await launchChromium();
  scratch = await startScratchLab(path.join(dir, 'data'));
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on('pageerror', (err) => process.stderr.write(`page error: ${err.message}\n`));
  await page.goto(scratch.server.url);
});

after(async () => {
  await browser?.close();
  await scratch?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The services of the rows of one style's waterfall as the page shows them. */
const rowServices = (style: string) =>
  page
    .locator(`#traces table[data-style="${style}"] tbody tr`)
    .evaluateAll((rows) =>
      rows.map(
        (row) =>
          `${row.getAttribute('data-service')}:${row.querySelector('td.span')?.firstChild?.textContent?.trim()}`,
      ),
    );

test('the button traces one request per style and the page draws each waterfall', async () => {
  assert.equal(await page.locator('#traces table[data-trace]').count(), 0, 'no request traced yet');
  await page.click('#trace-now');
  const microkernelHops = [
    'microkernel-gateway:GET /files/*',
    'microkernel-gateway:send kstyles.fs.stat',
    'microkernel-fs:process kstyles.fs.read',
    'microkernel-fs:send kstyles.drv.read',
    'microkernel-driver:process kstyles.drv.read',
    'microkernel-driver:driver read',
  ];
  /** What the page still lacks, or null once it shows every style's hops (processes write every 250 ms). */
  const missing = async (): Promise<string | null> => {
    const drawn = await page
      .locator('#traces table[data-trace]')
      .evaluateAll((tables) => tables.map((t) => t.getAttribute('data-style')));
    if (drawn.length < 3) return `a waterfall per style (it draws ${drawn.join(', ') || 'none'})`;
    const monolith = [...new Set(await rowServices('monolith'))].sort().join(', ');
    if (monolith !== 'monolith:GET /files/*, monolith:driver read, monolith:fs read, monolith:fs stat') {
      return `the monolith's function calls, not ${monolith}`;
    }
    const microkernel = await rowServices('microkernel');
    const absent = microkernelHops.filter((hop) => !microkernel.includes(hop));
    if (absent.length > 0)
      return `the microkernel's ${absent.join(', ')} (it shows ${microkernel.join(', ')})`;
    const grants = page.locator('#traces table[data-style="microkernel"] .note', { hasText: 'grant →' });
    if ((await grants.count()) === 0) return "the microkernel's grant";
    const hops = (await rowServices('unikernel')).filter((r) => r === 'unikernel:pool read').length;
    if (hops !== 4) return `four pool hops in the unikernel (one per 256 KiB chunk), not ${hops}`;
    return null;
  };
  const until = Date.now() + 45_000;
  for (let lacking = await missing(); lacking !== null; lacking = await missing()) {
    assert.ok(Date.now() < until, `the page does not show ${lacking}`);
    await page.waitForTimeout(500);
  }

  // The same waterfalls without JavaScript: in the page the server renders, and as JSON.
  const html = await (await fetch(scratch!.server.url)).text();
  assert.equal(html.match(/<table class="waterfall" data-style="\w+" data-trace=/g)?.length, 3);
  const view = (await (await fetch(new URL('/traces', scratch!.server.url))).json()) as TraceView;
  for (const style of ['monolith', 'microkernel', 'unikernel']) {
    const trace = view.styles[style];
    assert.ok(trace, style);
    assert.equal(trace.request, '/files/bench/1m.bin → 200');
    assert.equal(trace.rows[0]?.depth, 0);
    assert.ok(trace.rows.every((row) => row.startMs >= 0 && row.durationMs >= 0));
  }
});
