import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../../src/journal/migrations.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import {
  MAX_CREDENTIAL_LENGTH,
  SqliteTenantStore,
  type TenantStoreOptions,
} from '../../src/gateway/tenants.js';
import { tempDir, thrownBy } from '../helpers.js';

const journals: SqliteJournal[] = [];

afterEach(() => {
  for (const journal of journals.splice(0)) journal.close();
});

function openJournal(path = join(tempDir('tenants-'), 'ecr-bridge.db')): SqliteJournal {
  const journal = new SqliteJournal({ path, now: () => 1_700_000_000_000 });
  journals.push(journal);
  return journal;
}

function open(options: TenantStoreOptions = {}, path?: string) {
  const journal = openJournal(path);
  return { journal, tenants: new SqliteTenantStore(journal, options), path };
}

function rows(journal: SqliteJournal, table: 'merchants' | 'gateway_terminals'): unknown[] {
  return journal.database.prepare(`SELECT * FROM ${table}`).all();
}

describe('SqliteTenantStore: merchants', () => {
  it('adds a merchant with a letters-only key and password; lists merchants by name; survives a reopen', () => {
    const path = join(tempDir('tenants-'), 'ecr-bridge.db');
    const { journal, tenants } = open({ now: () => 42 }, path);
    const b = tenants.addMerchant('shop.B');
    const a = tenants.addMerchant('shop-a_1');
    expect(a.key).toMatch(/^ek_[A-Za-z]{24}$/);
    expect(a.password).toMatch(/^[A-Za-z]{32}$/);
    expect(a.key).not.toBe(b.key);
    expect(a.password).not.toBe(b.password);
    expect(a.merchant).toEqual({ name: 'shop-a_1', apiKey: a.key, createdAt: 42 });
    expect(tenants.merchants().map((m) => m.name)).toEqual(['shop-a_1', 'shop.B']);
    expect(tenants.merchant('shop.B')).toEqual(b.merchant);
    expect(tenants.merchant('nobody')).toBeUndefined();
    // Nothing handed back after creation carries the password.
    expect(JSON.stringify(tenants.merchants())).not.toContain(a.password);
    const listed = tenants.merchants();
    journal.close();
    expect(new SqliteTenantStore(openJournal(path)).merchants()).toEqual(listed);
  });

  it('stores a salted scrypt hash (scrypt$16384$8$1$salt$hash), never the password', () => {
    const { journal, tenants } = open();
    const added = tenants.addMerchant('m');
    const [row] = rows(journal, 'merchants') as { password_hash: string; api_key: string }[];
    expect(row?.api_key).toBe(added.key);
    const parts = (row?.password_hash ?? '').split('$');
    expect(parts.slice(0, 4)).toEqual(['scrypt', '16384', '8', '1']);
    expect(Buffer.from(parts[4] ?? '', 'base64')).toHaveLength(16);
    expect(Buffer.from(parts[5] ?? '', 'base64')).toHaveLength(32);
    expect(row?.password_hash).not.toContain(added.password);
    const bytes = JSON.stringify(journal.database.prepare('SELECT * FROM merchants').raw().all());
    expect(bytes).not.toContain(added.password);
  });

  it.each([
    ['', '0 characters'],
    ['x'.repeat(65), '65 characters'],
    ['shop 1', '" " at position 5'],
    ['shop/1', '"/" at position 5'],
    ['café', '"é" at position 4'],
    ['a\nb', '"\\n" at position 2'],
  ])(
    'refuses the name %j (INVALID_INPUT naming the field and rule) and writes nothing',
    (name, detail) => {
      const { journal, tenants } = open();
      const error = thrownBy(() => tenants.addMerchant(name));
      expect(error).toMatchObject({ code: 'INVALID_INPUT', field: 'name' });
      expect(error.message).toContain('name: must be 1–64 characters: letters, digits, . _ -');
      expect(error.message).toContain(detail);
      expect(rows(journal, 'merchants')).toEqual([]);
    },
  );

  it('accepts a 64-character name; refuses a name taken already, leaving the first merchant as it was', () => {
    const { journal, tenants } = open();
    expect(tenants.addMerchant('x'.repeat(64)).merchant.name).toHaveLength(64);
    const first = tenants.addMerchant('shop');
    const before = rows(journal, 'merchants');
    const error = thrownBy(() => tenants.addMerchant('shop'));
    expect(error).toMatchObject({ code: 'INVALID_INPUT', field: 'name', rule: 'must be unique' });
    expect(rows(journal, 'merchants')).toEqual(before);
    expect(tenants.merchant('shop')?.apiKey).toBe(first.key);
  });

  it('refuses unknown and out-of-range options by name', () => {
    const journal = openJournal();
    expect(
      thrownBy(() => new SqliteTenantStore(journal, { cacheTTL: 5 } as TenantStoreOptions)),
    ).toMatchObject({ code: 'INVALID_INPUT', field: 'cacheTTL' });
    expect(thrownBy(() => new SqliteTenantStore(journal, { cacheTtlMs: -1 }))).toMatchObject({
      code: 'INVALID_INPUT',
      field: 'cacheTtlMs',
    });
  });
});

describe('SqliteTenantStore: terminals', () => {
  it('adds terminals to merchants; finds them by id, by merchant and all', () => {
    const { tenants } = open({ now: () => 7 });
    tenants.addMerchant('b');
    tenants.addMerchant('a');
    const t2 = tenants.addTerminal({ terminalId: 'SN-2', merchant: 'a', terminalType: 'semi' });
    tenants.addTerminal({ terminalId: 'SN-1', merchant: 'a', terminalType: 'semi' });
    tenants.addTerminal({ terminalId: 'SN-0', merchant: 'b', terminalType: 'Castles.S1F2' });
    expect(t2).toEqual({
      terminalId: 'SN-2',
      merchant: 'a',
      terminalType: 'semi',
      payload: 'semi',
      hasSecret: false,
      requireCertificate: false,
      createdAt: 7,
    });
    expect(tenants.terminal('SN-2')).toEqual(t2);
    expect(tenants.terminal('SN-9')).toBeUndefined();
    expect(tenants.terminalsOf('a').map((t) => t.terminalId)).toEqual(['SN-1', 'SN-2']);
    expect(tenants.terminalsOf('nobody')).toEqual([]);
    expect(tenants.allTerminals().map((t) => `${t.merchant}/${t.terminalId}`)).toEqual([
      'a/SN-1',
      'a/SN-2',
      'b/SN-0',
    ]);
  });

  it('a terminal id is unique across all merchants: a second registration is refused and changes nothing', () => {
    const { journal, tenants } = open();
    tenants.addMerchant('a');
    tenants.addMerchant('b');
    tenants.addTerminal({ terminalId: 'SN-1', merchant: 'a', terminalType: 'semi' });
    const before = rows(journal, 'gateway_terminals');
    for (const merchant of ['a', 'b']) {
      const error = thrownBy(() =>
        tenants.addTerminal({ terminalId: 'SN-1', merchant, terminalType: 'other' }),
      );
      expect(error).toMatchObject({ code: 'INVALID_INPUT', field: 'terminalId' });
      expect(error.message).toContain('must be unique across all merchants');
    }
    expect(rows(journal, 'gateway_terminals')).toEqual(before);
  });

  it('a terminal for a merchant that does not exist is NOT_FOUND naming the merchant; nothing written', () => {
    const { journal, tenants } = open();
    const error = thrownBy(() =>
      tenants.addTerminal({ terminalId: 'SN-1', merchant: 'ghost', terminalType: 'semi' }),
    );
    expect(error).toMatchObject({ code: 'NOT_FOUND', field: 'merchant' });
    expect(error.message).toBe('merchant: must name an existing merchant (no merchant ghost)');
    expect(rows(journal, 'gateway_terminals')).toEqual([]);
  });

  it.each([
    [{ terminalId: '', merchant: 'a', terminalType: 'semi' }, 'terminalId'],
    [{ terminalId: 'S'.repeat(65), merchant: 'a', terminalType: 'semi' }, 'terminalId'],
    [{ terminalId: 'SN 1', merchant: 'a', terminalType: 'semi' }, 'terminalId'],
    [{ terminalId: 'SN-1', merchant: 'a', terminalType: '' }, 'terminalType'],
    [{ terminalId: 'SN-1', merchant: 'a', terminalType: 'se;mi' }, 'terminalType'],
    [{ terminalId: 'SN-1', merchant: 'a b', terminalType: 'semi' }, 'merchant'],
    [{ terminalId: 'SN-1', merchant: 'a', terminalType: 'Valor', payload: 'json' }, 'payload'],
  ])('refuses %j naming %s; nothing written', (input, field) => {
    const { journal, tenants } = open();
    tenants.addMerchant('a');
    expect(thrownBy(() => tenants.addTerminal(input))).toMatchObject({
      code: 'INVALID_INPUT',
      field,
    });
    expect(rows(journal, 'gateway_terminals')).toEqual([]);
  });

  it('a terminal provisioned with payload semi, or with none, reads back with SEMI payloads', () => {
    const { tenants } = open();
    tenants.addMerchant('a');
    tenants.addTerminal({ terminalId: 'SN-1', merchant: 'a', terminalType: 'T', payload: 'semi' });
    tenants.addTerminal({ terminalId: 'SN-2', merchant: 'a', terminalType: 'T' });
    expect(tenants.terminalsOf('a').map((t) => t.payload)).toEqual(['semi', 'semi']);
  });
});

describe('SqliteTenantStore.authenticate', () => {
  it('the right key and password give the merchant; a wrong password, an unknown key, or another merchant’s key with one’s own password give nothing', async () => {
    const { tenants } = open();
    const a = tenants.addMerchant('a');
    const b = tenants.addMerchant('b');
    const answers = await Promise.all([
      tenants.authenticate(a.key, a.password),
      tenants.authenticate(a.key, b.password),
      tenants.authenticate(a.key, `${a.password}x`),
      tenants.authenticate(a.key, ''),
      tenants.authenticate('ek_NoSuchKeyAtAllxxxxxxxxx', a.password),
      tenants.authenticate(b.key, a.password),
      tenants.authenticate(a.key.toUpperCase(), a.password),
      tenants.authenticate('x'.repeat(MAX_CREDENTIAL_LENGTH + 1), a.password),
    ]);
    expect(answers).toEqual([a.merchant, ...Array(7).fill(undefined)]);
    // Only the pair that passed is remembered.
    expect(tenants.cachedCredentials).toBe(1);
  });

  it('an unknown key costs a scrypt like a wrong password (timing does not tell which keys exist)', async () => {
    const { tenants } = open({ cacheTtlMs: 0 });
    const a = tenants.addMerchant('a');
    expect(await tenants.authenticate(a.key, 'WrongPassword')).toBeUndefined();
    expect(tenants.scryptRuns).toBe(1);
    expect(await tenants.authenticate('ek_Unknown', 'WrongPassword')).toBeUndefined();
    expect(tenants.scryptRuns).toBe(2);
    expect(await tenants.authenticate('k'.repeat(MAX_CREDENTIAL_LENGTH + 1), 'x')).toBeUndefined();
    expect(tenants.scryptRuns).toBe(3);
  });

  it('a verified pair is cached: the next checks skip scrypt; a wrong password for a cached key is still refused', async () => {
    const { tenants } = open();
    const a = tenants.addMerchant('a');
    expect(await tenants.authenticate(a.key, a.password)).toEqual(a.merchant);
    expect(tenants.scryptRuns).toBe(1);
    for (let i = 0; i < 5; i++)
      expect(await tenants.authenticate(a.key, a.password)).toEqual(a.merchant);
    expect(tenants.scryptRuns).toBe(1);
    // A wrong password after a cached success: checked with scrypt again, refused, not cached.
    expect(await tenants.authenticate(a.key, `${a.password.slice(1)}Q`)).toBeUndefined();
    expect(tenants.scryptRuns).toBe(2);
    expect(await tenants.authenticate(a.key, a.password)).toEqual(a.merchant);
    expect(tenants.scryptRuns).toBe(2);
    expect(tenants.cachedCredentials).toBe(1);
  });

  it('cached entries expire after cacheTtlMs and the cache keeps at most maxCachedCredentials', async () => {
    let now = 0;
    const { tenants } = open({ cacheTtlMs: 1000, maxCachedCredentials: 1, now: () => now });
    const a = tenants.addMerchant('a');
    const b = tenants.addMerchant('b');
    expect(await tenants.authenticate(a.key, a.password)).toEqual(a.merchant);
    expect(await tenants.authenticate(b.key, b.password)).toEqual(b.merchant);
    expect(tenants.cachedCredentials).toBe(1);
    now = 1000;
    // Expired: dropped on look-up, verified with scrypt again, remembered anew.
    expect(await tenants.authenticate(b.key, `${b.password}x`)).toBeUndefined();
    expect(tenants.cachedCredentials).toBe(0);
    expect(await tenants.authenticate(b.key, b.password)).toEqual(b.merchant);
    expect(tenants.cachedCredentials).toBe(1);
  });

  it('concurrent checks of one pair all pass', async () => {
    const { tenants } = open();
    const a = tenants.addMerchant('a');
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => tenants.authenticate(a.key, a.password)),
    );
    expect(answers).toEqual(Array(5).fill(a.merchant));
  });
});

describe('migration 4', () => {
  it('adds the tenant tables to a version-3 journal, keeping its transactions', () => {
    const path = join(tempDir('tenants-'), 'v3.db');
    const v3 = new Database(path);
    for (const sql of MIGRATIONS.slice(0, 3)) v3.exec(sql);
    v3.pragma('user_version = 3');
    v3.prepare(
      `INSERT INTO transactions (merchant_id, terminal_id, reference, kind, amount_minor, currency, method,
         state, created_at, updated_at, completed_at)
       VALUES ('m', 't', 'OLD-1', 'sale', 2000, 'EUR', 'card', 'approved', 1, 1, 1)`,
    ).run();
    v3.close();
    const journal = openJournal(path);
    expect(journal.findByReference('OLD-1')).toHaveLength(1);
    const tenants = new SqliteTenantStore(journal);
    tenants.addMerchant('m');
    expect(
      tenants.addTerminal({ terminalId: 't', merchant: 'm', terminalType: 'semi' }),
    ).toMatchObject({ terminalId: 't' });
    expect(journal.database.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect(journal.database.pragma('foreign_key_check')).toEqual([]);
  });
});
