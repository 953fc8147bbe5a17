import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium, installed by `.ci/run` (never `playwright install`). */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Headless Chromium as stack.md says to start it here: without the background-networking flags,
 * its connections out are refused by the machine's closed network, many at a time.
 */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
