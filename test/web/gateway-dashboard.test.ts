/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EconduitAgent } from '../../src/agent/econduit-agent.js';
import { Gateway } from '../../src/gateway/gateway.js';
import { SqliteTenantStore } from '../../src/gateway/tenants.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { EconduitSimulator } from '../../src/simulators/econduit/simulator.js';
import { tempDir, waitFor } from '../helpers.js';
import { launchBrowser } from './browser.js';

const A_TERMINALS = ['61000001', '61000002'] as const;
const B_TERMINAL = '62000001';
const HEARTBEAT_MS = 200;
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

async function setup() {
  const dir = tempDir('dashboard-');
  const journal = new SqliteJournal({ path: join(dir, 'journal.db') });
  const tenants = new SqliteTenantStore(journal);
  const a = tenants.addMerchant('corner-shop');
  const b = tenants.addMerchant('other-shop');
  for (const id of A_TERMINALS)
    tenants.addTerminal({ terminalId: id, merchant: 'corner-shop', terminalType: 'Valor' });
  tenants.addTerminal({ terminalId: B_TERMINAL, merchant: 'other-shop', terminalType: 'Valor' });
  const gateway = await new Gateway({
    journal,
    tenants,
    tcpPort: 0,
    httpPort: 0,
    terminals: { heartbeatIntervalMs: HEARTBEAT_MS, missedHeartbeats: 3 },
    answerTimeoutMs: 3_000,
    recoveryMs: 1_000,
    cardStepMs: 0,
  }).start();
  cleanups.push(() => journal.close());
  cleanups.push(() => gateway.close());
  const endpoints = [{ host: '127.0.0.1', port: gateway.tcpPort }];
  const shopTerminals = await new EconduitSimulator({
    endpoints,
    terminalId: A_TERMINALS[0],
    count: A_TERMINALS.length,
    heartbeatIntervalMs: HEARTBEAT_MS,
    cardDelayMs: 300,
  }).start(5_000);
  cleanups.push(() => shopTerminals.stop());
  const otherTerminal = await new EconduitSimulator({
    endpoints,
    terminalId: B_TERMINAL,
    heartbeatIntervalMs: HEARTBEAT_MS,
  }).start(5_000);
  cleanups.push(() => otherTerminal.stop());
  await waitFor(() => gateway.listener.onlineCount === 3, 5_000, 'three terminals online');
  const base = `http://127.0.0.1:${gateway.httpPort}`;
  return { journal, gateway, shopTerminals, otherTerminal, a, b, base, endpoints };
}

async function signIn(base: string, who: { key: string; password: string }): Promise<Page> {
  const context = await browser.newContext();
  cleanups.push(() => context.close());
  const page = await context.newPage();
  await page.goto(`${base}/`);
  expect(new URL(page.url()).pathname).toBe('/ui/');
  await page.getByLabel('API key').fill(who.key);
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#terminals').waitFor();
  return page;
}

const terminalRow = (page: Page, id: string) =>
  page.locator(`#terminals [data-terminal-id="${id}"]`);

describe('gateway dashboard in a real browser', () => {
  it('signs in with the merchant key, shows its terminals "POS Online", then "POS Offline" when one stops, and online again', async () => {
    const { base, a, shopTerminals, endpoints } = await setup();
    const page = await signIn(base, a);
    for (const id of A_TERMINALS)
      await expect.poll(() => terminalRow(page, id).textContent()).toContain('POS Online');
    await expect.poll(() => terminalRow(page, B_TERMINAL).count()).toBe(0);

    const stopped = shopTerminals.terminal(A_TERMINALS[1]);
    if (stopped === undefined) throw new Error('no simulated terminal');
    await stopped.agent.stop();
    // Within the heartbeat window (3 missed heartbeats), live, without a reload.
    await expect
      .poll(() => terminalRow(page, A_TERMINALS[1]).textContent(), {
        timeout: HEARTBEAT_MS * 3 + 2_000,
      })
      .toContain('POS Offline');
    expect(await terminalRow(page, A_TERMINALS[0]).textContent()).toContain('POS Online');

    const back = new EconduitAgent({
      endpoints,
      registration: {
        terminalType: 'Valor',
        terminalModel: 'VL100',
        terminalId: A_TERMINALS[1],
        softwareVersion: 'test',
        ackHeartbeat: true,
      },
      heartbeatIntervalMs: HEARTBEAT_MS,
    });
    back.on('session', (link) => stopped.terminal.attach(link));
    cleanups.push(() => back.stop());
    back.start();
    await expect
      .poll(() => terminalRow(page, A_TERMINALS[1]).textContent(), { timeout: 5_000 })
      .toContain('POS Online');
  });

  it('a test payment from the form shows its progress, then appears approved in the transactions without a reload; a decline amount is declined', async () => {
    const { base, a, shopTerminals } = await setup();
    const page = await signIn(base, a);
    let loads = 0;
    page.on('load', () => loads++);
    await page.getByLabel('Terminal', { exact: true }).selectOption(A_TERMINALS[0]);
    await page.getByLabel('Amount').fill('1.00');
    await page.getByRole('button', { name: 'Send test payment' }).click();
    const progress = page.locator('#payment-progress');
    await expect.poll(() => progress.getAttribute('data-outcome')).toBe('approved');
    await expect
      .poll(() => page.locator('#transactions tr[data-outcome="approved"]').count())
      .toBe(1);
    expect(shopTerminals.ledger.count).toBe(1);

    await page.getByLabel('Amount').fill('1.51');
    await page.getByRole('button', { name: 'Send test payment' }).click();
    await expect.poll(() => progress.getAttribute('data-outcome')).toBe('declined');
    await expect
      .poll(() => page.locator('#transactions tr[data-outcome="declined"]').count())
      .toBe(1);
    expect(loads).toBe(0);
    expect(shopTerminals.ledger.count).toBe(1);
  });

  it("merchant A's session cannot see or pay on merchant B's terminal, in the page or through the API", async () => {
    const { base, a, b, otherTerminal, journal } = await setup();
    const pageB = await signIn(base, b);
    await pageB.getByLabel('Amount').fill('2.00');
    await pageB.getByRole('button', { name: 'Send test payment' }).click();
    await expect
      .poll(() => pageB.locator('#payment-progress').getAttribute('data-outcome'))
      .toBe('approved');
    expect(otherTerminal.ledger.count).toBe(1);

    const pageA = await signIn(base, a);
    expect(await terminalRow(pageA, B_TERMINAL).count()).toBe(0);
    const options = await pageA
      .getByLabel('Terminal', { exact: true })
      .locator('option')
      .allTextContents();
    expect(options.join(' ')).not.toContain(B_TERMINAL);
    expect(await pageA.locator('#transactions tr[data-reference]').count()).toBe(0);
    // Straight at the API with A's session: B's terminal and transaction answer like none.
    const bTransaction = journal.list({ merchantId: 'other-shop' })[0]?.publicId ?? '';
    const answers = await pageA.evaluate(
      async ([terminalId, transactionId]) => {
        const session = (await (await fetch('/ui/api/session')).json()) as { csrfToken: string };
        const pay = await fetch('/ui/api/test-payment', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrfToken },
          body: JSON.stringify({ terminalId, amount: '1.00' }),
        });
        const list = (await (await fetch('/ui/api/transactions')).json()) as {
          transactions: unknown[];
        };
        const one = await fetch(`/ui/api/transactions/${transactionId}`);
        return { pay: pay.status, listed: list.transactions.length, one: one.status };
      },
      [B_TERMINAL, bTransaction] as const,
    );
    expect(answers).toEqual({ pay: 404, listed: 0, one: 404 });
    expect(otherTerminal.ledger.count).toBe(1);
  });

  it('the payment form works from the keyboard alone, and every control has a label', async () => {
    const { base, a, shopTerminals } = await setup();
    const page = await signIn(base, a);
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll('input, select, textarea, button')]
        .filter((el) => {
          const control = el as HTMLInputElement;
          if (control.type === 'hidden') return false;
          const labelled =
            (control.labels?.length ?? 0) > 0 ||
            control.getAttribute('aria-label') !== null ||
            control.getAttribute('aria-labelledby') !== null;
          const named = el.tagName === 'BUTTON' && (el.textContent ?? '').trim() !== '';
          return !labelled && !named;
        })
        .map((el) => el.outerHTML.slice(0, 80)),
    );
    expect(unlabelled).toEqual([]);

    // From the top of the page, Tab to the terminal picker, then only keys.
    await page.locator('body').focus();
    for (let i = 0; i < 40; i++) {
      const label = await page.evaluate(
        () => (document.activeElement as HTMLInputElement | null)?.labels?.[0]?.textContent ?? '',
      );
      if (label.trim().startsWith('Terminal')) break;
      await page.keyboard.press('Tab');
    }
    expect(
      await page.evaluate(
        () => (document.activeElement as HTMLSelectElement).labels?.[0]?.textContent,
      ),
    ).toMatch(/^Terminal/);
    await page.keyboard.press('Tab');
    await page.keyboard.type('3.00');
    await page.keyboard.press('Enter');
    await expect
      .poll(() => page.locator('#payment-progress').getAttribute('data-outcome'))
      .toBe('approved');
    expect(shopTerminals.ledger.all().map((c) => c.amountMinor)).toEqual([300]);
  });

  it('serves the page under a strict CSP with an HttpOnly, SameSite=Strict session; state changes need the CSRF token', async () => {
    const { base, a } = await setup();
    const page = await signIn(base, a);
    const response = await page.request.get(`${base}/ui/`);
    expect(response.headers()['content-security-policy']).toContain("script-src 'self'");
    expect(response.headers()['content-security-policy']).not.toContain('unsafe-inline');
    const cookies = await page.context().cookies();
    expect(cookies).toEqual([
      expect.objectContaining({ name: 'ecr_session', httpOnly: true, sameSite: 'Strict' }),
    ]);
    const noToken = await page.evaluate(async (terminalId) => {
      const r = await fetch('/ui/api/test-payment', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ terminalId, amount: '1.00' }),
      });
      return r.status;
    }, A_TERMINALS[0]);
    expect(noToken).toBe(401);
    const wrong = await fetch(`${base}/ui/api/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ login: a.key, password: 'Wrong' }),
    });
    expect(wrong.status).toBe(401);
  });

  it('an unknown transaction is resolved by hand with a required reason; its timeline keeps every state', async () => {
    const { base, a, journal } = await setup();
    // A crash left a sale unknown (journaled straight, as the recovery would have left it).
    const owner = { pid: 999_999, token: 'crashed' };
    const claim = journal.claim({
      merchantId: 'corner-shop',
      terminalId: A_TERMINALS[0],
      reference: 'LOST-SALE',
      kind: 'sale',
      amountMinor: 1250,
      currency: 'USD',
      method: 'card',
      owner,
    });
    if (claim.type !== 'claimed') throw new Error('not claimed');
    journal.markSent(claim.row.id, owner);
    journal.complete(claim.row.id, owner, {
      outcome: 'unknown',
      errorCode: 'OUTCOME_UNKNOWN',
      message: 'the gateway stopped before the answer',
    });
    const page = await signIn(base, a);
    await page.getByLabel('Unresolved only').check();
    const row = page.locator('#transactions tr[data-reference="LOST-SALE"]');
    await row.getByRole('button').first().click();
    const detail = page.locator('#transaction-detail');
    await detail.waitFor();
    await detail.getByRole('button', { name: 'Record resolution' }).click();
    // The reason is required: nothing recorded without it.
    expect(journal.get(claim.row.id)?.state).toBe('unknown');
    await detail.getByLabel('Resolved outcome').selectOption('approved');
    await detail.getByLabel('Reason').fill('the acquirer report shows it captured');
    await detail.getByRole('button', { name: 'Record resolution' }).click();
    await expect.poll(() => journal.get(claim.row.id)?.state).toBe('approved');
    await expect
      .poll(() => detail.textContent())
      .toContain('the acquirer report shows it captured');
    const states = journal.eventsOf(claim.row.id).map((e) => e.state);
    expect(states).toEqual(['received', 'sent', 'unknown', 'approved']);
  });
});
