/// <reference lib="dom" />
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startConnector } from '../../src/cli/connector.js';
import { tempDir } from '../helpers.js';
import { launchBrowser } from './browser.js';

const cleanups: (() => Promise<void> | void)[] = [];
let browser: Browser;

beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser.close();
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('connector dashboard in a real browser', () => {
  it('signs in with the connector login, pays from the form, shows the receipt; the HiPay routes keep Basic Auth', async () => {
    const connector = await startConnector(
      {
        flavour: 'desktop',
        localPort: 0,
        login: 'log',
        password: 'pwd',
        terminalUrl: 'simulator:semi',
        currency: 'USD',
        dataDir: join(tempDir('connector-ui-'), 'data'),
      },
      'warn',
    );
    cleanups.push(() => connector.close());
    const context = await browser.newContext();
    cleanups.push(() => context.close());
    const page = await context.newPage();
    await page.goto(`${connector.url}/`);
    expect(new URL(page.url()).pathname).toBe('/ui/');
    await page.getByLabel('Login').fill('log');
    await page.getByLabel('Password').fill('pwd');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const terminal = page.locator('#terminals [data-terminal-id]');
    await expect.poll(() => terminal.textContent()).toContain('semi');
    await page.getByLabel('Amount').fill('4.20');
    await page.getByRole('button', { name: 'Send test payment' }).click();
    await expect
      .poll(() => page.locator('#payment-progress').getAttribute('data-outcome'))
      .toBe('approved');
    const row = page.locator('#transactions tr[data-outcome="approved"]');
    await expect.poll(() => row.count()).toBe(1);
    await row.getByRole('button').first().click();
    const detail = page.locator('#transaction-detail');
    await expect.poll(() => detail.textContent()).toContain('476173******0010');
    expect(await detail.locator('pre').textContent()).toContain('4.20 USD');

    // The HiPay-compatible API is untouched: Basic Auth on POST /.
    const anonymous = await fetch(`${connector.url}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 1, currency: 'USD', order_id: 'X-1' }),
    });
    expect(anonymous.status).toBe(401);
    const api = await fetch(`${connector.url}/`, { headers: { accept: 'application/json' } });
    expect(api.status).toBe(404);
  });
});
