import { afterEach, describe, expect, it } from 'vitest';
import { addressKey, LoginGuard } from '../../src/http/login-guard.js';
import { letters, runCleanups, startConnector, startGateway } from './support.js';

afterEach(runCleanups);

// Small allowances; the defaults (5 per address and login, 50 per address, a minute) are the
// same code with other numbers. The guards' clock is the test's: however slowly a loaded machine
// runs the guesses they stay in one window, and "after the window" is the clock moved past it.
const PER_LOGIN = 3;
const PER_ADDRESS = 6;
const WINDOW_MS = 60_000;
let clockMs = Date.now();
const guard = (loopbackPerLoginOnly = false) =>
  new LoginGuard({
    perLogin: PER_LOGIN,
    perAddress: PER_ADDRESS,
    windowMs: WINDOW_MS,
    now: () => clockMs,
    loopbackPerLoginOnly,
  });
const afterTheWindow = () => {
  clockMs += WINDOW_MS + 1;
};

const basic = (login: string, password: string) =>
  `Basic ${Buffer.from(`${login}:${password}`).toString('base64')}`;

/** A desktop connector (with its dashboard) with the test's guard, and a call to `/version`. */
async function connector(loopbackPerLoginOnly = false) {
  const { base } = await startConnector({ guard: guard(loopbackPerLoginOnly) });
  const version = (login: string, password: string) =>
    fetch(`${base}/version`, { headers: { authorization: basic(login, password) } });
  return { base, version };
}

/** The dashboard's sign-in form (both services have it). */
function dashboardLogin(base: string, login: string, password: string) {
  return fetch(`${base}/ui/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ login, password }),
  });
}

/** Checks a refusal for too many failures; returns its Retry-After in seconds. */
async function expectLimited(response: Response): Promise<number> {
  expect(response.status).toBe(429);
  const wait = Number(response.headers.get('retry-after'));
  expect(wait).toBeGreaterThanOrEqual(1);
  const body = (await response.json()) as Record<string, unknown>;
  expect(JSON.stringify(body)).toContain('RATE_LIMITED');
  return wait;
}

describe('brute force: the connector (Basic Auth and its dashboard share one allowance)', () => {
  it(`after ${PER_LOGIN} wrong passwords even the right one is refused (429, Retry-After), on the dashboard too; it works again after the window`, async () => {
    const { base, version } = await connector();
    for (let i = 0; i < PER_LOGIN; i++)
      expect((await version('log', `guess${letters(6)}`)).status).toBe(401);
    await expectLimited(await version('log', `guess${letters(6)}`));
    // The guard's clock stands still: the whole window is left, and both edges say so.
    expect(await expectLimited(await version('log', 'pwd'))).toBe(WINDOW_MS / 1000);
    expect(await expectLimited(await dashboardLogin(base, 'log', 'pwd'))).toBe(WINDOW_MS / 1000);
    afterTheWindow();
    expect((await version('log', 'pwd')).status).toBe(200);
    expect((await dashboardLogin(base, 'log', 'pwd')).status).toBe(200);
  });

  it(`varying the login buys no more guesses: ${PER_ADDRESS} failures from one address refuse every login`, async () => {
    const { version } = await connector();
    for (let i = 0; i < PER_ADDRESS; i++)
      expect((await version(`user${letters(6)}`, `guess${letters(6)}`)).status).toBe(401);
    await expectLimited(await version(`user${letters(6)}`, 'pwd'));
    await expectLimited(await version('log', 'pwd'));
    afterTheWindow();
    expect((await version('log', 'pwd')).status).toBe(200);
  });

  it(`on loopback (the connector's default) failures under made-up logins lock no one out: past ${PER_ADDRESS} of them the POS still signs in`, async () => {
    const { version } = await connector(true);
    for (let i = 0; i < PER_ADDRESS + 5; i++)
      expect((await version(`user${letters(6)}`, `guess${letters(6)}`)).status).toBe(401);
    expect((await version('log', 'pwd')).status).toBe(200);
    // The trade-off: the POS's own login is still limited per login, from any local process.
    for (let i = 0; i < PER_LOGIN; i++)
      expect((await version('log', `guess${letters(6)}`)).status).toBe(401);
    await expectLimited(await version('log', 'pwd'));
  });

  it('off loopback, the per-address count stays whatever the option', async () => {
    const limited = guard(true);
    for (let i = 0; i < PER_ADDRESS; i++)
      await limited.attempt('203.0.113.7', `user${letters(6)}`, 'x', () =>
        Promise.resolve(undefined),
      );
    expect(limited.retryAfter('203.0.113.7', 'log')).toBeGreaterThan(0);
    expect(limited.retryAfter('127.0.0.1', 'log')).toBe(0);
  });

  it('a burst of parallel guesses gets no more than the allowance', async () => {
    const { version } = await connector();
    const statuses = await Promise.all(
      Array.from({ length: 20 }, async () => (await version('log', `guess${letters(6)}`)).status),
    );
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(PER_LOGIN);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(20 - PER_LOGIN);
  });
});

describe('brute force: the gateway (runTransaction, /api/v1 and the dashboard share one allowance)', () => {
  async function gateway() {
    const started = await startGateway({ api: { guard: guard() } });
    const base = `http://127.0.0.1:${started.gateway.httpPort}`;
    const checkStatus = (key: string, password: string) =>
      fetch(
        `${base}/services/api.asmx/checkStatus?${new URLSearchParams({
          key,
          password,
          refID: `INV-${letters(6)}`,
        }).toString()}`,
      );
    return { ...started, base, checkStatus };
  }

  it(`after ${PER_LOGIN} wrong passwords for a key, the right one is refused everywhere (429); it works again after the window`, async () => {
    const { base, merchant, checkStatus } = await gateway();
    for (let i = 0; i < PER_LOGIN; i++) {
      const wrong = await checkStatus(merchant.key, `guess${letters(8)}`);
      expect(wrong.status).toBe(401);
      expect(await wrong.json()).toMatchObject({ ErrorCode: 'UNAUTHORIZED' });
    }
    await expectLimited(await checkStatus(merchant.key, `guess${letters(8)}`));
    await expectLimited(await checkStatus(merchant.key, merchant.password));
    await expectLimited(
      await fetch(`${base}/api/v1/terminals`, {
        headers: { authorization: basic(merchant.key, merchant.password) },
      }),
    );
    await expectLimited(await dashboardLogin(base, merchant.key, merchant.password));
    // Once the window has passed the right pair gets through (NOT_FOUND: no such refID).
    afterTheWindow();
    expect((await checkStatus(merchant.key, merchant.password)).status).toBe(404);
  });

  it('wrong sign-ins on the dashboard count against the POS API too', async () => {
    const { base, merchant, checkStatus } = await gateway();
    for (let i = 0; i < PER_LOGIN; i++)
      expect((await dashboardLogin(base, merchant.key, `guess${letters(8)}`)).status).toBe(401);
    await expectLimited(await checkStatus(merchant.key, merchant.password));
  });

  it(`guessing keys buys no more: ${PER_ADDRESS} failures from one address refuse every key`, async () => {
    const { merchant, checkStatus } = await gateway();
    for (let i = 0; i < PER_ADDRESS; i++)
      expect((await checkStatus(`ek_${letters(24)}`, `guess${letters(8)}`)).status).toBe(401);
    await expectLimited(await checkStatus(merchant.key, merchant.password));
  });

  it('a burst of parallel guesses gets no more than the allowance (checks under way count)', async () => {
    const { merchant, checkStatus } = await gateway();
    const statuses = await Promise.all(
      Array.from(
        { length: 20 },
        async () => (await checkStatus(merchant.key, `guess${letters(8)}`)).status,
      ),
    );
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(PER_LOGIN);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(20 - PER_LOGIN);
  });
});

describe('brute force: what counts as one address', () => {
  it('IPv4 (also IPv4-mapped) is itself; IPv6 counts per /64, however it is written', () => {
    expect(addressKey('203.0.113.7')).toBe('203.0.113.7');
    expect(addressKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:0db8:0001:0002:ffff:ffff:ffff:fffe')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('not:an:address')).toBe('not:an:address');
  });

  it('rotating addresses inside one IPv6 /64 buys a guesser no more tries', async () => {
    const limited = guard();
    const miss = async () => undefined;
    for (let i = 0; i < PER_ADDRESS; i++)
      await limited.attempt(
        `2001:db8:1:2::${(i + 1).toString(16)}`,
        `user${letters(6)}`,
        'x',
        miss,
      );
    await expect(
      limited.attempt('2001:db8:1:2:ffff::9', 'log', 'pwd', async () => 'ok'),
    ).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    // Another /64 is another subscriber.
    await expect(limited.attempt('2001:db8:1:3::1', 'log', 'pwd', async () => 'ok')).resolves.toBe(
      'ok',
    );
  });
});
