import type Database from 'better-sqlite3';
import { EcrError, invalid } from '../core/errors.js';
import { randomLetters } from '../core/random-text.js';
import { CREDENTIAL_LETTERS, hashSecret } from '../core/secret-hash.js';
import type { Awaitable } from '../core/journal-port.js';
import type { SqliteJournal } from '../journal/sqlite-journal.js';
import { DEFAULT_PAYLOAD, validatePayload, type PayloadProtocol } from './provisioning.js';
import {
  CredentialCheck,
  toMerchant,
  type Merchant,
  type MerchantRow,
  type TenantStoreOptions,
} from './merchant-credentials.js';
import { hashTerminalSecret, matchesSecretHash } from './terminal-secret.js';

export {
  CredentialCheck,
  DEFAULT_CREDENTIAL_CACHE_TTL_MS,
  DEFAULT_MAX_CACHED_CREDENTIALS,
  MAX_CREDENTIAL_LENGTH,
  toMerchant,
  type Merchant,
  type MerchantRow,
  type TenantStoreOptions,
} from './merchant-credentials.js';
export { SCRYPT_N, SCRYPT_P, SCRYPT_R } from '../core/secret-hash.js';

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

const TENANT_ID = /^[A-Za-z0-9._-]+$/;
const ID_RULE = `must be 1–${MAX_TENANT_ID_LENGTH} characters: letters, digits, . _ -`;

export interface GatewayTerminal {
  /** The device serial (the eConduit Register's TerminalID): unique across all merchants. */
  readonly terminalId: string;
  readonly merchant: string;
  /** The `TerminalType` its Register must carry. */
  readonly terminalType: string;
  /** The format of its transaction payloads (SEMI JSON: the only one, so not stored). */
  readonly payload: PayloadProtocol;
  /** It has a registration secret (only its hash is stored, and never read out). */
  readonly hasSecret: boolean;
  /** It must register with a client certificate naming it (mutual TLS). */
  readonly requireCertificate: boolean;
  readonly createdAt: number;
}

/** A terminal to provision. */
export interface NewTerminal {
  readonly terminalId: string;
  readonly merchant: string;
  readonly terminalType: string;
  /** @default DEFAULT_PAYLOAD */
  readonly payload?: string;
  /** Its registration secret (terminal-secret.ts rules); stored as a scrypt hash. @default none */
  readonly secret?: string;
  /** @default false */
  readonly requireCertificate?: boolean;
}

/**
 * A change to a provisioned terminal's proof of identity. `secret`: a new one (replacing any),
 * or null to clear it; `requireCertificate`: the new requirement. Absent: left as it is.
 */
export interface TerminalIdentityChange {
  readonly secret?: string | null;
  readonly requireCertificate?: boolean;
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
  /** Sets, rotates or clears a terminal's secret, or its certificate requirement (NOT_FOUND: no such terminal). */
  updateTerminalIdentity(
    terminalId: string,
    change: TerminalIdentityChange,
  ): Awaitable<GatewayTerminal>;
  /**
   * Whether `secret` is the registration secret of `terminalId`: one scrypt, compared in constant
   * time; false for a terminal without one. The hash never leaves the store.
   */
  checkTerminalSecret(terminalId: string, secret: string): Promise<boolean>;
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

/** A terminal as read (`TERMINAL_COLUMNS`): whether it has a secret, never the hash. */
export interface TerminalRow {
  terminal_id: string;
  merchant: string;
  terminal_type: string;
  created_at: number;
  /** 0/1 from SQLite, a boolean from PostgreSQL. */
  has_secret: number | boolean;
  require_certificate: number | boolean;
}

/** A terminal as written. */
export interface NewTerminalRow {
  terminal_id: string;
  merchant: string;
  terminal_type: string;
  created_at: number;
  secret_hash: string | null;
  require_certificate: 0 | 1;
}

/** The columns a terminal is read with, in both stores. */
export const TERMINAL_COLUMNS =
  'terminal_id, merchant, terminal_type, created_at, secret_hash IS NOT NULL AS has_secret, require_certificate';

export const toTerminal = (row: TerminalRow): GatewayTerminal => ({
  terminalId: row.terminal_id,
  merchant: row.merchant,
  terminalType: row.terminal_type,
  payload: DEFAULT_PAYLOAD,
  hasSecret: row.has_secret === true || row.has_secret === 1,
  requireCertificate: row.require_certificate === true || row.require_certificate === 1,
  createdAt: row.created_at,
});

/** The terminal a row just written reads back as. */
export const toNewTerminal = (row: NewTerminalRow): GatewayTerminal =>
  toTerminal({ ...row, has_secret: row.secret_hash !== null });

/** A new merchant's row and its fresh credentials (validated name). */
export function newMerchant(
  name: string,
  now: number,
): { row: MerchantRow; key: string; password: string } {
  validateTenantId('name', name);
  const key = API_KEY_PREFIX + randomLetters(API_KEY_LETTERS, CREDENTIAL_LETTERS);
  const password = randomLetters(PASSWORD_LETTERS, CREDENTIAL_LETTERS);
  // scryptSync: an administrative call, tens of milliseconds, once per merchant.
  return {
    row: { name, api_key: key, password_hash: hashSecret(password), created_at: now },
    key,
    password,
  };
}

/**
 * A new terminal's row (validated fields). The payload format is checked and not stored: while
 * SEMI is the only one, every row reads back as SEMI (`toTerminal`).
 */
export function newTerminal(input: NewTerminal, now: number): NewTerminalRow {
  const row = {
    terminal_id: validateTenantId('terminalId', input.terminalId),
    merchant: validateTenantId('merchant', input.merchant),
    terminal_type: validateTenantId('terminalType', input.terminalType),
    created_at: now,
  };
  validatePayload('payload', input.payload ?? DEFAULT_PAYLOAD);
  return {
    ...row,
    // scryptSync: an administrative call, once per terminal.
    secret_hash: input.secret === undefined ? null : hashTerminalSecret('secret', input.secret),
    require_certificate: requirement('requireCertificate', input.requireCertificate ?? false),
  };
}

function requirement(field: string, value: unknown): 0 | 1 {
  if (typeof value !== 'boolean') throw invalid('INVALID_INPUT', field, 'must be true or false');
  return value ? 1 : 0;
}

/** A checked identity change: the new hash (null clears) when the secret changes, the new requirement. */
export interface IdentityUpdate {
  readonly setSecret: boolean;
  readonly secretHash: string | null;
  readonly requireCertificate: 0 | 1 | null;
}

/** Validates an identity change (at least one thing changes) and hashes its secret. */
export function identityUpdate(change: TerminalIdentityChange): IdentityUpdate {
  if (change.secret === undefined && change.requireCertificate === undefined)
    throw invalid(
      'INVALID_INPUT',
      'change',
      'must set or clear the secret, or the certificate requirement',
    );
  return {
    setSecret: change.secret !== undefined,
    secretHash:
      change.secret === undefined || change.secret === null
        ? null
        : hashTerminalSecret('secret', change.secret),
    requireCertificate:
      change.requireCertificate === undefined
        ? null
        : requirement('requireCertificate', change.requireCertificate),
  };
}

/** A terminal id that names no provisioned terminal. */
export function noTerminal(terminalId: string): EcrError {
  return invalid(
    'NOT_FOUND',
    'terminalId',
    'must name a provisioned terminal',
    `no terminal ${terminalId.slice(0, 64)}`,
  );
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
      insertTerminal: db.prepare<NewTerminalRow>(
        `INSERT INTO gateway_terminals
           (terminal_id, merchant, terminal_type, created_at, secret_hash, require_certificate)
         VALUES (@terminal_id, @merchant, @terminal_type, @created_at, @secret_hash,
           @require_certificate)
         ON CONFLICT (terminal_id) DO NOTHING`,
      ),
      terminal: db.prepare<[string], TerminalRow>(
        `SELECT ${TERMINAL_COLUMNS} FROM gateway_terminals WHERE terminal_id = ?`,
      ),
      terminalsOf: db.prepare<[string], TerminalRow>(
        `SELECT ${TERMINAL_COLUMNS} FROM gateway_terminals WHERE merchant = ? ORDER BY terminal_id`,
      ),
      allTerminals: db.prepare<[], TerminalRow>(
        `SELECT ${TERMINAL_COLUMNS} FROM gateway_terminals ORDER BY merchant, terminal_id`,
      ),
      updateIdentity: db.prepare<[number, string | null, 0 | 1 | null, string]>(
        `UPDATE gateway_terminals
         SET secret_hash = CASE WHEN ? THEN ? ELSE secret_hash END,
             require_certificate = coalesce(?, require_certificate)
         WHERE terminal_id = ?`,
      ),
      secretHash: db.prepare<[string], { secret_hash: string | null }>(
        'SELECT secret_hash FROM gateway_terminals WHERE terminal_id = ?',
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
    return toNewTerminal(row);
  }

  updateTerminalIdentity(terminalId: string, change: TerminalIdentityChange): GatewayTerminal {
    const update = identityUpdate(change);
    const row = this.write(() => {
      this.statements.updateIdentity.run(
        update.setSecret ? 1 : 0,
        update.secretHash,
        update.requireCertificate,
        terminalId,
      );
      return this.statements.terminal.get(terminalId);
    });
    if (row === undefined) throw noTerminal(terminalId);
    return toTerminal(row);
  }

  checkTerminalSecret(terminalId: string, secret: string): Promise<boolean> {
    const row = this.read(() => this.statements.secretHash.get(terminalId));
    return matchesSecretHash(secret, row?.secret_hash);
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
