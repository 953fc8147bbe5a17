/**
 * Takes the dashboard's screenshots for the docs (docs/images/*.png): a gateway with a demo
 * merchant, simulated terminals (one offline) and a few transactions, driven in Debian's
 * Chromium. Run with `npm run screenshots`; commit the images it writes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Gateway } from '../src/gateway/gateway.js';
import { SqliteTenantStore } from '../src/gateway/tenants.js';
import { SqliteJournal } from '../src/journal/sqlite-journal.js';
import { EconduitSimulator } from '../src/simulators/econduit/simulator.js';
import { launchBrowser } from '../test/web/browser.js';

const OUT = fileURLToPath(new URL('../docs/images/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ecr-bridge-screenshots-'));
const journal = new SqliteJournal({ path: join(dir, 'journal.db') });
const tenants = new SqliteTenantStore(journal);
const shop = tenants.addMerchant('corner-shop');
for (const id of ['29531204', '29531205', '29531206', '29531207'])
  tenants.addTerminal({ terminalId: id, merchant: 'corner-shop', terminalType: 'Valor' });
const gateway = await new Gateway({ journal, tenants, tcpPort: 0, httpPort: 0 }).start();
const simulator = await new EconduitSimulator({
  endpoints: [{ host: '127.0.0.1', port: gateway.tcpPort }],
  terminalId: '29531204',
  count: 3,
  cardDelayMs: 400,
}).start(5_000);
const base = `http://127.0.0.1:${gateway.httpPort}`;
const run = async (refID: string, amount: string, terminalId: string) => {
  const query = new URLSearchParams({
    command: 'Sale',
    key: shop.key,
    password: shop.password,
    amount,
    refID,
    terminalId,
  });
  await fetch(`${base}/services/api.asmx/runTransaction?${query.toString()}`);
};
await run('INV-1041', '12.50', '29531204');
await run('INV-1042', '7.51', '29531205');
await run('INV-1043', '3.20', '29531206');
await run('INV-1044', '48.00', '29531204');
// A sale a crashed gateway left unknown, for the detail view.
const owner = { pid: 999_999, token: 'crashed' };
const claim = journal.claim({
  merchantId: 'corner-shop',
  terminalId: '29531205',
  reference: 'INV-1045',
  kind: 'sale',
  amountMinor: 2390,
  currency: 'USD',
  method: 'card',
  owner,
});
if (claim.type === 'claimed') {
  journal.markSent(claim.row.id, owner);
  journal.complete(claim.row.id, owner, {
    outcome: 'unknown',
    errorCode: 'OUTCOME_UNKNOWN',
    message: 'the gateway stopped before the terminal answered',
  });
}

const browser = await launchBrowser();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  await page.goto(`${base}/`);
  await page.waitForSelector('#login-form');
  await page.screenshot({ path: join(OUT, 'dashboard-login.png') });
  await page.getByLabel('API key').fill(shop.key);
  await page.getByLabel('Password').fill(shop.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForSelector('#terminals [data-terminal-id="29531207"]');
  await page.getByLabel('Terminal', { exact: true }).selectOption('29531206');
  await page.getByLabel('Amount').fill('5.00');
  await page.getByRole('button', { name: 'Send test payment' }).click();
  await page.waitForSelector('#payment-progress[data-outcome="approved"]');
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(OUT, 'dashboard-overview.png'), fullPage: true });
  await page.locator('#terminals').screenshot({ path: join(OUT, 'dashboard-terminals.png') });
  await page.locator('#test-payment').screenshot({ path: join(OUT, 'dashboard-payment.png') });
  await page.locator('#transactions').screenshot({ path: join(OUT, 'dashboard-transactions.png') });
  await page
    .locator('#transactions tr[data-reference="INV-1045"]')
    .getByRole('button')
    .first()
    .click();
  await page.waitForSelector('#resolve-form');
  await page.getByLabel('Reason').fill('Acquirer report of 23 Nov shows it captured');
  await page.waitForTimeout(200);
  await page.screenshot({ path: join(OUT, 'dashboard-detail.png') });
  console.log(`screenshots written to ${OUT}`);
} finally {
  await browser.close();
  await simulator.stop();
  await gateway.close();
  journal.close();
  rmSync(dir, { recursive: true, force: true });
}
