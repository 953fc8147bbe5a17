import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/core/logger.js';
import { ClusterNode } from '../../src/gateway/cluster/node.js';
import { Gateway } from '../../src/gateway/gateway.js';
import { PostgresTenantStore } from '../../src/gateway/postgres-tenants.js';
import { SqliteTenantStore, type TenantStore } from '../../src/gateway/tenants.js';
import { PostgresJournal } from '../../src/journal/postgres-journal.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import {
  decodeRegister,
  decodeRegisterCommand,
  decodeTerminalMessage,
  encodeRegister,
} from '../../src/protocols/econduit/messages.js';
import { EconduitSimulator } from '../../src/simulators/econduit/simulator.js';
import { tempDir, thrownBy, waitFor } from '../helpers.js';
import { letters, NATS_URL, PG_URL, requireClusterServers } from './cluster-support.js';
import { RawTerminal } from './raw-terminal.js';

// Issue 17, part 1: a terminal provisioned with a registration secret (TerminalSecret in its
// Register) beats an impostor from any address. Real sockets on 127.0.0.x, a real SQLite file,
// the machine's PostgreSQL and NATS for the cluster store.

const SECRET = 'Real-terminal_secret.0123';
const WRONG = 'Impostor-guess_secret.999';
const REGISTRATION = {
  terminalType: 'Valor',
  terminalModel: 'VL100',
  terminalId: 'IDT-A',
  softwareVersion: 'v1',
  ackHeartbeat: true,
};

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A Register as a hand-driven terminal sends it, with `secret` as TerminalSecret when given. */
function registerText(terminalId: string, secret?: string): string {
  return encodeRegister({ ...REGISTRATION, terminalId }, secret);
}

/** Registers on a fresh connection from `from` and returns the answer (the socket stays open). */
async function registerFrom(port: number, from: string, terminalId: string, secret?: string) {
  const raw = await RawTerminal.connect(port, from);
  cleanups.push(() => raw.destroy());
  raw.send(registerText(terminalId, secret));
  return { raw, answer: await raw.next().catch(() => 'closed') };
}

/** A gateway on a fresh SQLite journal, with one merchant, its log lines kept. */
async function sqliteGateway() {
  const journal = new SqliteJournal({ path: join(tempDir('identity-'), 'journal.db') });
  cleanups.push(() => journal.close());
  const tenants = new SqliteTenantStore(journal);
  const shop = tenants.addMerchant('shop');
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (l) => lines.push(l) } });
  const gateway = await new Gateway({ journal, tenants, tcpPort: 0, httpPort: 0, logger }).start();
  cleanups.push(() => gateway.close());
  return { journal, tenants, shop, gateway, lines };
}

async function sale(gateway: Gateway, shop: { key: string; password: string }, refID: string) {
  const query = new URLSearchParams({
    command: 'Sale',
    key: shop.key,
    password: shop.password,
    amount: '1.00',
    refID,
    terminalId: 'IDT-A',
  });
  const response = await fetch(
    `http://127.0.0.1:${gateway.httpPort}/services/api.asmx/runTransaction?${query.toString()}`,
  );
  return (await response.json()) as { ResultCode: string };
}

async function metric(gateway: Gateway, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${gateway.httpPort}/metrics`)).text();
  const escaped = `${name}${labels}`.replace(/[{}"]/g, (c) => `\\${c}`);
  return Number(new RegExp(`^${escaped} (\\d+)$`, 'm').exec(text)?.[1]);
}

describe('TerminalSecret on the wire', () => {
  it('is read apart from the registration: never in the Registration, the views or the decoded message', () => {
    const text = registerText('IDT-A', SECRET);
    expect(JSON.parse(text)).toMatchObject({ TerminalID: 'IDT-A', TerminalSecret: SECRET });
    const command = decodeRegisterCommand(text);
    expect(command.terminalSecret).toBe(SECRET);
    expect(command.registration).toEqual(REGISTRATION);
    expect(JSON.stringify(decodeRegister(text))).not.toContain(SECRET);
    expect(JSON.stringify(decodeTerminalMessage(text))).not.toContain(SECRET);
    // Absent or empty: no secret presented; the seed's Register is unchanged.
    expect(decodeRegisterCommand(registerText('IDT-A')).terminalSecret).toBeUndefined();
    expect(registerText('IDT-A')).not.toContain('TerminalSecret');
    expect(
      decodeRegisterCommand(
        JSON.stringify({ ...JSON.parse(registerText('IDT-A')), TerminalSecret: '' }),
      ).terminalSecret,
    ).toBeUndefined();
  });

  it('a TerminalSecret that is not a string or is over 128 characters is refused naming the field, never quoting it', () => {
    const long = 'S'.repeat(129);
    const tooLong = thrownBy(() => decodeRegister(registerText('IDT-A', long)));
    expect(tooLong).toMatchObject({ code: 'PROTOCOL_ERROR', field: 'TerminalSecret' });
    expect(tooLong.message).not.toContain(long);
    const number = JSON.stringify({ ...JSON.parse(registerText('IDT-A')), TerminalSecret: 42 });
    expect(thrownBy(() => decodeRegister(number))).toMatchObject({
      field: 'TerminalSecret',
      rule: 'must be a string',
    });
    expect(
      decodeRegisterCommand(registerText('IDT-A', 'S'.repeat(128))).terminalSecret,
    ).toHaveLength(128);
  });
});

describe('gateway: a secret-holding terminal beats an impostor from any address', () => {
  it('impostors without the secret or with a wrong one get FAILED-REGISTRATION and no sale, while the real terminal is away and while it is live; the real one charges every sale; refusals counted and logged without the secret', async () => {
    const { tenants, shop, gateway, lines } = await sqliteGateway();
    tenants.addTerminal({
      terminalId: 'IDT-A',
      merchant: 'shop',
      terminalType: 'Valor',
      secret: SECRET,
    });

    // The real terminal is away: before, anyone knowing the serial registered it now.
    expect((await registerFrom(gateway.tcpPort, '127.0.0.2', 'IDT-A')).answer).toBe(
      'FAILED-REGISTRATION',
    );
    expect((await registerFrom(gateway.tcpPort, '127.0.0.3', 'IDT-A', WRONG)).answer).toBe(
      'FAILED-REGISTRATION',
    );
    expect(gateway.listener.isOnline('IDT-A')).toBe(false);

    const real = await new EconduitSimulator({
      endpoints: [{ host: '127.0.0.1', port: gateway.tcpPort }],
      terminalId: 'IDT-A',
      terminalSecret: SECRET,
    }).start(10_000);
    cleanups.push(() => real.stop());
    await waitFor(() => gateway.listener.isOnline('IDT-A'), 10_000, 'the real terminal online');

    // Impostors from two addresses, a fresh connection every 50 ms, without and with a guess.
    let stop = false;
    let registered = 0;
    let attempts = 0;
    const impostor = (async () => {
      while (!stop) {
        const from = attempts % 2 === 0 ? '127.0.0.2' : '127.0.0.3';
        const raw = await RawTerminal.connect(gateway.tcpPort, from);
        raw.send(registerText('IDT-A', attempts % 2 === 0 ? undefined : WRONG));
        attempts++;
        if ((await raw.next(2_000).catch(() => 'closed')) === 'OK-REGISTRATION') registered++;
        raw.destroy();
        await sleep(50);
      }
    })();
    cleanups.push(async () => {
      stop = true;
      await impostor;
    });
    for (let i = 1; i <= 8; i++)
      expect((await sale(gateway, shop, `SEC-${i}`)).ResultCode).toBe('Approved');
    stop = true;
    await impostor;

    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(registered).toBe(0);
    expect(real.ledger.count).toBe(8);
    const refused = gateway.listener.stats.refusedCredentials;
    expect(refused['secret-missing']).toBeGreaterThanOrEqual(2);
    expect(refused['secret-wrong']).toBeGreaterThanOrEqual(2);
    // The live-terminal rule never had to answer: the secret decided first.
    expect(gateway.listener.stats.refusedFromElsewhere).toBe(0);
    const counted = 'ecr_gateway_registrations_refused_credentials_total';
    expect(await metric(gateway, counted, '{reason="secret-missing"}')).toBe(
      refused['secret-missing'],
    );
    expect(await metric(gateway, counted, '{reason="secret-wrong"}')).toBe(refused['secret-wrong']);

    const log = lines.join('');
    expect(log).toContain('TerminalSecret: is required for this terminal');
    expect(log).toContain('TerminalSecret: is not this terminal’s secret');
    const warned = lines.filter((l) => l.includes('FAILED-REGISTRATION'));
    expect(warned.length).toBeGreaterThan(0);
    expect(warned.every((l) => JSON.parse(l).level === 40)).toBe(true);
    expect(log).not.toContain(SECRET);
    expect(log).not.toContain(WRONG);
  });

  it('the real terminal, with its secret, takes its place from a new address at once, while its old connection is live; counted', async () => {
    const { tenants, gateway, lines } = await sqliteGateway();
    tenants.addTerminal({
      terminalId: 'IDT-A',
      merchant: 'shop',
      terminalType: 'Valor',
      secret: SECRET,
    });
    const old = await registerFrom(gateway.tcpPort, '127.0.0.4', 'IDT-A', SECRET);
    expect(old.answer).toBe('OK-REGISTRATION');
    // Live: it just registered (within its heartbeat window).
    const moved = await registerFrom(gateway.tcpPort, '127.0.0.5', 'IDT-A', SECRET);
    expect(moved.answer).toBe('OK-REGISTRATION');
    expect(gateway.listener.terminal('IDT-A')?.remote).toMatch(/^127\.0\.0\.5:/);
    await old.raw.closed;
    expect(gateway.listener.stats.replacedVerified).toBe(1);
    expect(await metric(gateway, 'ecr_gateway_registrations_replaced_verified_total')).toBe(1);
    // A registration without the secret from the old address is refused, live terminal or not.
    expect((await registerFrom(gateway.tcpPort, '127.0.0.4', 'IDT-A')).answer).toBe(
      'FAILED-REGISTRATION',
    );
    expect(gateway.listener.terminal('IDT-A')?.remote).toMatch(/^127\.0\.0\.5:/);
    expect(lines.join('')).not.toContain(SECRET);
  });

  it('rotating the secret refuses the old one at the next Register; clearing it lets the serial alone register again; a secret sent to a terminal without one is ignored', async () => {
    const { tenants, gateway } = await sqliteGateway();
    tenants.addTerminal({
      terminalId: 'IDT-A',
      merchant: 'shop',
      terminalType: 'Valor',
      secret: SECRET,
    });
    const rotated = 'Rotated-secret_value.42abc';
    expect(tenants.updateTerminalIdentity('IDT-A', { secret: rotated })).toMatchObject({
      hasSecret: true,
    });
    expect((await registerFrom(gateway.tcpPort, '127.0.0.1', 'IDT-A', SECRET)).answer).toBe(
      'FAILED-REGISTRATION',
    );
    const agent = await new EconduitSimulator({
      endpoints: [{ host: '127.0.0.1', port: gateway.tcpPort }],
      terminalId: 'IDT-A',
      terminalSecret: rotated,
    }).start(10_000);
    expect(gateway.listener.isOnline('IDT-A')).toBe(true);
    await agent.stop();
    await waitFor(() => !gateway.listener.isOnline('IDT-A'), 5_000, 'offline');

    expect(tenants.updateTerminalIdentity('IDT-A', { secret: null })).toMatchObject({
      hasSecret: false,
    });
    expect((await registerFrom(gateway.tcpPort, '127.0.0.1', 'IDT-A')).answer).toBe(
      'OK-REGISTRATION',
    );
    tenants.addTerminal({ terminalId: 'IDT-B', merchant: 'shop', terminalType: 'Valor' });
    expect((await registerFrom(gateway.tcpPort, '127.0.0.1', 'IDT-B', WRONG)).answer).toBe(
      'OK-REGISTRATION',
    );
    expect(gateway.listener.stats.refusedCredentials['secret-wrong']).toBe(1);
  });
});

/** The same checks on either store: only a scrypt hash is kept, and it is never read out. */
async function storeKeepsOnlyAHash(
  tenants: TenantStore,
  rawHash: (terminalId: string) => Promise<string | null>,
): Promise<void> {
  await tenants.addMerchant('shop');
  const added = await tenants.addTerminal({
    terminalId: 'IDT-H',
    merchant: 'shop',
    terminalType: 'Valor',
    secret: SECRET,
    requireCertificate: true,
  });
  expect(added).toMatchObject({ hasSecret: true, requireCertificate: true });
  expect(JSON.stringify(added)).not.toContain('scrypt');
  const hash = await rawHash('IDT-H');
  expect(hash).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
  expect(hash).not.toContain(SECRET);
  expect(await tenants.terminal('IDT-H')).toEqual(added);
  expect(JSON.stringify(await tenants.allTerminals())).not.toContain('scrypt');
  expect(await tenants.checkTerminalSecret('IDT-H', SECRET)).toBe(true);
  expect(await tenants.checkTerminalSecret('IDT-H', WRONG)).toBe(false);
  expect(await tenants.checkTerminalSecret('IDT-NONE', SECRET)).toBe(false);

  // A bad secret names the field and the rule and writes nothing.
  const bad = await Promise.resolve()
    .then(() =>
      tenants.addTerminal({
        terminalId: 'IDT-X',
        merchant: 'shop',
        terminalType: 'V',
        secret: 'short',
      }),
    )
    .catch((error: unknown) => error);
  expect(bad).toMatchObject({
    code: 'INVALID_INPUT',
    field: 'secret',
    rule: 'must be 16–128 characters: letters, digits, . _ ~ + / = -',
  });
  expect(await tenants.terminal('IDT-X')).toBeUndefined();

  // Rotate, clear, change the requirement; an unknown terminal is NOT_FOUND.
  await tenants.updateTerminalIdentity('IDT-H', { secret: 'A-second-secret-of-enough-length' });
  expect(await rawHash('IDT-H')).not.toBe(hash);
  expect(await tenants.checkTerminalSecret('IDT-H', SECRET)).toBe(false);
  expect(await tenants.checkTerminalSecret('IDT-H', 'A-second-secret-of-enough-length')).toBe(true);
  expect(
    await tenants.updateTerminalIdentity('IDT-H', { secret: null, requireCertificate: false }),
  ).toMatchObject({ hasSecret: false, requireCertificate: false });
  expect(await rawHash('IDT-H')).toBeNull();
  expect(await tenants.checkTerminalSecret('IDT-H', SECRET)).toBe(false);
  const missing = await Promise.resolve()
    .then(() => tenants.updateTerminalIdentity('IDT-NONE', { requireCertificate: true }))
    .catch((error: unknown) => error);
  expect(missing).toMatchObject({ code: 'NOT_FOUND', field: 'terminalId' });
}

describe('the tenant stores keep only a scrypt hash of a terminal secret', () => {
  it('SQLite (migration 9): the file holds the hash, never the secret', async () => {
    const path = join(tempDir('identity-'), 'journal.db');
    const journal = new SqliteJournal({ path });
    cleanups.push(() => journal.close());
    const tenants = new SqliteTenantStore(journal);
    await storeKeepsOnlyAHash(tenants, (id) =>
      Promise.resolve(
        (
          journal.database
            .prepare('SELECT secret_hash FROM gateway_terminals WHERE terminal_id = ?')
            .get(id) as { secret_hash: string | null }
        ).secret_hash,
      ),
    );
  });

  it('PostgreSQL (migration 4), and a cluster node on it honours the secret', async () => {
    await requireClusterServers();
    const schema = `t_${letters(12)}`;
    cleanups.push(async () => {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    });
    const journal = await PostgresJournal.open({ url: PG_URL, schema });
    cleanups.push(() => journal.close());
    const tenants = new PostgresTenantStore(journal.pool);
    await storeKeepsOnlyAHash(tenants, async (id) => {
      const result = await journal.pool.query<{ secret_hash: string | null }>(
        'SELECT secret_hash FROM gateway_terminals WHERE terminal_id = $1',
        [id],
      );
      return result.rows[0]?.secret_hash ?? null;
    });

    await tenants.addTerminal({
      terminalId: 'IDT-A',
      merchant: 'shop',
      terminalType: 'Valor',
      secret: SECRET,
    });
    const cluster = await ClusterNode.connect({
      servers: [NATS_URL],
      nodeId: 'node-a',
      subjectPrefix: `ecrt${letters(10)}`,
    });
    cleanups.push(() => cluster.close());
    const gateway = await new Gateway({
      journal,
      tenants,
      cluster,
      tcpPort: 0,
      httpPort: 0,
    }).start();
    cleanups.push(() => gateway.close());
    expect((await registerFrom(gateway.tcpPort, '127.0.0.2', 'IDT-A', WRONG)).answer).toBe(
      'FAILED-REGISTRATION',
    );
    expect((await registerFrom(gateway.tcpPort, '127.0.0.2', 'IDT-A')).answer).toBe(
      'FAILED-REGISTRATION',
    );
    const real = await new EconduitSimulator({
      endpoints: [{ host: '127.0.0.1', port: gateway.tcpPort }],
      terminalId: 'IDT-A',
      terminalSecret: SECRET,
    }).start(10_000);
    cleanups.push(() => real.stop());
    await waitFor(() => gateway.listener.isOnline('IDT-A'), 10_000, 'online on the cluster node');
    expect(gateway.listener.stats.refusedCredentials).toMatchObject({
      'secret-wrong': 1,
      'secret-missing': 1,
    });
  });
});
