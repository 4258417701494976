/**
 * Debian's Chromium driven by playwright-core, for the console's browser tests and its screenshot. A
 * missing browser is an error that says how to install it: a browser test must fail without one, not skip.
 */
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM_PATH = process.env.KSTYLES_CHROMIUM ?? '/usr/bin/chromium';

/** Flags that work in a container without a GPU, a sandbox or a network. */
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `no Chromium at ${CHROMIUM_PATH}: install it with 'apt-get install -y chromium' (npm test's set-up, scripts/setup.mjs, does as root), or point KSTYLES_CHROMIUM at one`,
    );
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_FLAGS, headless: true });
}
