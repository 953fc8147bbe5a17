import { createHash, randomBytes, randomInt, scrypt, scryptSync } from 'node:crypto';
import type Database from 'better-sqlite3';
import { z } from 'zod';
import { EcrError, invalid } from '../core/errors.js';
import { MAX_TIMER_MS, parseOptions, wholeNumber } from '../core/options.js';
import { sameSecret } from '../core/secret.js';
import type { Awaitable } from '../journal/journal.js';
import type { SqliteJournal } from '../journal/sqlite-journal.js';
import { DEFAULT_PAYLOAD, validatePayload, type PayloadProtocol } from './provisioning.js';

/**
 * The cloud gateway's tenants (seed 002): merchants, each with an API key and a password the POS
 * sends with every request, and the terminals each merchant owns. Stored in the journal's SQLite
 * file (migration 4); the password only as a scrypt hash.
 */

/** Longest merchant name, terminal id and terminal type (the eConduit Register's TerminalID bound). */
export const MAX_TENANT_ID_LENGTH = 64;
/** Every API key starts with this; 24 random letters follow. */
export const API_KEY_PREFIX = 'ek_';
export const API_KEY_LETTERS = 24;
export const PASSWORD_LETTERS = 32;
/** scrypt cost parameters of new hashes (RFC 7914; OWASP's interactive-login minimum). */
export const SCRYPT_N = 16_384;
export const SCRYPT_R = 8;
export const SCRYPT_P = 1;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** How long a verified key + password is trusted without running scrypt again. */
export const DEFAULT_CREDENTIAL_CACHE_TTL_MS = 60_000;
/** Verified credentials remembered at most; the oldest are forgotten past this. */
export const DEFAULT_MAX_CACHED_CREDENTIALS = 10_000;
/** Longer keys or passwords are refused without a look at the database (same time as any refusal). */
export const MAX_CREDENTIAL_LENGTH = 256;

// Letters only: a credential with digit runs could look like a card number to the card-data scans.
const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const TENANT_ID = /^[A-Za-z0-9._-]+$/;
const ID_RULE = `must be 1–${MAX_TENANT_ID_LENGTH} characters: letters, digits, . _ -`;

export interface Merchant {
  readonly name: string;
  readonly apiKey: string;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
}

export interface GatewayTerminal {
  /** The device serial (the eConduit Register's TerminalID): unique across all merchants. */
  readonly terminalId: string;
  readonly merchant: string;
  /** The `TerminalType` its Register must carry. */
  readonly terminalType: string;
  /** The format of its transaction payloads (SEMI JSON: the only one, so not stored). */
  readonly payload: PayloadProtocol;
  readonly createdAt: number;
}

/** A terminal to provision. */
export interface NewTerminal {
  readonly terminalId: string;
  readonly merchant: string;
  readonly terminalType: string;
  /** @default DEFAULT_PAYLOAD */
  readonly payload?: string;
}

/** A merchant just added, with its credentials: the only time the password is ever returned. */
export interface NewMerchant {
  readonly merchant: Merchant;
  readonly key: string;
  readonly password: string;
}

export interface TenantStore {
  /** Adds a merchant with a fresh key and password; the password is only ever returned here. */
  addMerchant(name: string): Awaitable<NewMerchant>;
  /** Every merchant, by name. */
  merchants(): Awaitable<Merchant[]>;
  merchant(name: string): Awaitable<Merchant | undefined>;
  /** Provisions a terminal: what the gateway accepts from it (its type, its payload format). */
  addTerminal(input: NewTerminal): Awaitable<GatewayTerminal>;
  terminal(terminalId: string): Awaitable<GatewayTerminal | undefined>;
  /** A merchant's terminals, by id ([] for a merchant that does not exist). */
  terminalsOf(merchant: string): Awaitable<GatewayTerminal[]>;
  /** Every terminal, by merchant then id. */
  allTerminals(): Awaitable<GatewayTerminal[]>;
  /**
   * Binds a merchant's transaction reference to a terminal, once and for all (atomic: the
   * database decides between two binders). Returns the terminal it is bound to: `terminalId`,
   * or the one an earlier call bound it to.
   */
  bindReference(merchant: string, reference: string, terminalId: string): Awaitable<string>;
  /** The terminal a merchant's reference is bound to, if any. */
  referenceTerminal(merchant: string, reference: string): Awaitable<string | undefined>;
  /** The merchant whose key and password these are, or undefined. Constant time whatever is wrong. */
  authenticate(key: string, password: string): Promise<Merchant | undefined>;
}

const OPTIONS = z.strictObject({
  /** How long a verified key + password skips scrypt. @default DEFAULT_CREDENTIAL_CACHE_TTL_MS */
  cacheTtlMs: wholeNumber(0, MAX_TIMER_MS).default(DEFAULT_CREDENTIAL_CACHE_TTL_MS),
  /** @default DEFAULT_MAX_CACHED_CREDENTIALS */
  maxCachedCredentials: wholeNumber(0, 1_000_000).default(DEFAULT_MAX_CACHED_CREDENTIALS),
  /** Clock, in milliseconds since the epoch. @default Date.now */
  now: z
    .custom<() => number>((value) => typeof value === 'function', 'must be a function')
    .optional(),
});
export type TenantStoreOptions = z.input<typeof OPTIONS>;

/** `count` letters, each drawn uniformly (randomInt rejects rather than reduces: no modulo bias). */
function randomLetters(count: number): string {
  let text = '';
  for (let i = 0; i < count; i++) text += LETTERS[randomInt(LETTERS.length)] as string;
  return text;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** `scrypt$N$r$p$<salt base64>$<hash base64>`: the parameters travel with the hash. */
interface StoredHash {
  readonly n: number;
  readonly r: number;
  readonly p: number;
  readonly salt: Buffer;
  readonly hash: Buffer;
}

function hashPassword(password: string): string {
  const salt = randomBytes(SALT_BYTES);
  const hash = scryptSync(password, salt, HASH_BYTES, { N: SCRYPT_N, r: SCRYPT_R, p: SCRYPT_P });
  return [
    'scrypt',
    SCRYPT_N,
    SCRYPT_R,
    SCRYPT_P,
    salt.toString('base64'),
    hash.toString('base64'),
  ].join('$');
}

/** Reads a stored hash; parameters are bounded so that a damaged row cannot ask for gigabytes. */
function parseHash(stored: string): StoredHash | undefined {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [n, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const salt = Buffer.from(parts[4] as string, 'base64');
  const hash = Buffer.from(parts[5] as string, 'base64');
  const powerOfTwo = Number.isInteger(n) && n >= 1024 && n <= 131_072 && (n & (n - 1)) === 0;
  if (
    !powerOfTwo ||
    !Number.isInteger(r) ||
    r < 1 ||
    r > 16 ||
    !Number.isInteger(p) ||
    p < 1 ||
    p > 4
  )
    return undefined;
  if (salt.length < 8 || hash.length < 16 || hash.length > 64) return undefined;
  return { n, r, p, salt, hash };
}

/** A hash no password matches in practice, run for unknown keys so that they take as long. */
const DUMMY_HASH = parseHash(
  [
    'scrypt',
    SCRYPT_N,
    SCRYPT_R,
    SCRYPT_P,
    Buffer.alloc(SALT_BYTES).toString('base64'),
    Buffer.alloc(HASH_BYTES).toString('base64'),
  ].join('$'),
) as StoredHash;

/** Whether `password` is the one `stored` was made from (scrypt off the main thread). */
function verifyPassword(password: string, stored: StoredHash): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const maxmem = 256 * stored.n * stored.r + 1024 * 1024;
    scrypt(
      password,
      stored.salt,
      stored.hash.length,
      { N: stored.n, r: stored.r, p: stored.p, maxmem },
      (error, derived) => {
        if (error) reject(error);
        else resolve(sameSecret(derived, stored.hash));
      },
    );
  });
}

/** Checks a merchant name, terminal id or terminal type; INVALID_INPUT naming `field` otherwise. */
export function validateTenantId(field: string, value: unknown): string {
  if (typeof value !== 'string') throw invalid('INVALID_INPUT', field, ID_RULE, 'not a string');
  if (value.length === 0 || value.length > MAX_TENANT_ID_LENGTH) {
    throw invalid('INVALID_INPUT', field, ID_RULE, `${value.length} characters`);
  }
  if (!TENANT_ID.test(value)) {
    const at = [...value].findIndex((c) => !TENANT_ID.test(c));
    throw invalid(
      'INVALID_INPUT',
      field,
      ID_RULE,
      `${JSON.stringify([...value][at] ?? '')} at position ${at + 1}`,
    );
  }
  return value;
}

export interface MerchantRow {
  name: string;
  api_key: string;
  password_hash: string;
  created_at: number;
}

export interface TerminalRow {
  terminal_id: string;
  merchant: string;
  terminal_type: string;
  created_at: number;
}

export const toMerchant = (row: MerchantRow): Merchant => ({
  name: row.name,
  apiKey: row.api_key,
  createdAt: row.created_at,
});

export const toTerminal = (row: TerminalRow): GatewayTerminal => ({
  terminalId: row.terminal_id,
  merchant: row.merchant,
  terminalType: row.terminal_type,
  payload: DEFAULT_PAYLOAD,
  createdAt: row.created_at,
});

interface CachedCredential {
  /** SHA-256 of the password that passed scrypt. */
  readonly digest: Buffer;
  /** The stored hash it passed against: a changed password invalidates the entry. */
  readonly passwordHash: string;
  readonly expiresAt: number;
}

/**
 * Checks a key and password against the merchant stored under the key. Unknown keys, over-long
 * input and wrong passwords all cost one scrypt, so timing tells nothing about which keys exist.
 * Every POS request carries the key and password, so a verified pair is remembered (as a SHA-256
 * of the password) for `cacheTtlMs`; a pair that fails is never remembered.
 */
export class CredentialCheck {
  private readonly now: () => number;
  private readonly cacheTtlMs: number;
  private scrypts = 0;
  private readonly maxCached: number;
  private readonly cache = new Map<string, CachedCredential>();
  /** scrypt verifications under way, by key and password digest: a burst shares one. */
  private readonly verifying = new Map<string, Promise<boolean>>();

  constructor(options: TenantStoreOptions = {}, who = 'TenantStore') {
    const parsed = parseOptions(OPTIONS, options, who);
    this.now = parsed.now ?? Date.now;
    this.cacheTtlMs = parsed.cacheTtlMs;
    this.maxCached = parsed.maxCachedCredentials;
  }

  /** The clock the store stamps rows with. */
  time(): number {
    return this.now();
  }

  async authenticate(
    key: string,
    password: string,
    byKey: (key: string) => Awaitable<MerchantRow | undefined>,
  ): Promise<Merchant | undefined> {
    if (
      typeof key !== 'string' ||
      typeof password !== 'string' ||
      key.length > MAX_CREDENTIAL_LENGTH ||
      password.length > MAX_CREDENTIAL_LENGTH
    ) {
      this.scrypts++;
      await verifyPassword('', DUMMY_HASH);
      return undefined;
    }
    const row = await byKey(key);
    if (row === undefined) {
      this.scrypts++;
      await verifyPassword(password, DUMMY_HASH);
      return undefined;
    }
    const digest = sha256(password);
    const now = this.now();
    const cached = this.cache.get(key);
    if (cached !== undefined && cached.expiresAt <= now) this.cache.delete(key);
    else if (
      cached !== undefined &&
      cached.passwordHash === row.password_hash &&
      sameSecret(cached.digest, digest)
    ) {
      return toMerchant(row);
    }
    if (!(await this.verify(key, password, digest, row.password_hash))) return undefined;
    this.remember(key, {
      digest,
      passwordHash: row.password_hash,
      expiresAt: now + this.cacheTtlMs,
    });
    return toMerchant(row);
  }

  /** scrypt computations run by `authenticate` so far (what the cache saves, made countable). */
  get scryptRuns(): number {
    return this.scrypts;
  }

  /** Verified credentials held in memory now (expired ones may linger until looked up). */
  get cachedCredentials(): number {
    return this.cache.size;
  }

  private verify(
    key: string,
    password: string,
    digest: Buffer,
    passwordHash: string,
  ): Promise<boolean> {
    const stored = parseHash(passwordHash);
    if (stored === undefined) {
      // Never quote the hash: it is as good as the password to an offline guesser.
      return Promise.reject(
        new EcrError('JOURNAL_ERROR', 'a merchant’s stored password hash is damaged'),
      );
    }
    const id = `${key}\u0000${digest.toString('hex')}`;
    let pending = this.verifying.get(id);
    if (pending === undefined) {
      this.scrypts++;
      pending = verifyPassword(password, stored).finally(() => this.verifying.delete(id));
      this.verifying.set(id, pending);
    }
    return pending;
  }

  private remember(key: string, entry: CachedCredential): void {
    if (this.maxCached === 0 || this.cacheTtlMs === 0) return;
    this.cache.delete(key);
    this.cache.set(key, entry);
    // Map order is insertion order, and every entry lives as long: the first is the oldest.
    for (const oldest of this.cache.keys()) {
      if (this.cache.size <= this.maxCached) break;
      this.cache.delete(oldest);
    }
  }
}

/** A new merchant's row and its fresh credentials (validated name). */
export function newMerchant(
  name: string,
  now: number,
): { row: MerchantRow; key: string; password: string } {
  validateTenantId('name', name);
  const key = API_KEY_PREFIX + randomLetters(API_KEY_LETTERS);
  const password = randomLetters(PASSWORD_LETTERS);
  // scryptSync: an administrative call, tens of milliseconds, once per merchant.
  return {
    row: { name, api_key: key, password_hash: hashPassword(password), created_at: now },
    key,
    password,
  };
}

/**
 * A new terminal's row (validated fields). The payload format is checked and not stored: while
 * SEMI is the only one, every row reads back as SEMI (`toTerminal`).
 */
export function newTerminal(input: NewTerminal, now: number): TerminalRow {
  const row = {
    terminal_id: validateTenantId('terminalId', input.terminalId),
    merchant: validateTenantId('merchant', input.merchant),
    terminal_type: validateTenantId('terminalType', input.terminalType),
    created_at: now,
  };
  validatePayload('payload', input.payload ?? DEFAULT_PAYLOAD);
  return row;
}

/**
 * Tenants in the journal's SQLite file. Reads and writes are synchronous like the journal's;
 * `authenticate` is async because scrypt runs on libuv's thread pool.
 */
export class SqliteTenantStore implements TenantStore {
  private readonly db: Database.Database;
  private readonly credentials: CredentialCheck;
  private readonly statements;

  constructor(journal: SqliteJournal, options: TenantStoreOptions = {}) {
    this.credentials = new CredentialCheck(options, 'SqliteTenantStore');
    this.db = journal.database;
    const db = this.db;
    this.statements = {
      insertMerchant: db.prepare<MerchantRow>(
        `INSERT INTO merchants (name, api_key, password_hash, created_at)
         VALUES (@name, @api_key, @password_hash, @created_at)
         ON CONFLICT (name) DO NOTHING`,
      ),
      merchant: db.prepare<[string], MerchantRow>('SELECT * FROM merchants WHERE name = ?'),
      merchantByKey: db.prepare<[string], MerchantRow>('SELECT * FROM merchants WHERE api_key = ?'),
      merchants: db.prepare<[], MerchantRow>('SELECT * FROM merchants ORDER BY name'),
      insertTerminal: db.prepare<TerminalRow>(
        `INSERT INTO gateway_terminals (terminal_id, merchant, terminal_type, created_at)
         VALUES (@terminal_id, @merchant, @terminal_type, @created_at)
         ON CONFLICT (terminal_id) DO NOTHING`,
      ),
      terminal: db.prepare<[string], TerminalRow>(
        'SELECT * FROM gateway_terminals WHERE terminal_id = ?',
      ),
      terminalsOf: db.prepare<[string], TerminalRow>(
        'SELECT * FROM gateway_terminals WHERE merchant = ? ORDER BY terminal_id',
      ),
      allTerminals: db.prepare<[], TerminalRow>(
        'SELECT * FROM gateway_terminals ORDER BY merchant, terminal_id',
      ),
      bindReference: db.prepare<[string, string, string, number]>(
        `INSERT INTO gateway_references (merchant, reference, terminal_id, created_at)
         VALUES (?, ?, ?, ?) ON CONFLICT (merchant, reference) DO NOTHING`,
      ),
      referenceTerminal: db.prepare<[string, string], { terminal_id: string }>(
        'SELECT terminal_id FROM gateway_references WHERE merchant = ? AND reference = ?',
      ),
    };
  }

  addMerchant(name: string): NewMerchant {
    validateTenantId('name', name);
    if (this.merchant(name) !== undefined) throw duplicateMerchant(name);
    const { row, key, password } = newMerchant(name, this.credentials.time());
    // ON CONFLICT (name) only: another process may have added the name meanwhile; a key
    // collision (52^24 to one) would fail loudly instead of passing for a duplicate name.
    const changes = this.write(() => this.statements.insertMerchant.run(row).changes);
    if (changes === 0) throw duplicateMerchant(name);
    return { merchant: toMerchant(row), key, password };
  }

  merchants(): Merchant[] {
    return this.read(() => this.statements.merchants.all().map(toMerchant));
  }

  merchant(name: string): Merchant | undefined {
    const row = this.read(() => this.statements.merchant.get(name));
    return row === undefined ? undefined : toMerchant(row);
  }

  addTerminal(input: NewTerminal): GatewayTerminal {
    const row = newTerminal(input, this.credentials.time());
    const changes = this.write(() => {
      if (this.statements.merchant.get(row.merchant) === undefined) throw noMerchant(row.merchant);
      return this.statements.insertTerminal.run(row).changes;
    });
    if (changes === 0) throw duplicateTerminal(row.terminal_id);
    return toTerminal(row);
  }

  bindReference(merchant: string, reference: string, terminalId: string): string {
    return this.write(() => {
      this.statements.bindReference.run(merchant, reference, terminalId, this.credentials.time());
      return this.statements.referenceTerminal.get(merchant, reference)?.terminal_id ?? terminalId;
    });
  }

  referenceTerminal(merchant: string, reference: string): string | undefined {
    return this.read(() => this.statements.referenceTerminal.get(merchant, reference)?.terminal_id);
  }

  terminal(terminalId: string): GatewayTerminal | undefined {
    const row = this.read(() => this.statements.terminal.get(terminalId));
    return row === undefined ? undefined : toTerminal(row);
  }

  terminalsOf(merchant: string): GatewayTerminal[] {
    return this.read(() => this.statements.terminalsOf.all(merchant).map(toTerminal));
  }

  allTerminals(): GatewayTerminal[] {
    return this.read(() => this.statements.allTerminals.all().map(toTerminal));
  }

  authenticate(key: string, password: string): Promise<Merchant | undefined> {
    return this.credentials.authenticate(key, password, (k) =>
      this.read(() => this.statements.merchantByKey.get(k)),
    );
  }

  /** scrypt computations run by `authenticate` so far (what the cache saves, made countable). */
  get scryptRuns(): number {
    return this.credentials.scryptRuns;
  }

  /** Verified credentials held in memory now (expired ones may linger until looked up). */
  get cachedCredentials(): number {
    return this.credentials.cachedCredentials;
  }

  private read<T>(fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      throw tenantError('read', error);
    }
  }

  private write<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn).immediate();
    } catch (error) {
      throw tenantError('write', error);
    }
  }
}

export function duplicateMerchant(name: string): EcrError {
  return invalid('INVALID_INPUT', 'name', 'must be unique', `merchant ${name} exists`);
}

export function noMerchant(name: string): EcrError {
  return invalid('NOT_FOUND', 'merchant', 'must name an existing merchant', `no merchant ${name}`);
}

/** A device serial is global: it cannot belong to two merchants (nor twice to one). */
export function duplicateTerminal(terminalId: string): EcrError {
  return invalid(
    'INVALID_INPUT',
    'terminalId',
    'must be unique across all merchants',
    `terminal ${terminalId} is already registered`,
  );
}

export function tenantError(what: 'read' | 'write', error: unknown): EcrError {
  if (error instanceof EcrError) return error;
  return new EcrError('JOURNAL_ERROR', `tenant ${what} failed: ${(error as Error).message}`, {
    cause: error,
  });
}
