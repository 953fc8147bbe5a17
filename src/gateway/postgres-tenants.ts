import type { Pool } from 'pg';
import { EcrError } from '../core/errors.js';
import {
  CredentialCheck,
  duplicateMerchant,
  duplicateTerminal,
  identityUpdate,
  newMerchant,
  newTerminal,
  noMerchant,
  noTerminal,
  TERMINAL_COLUMNS as TERMINAL_FIELDS,
  tenantError,
  toMerchant,
  toNewTerminal,
  toTerminal,
  validateTenantId,
  type GatewayTerminal,
  type Merchant,
  type MerchantRow,
  type NewMerchant,
  type NewTerminal,
  type TenantStore,
  type TenantStoreOptions,
  type TerminalIdentityChange,
  type TerminalRow,
} from './tenants.js';
import { matchesSecretHash } from './terminal-secret.js';

/** bigint columns come back as strings from pg: the tenant rows' times as numbers. */
const MERCHANT_COLUMNS = 'name, api_key, password_hash, created_at::float8 AS created_at';
const TERMINAL_COLUMNS = TERMINAL_FIELDS.replace('created_at', 'created_at::float8 AS created_at');

/**
 * The gateway's tenants in the cluster's PostgreSQL journal (its migration creates the same
 * tables as SQLite's migrations 4 and 5): every node sees a merchant or terminal added on any
 * other at once, and a refID is bound to one terminal by the database, whichever node binds it.
 */
export class PostgresTenantStore implements TenantStore {
  private readonly credentials: CredentialCheck;

  constructor(
    private readonly pool: Pool,
    options: TenantStoreOptions = {},
  ) {
    this.credentials = new CredentialCheck(options, 'PostgresTenantStore');
  }

  async addMerchant(name: string): Promise<NewMerchant> {
    validateTenantId('name', name);
    const { row, key, password } = newMerchant(name, this.credentials.time());
    const inserted = await this.query<MerchantRow>(
      'write',
      `INSERT INTO merchants (name, api_key, password_hash, created_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (name) DO NOTHING RETURNING name`,
      [row.name, row.api_key, row.password_hash, row.created_at],
    );
    if (inserted.length === 0) throw duplicateMerchant(name);
    return { merchant: toMerchant(row), key, password };
  }

  async merchants(): Promise<Merchant[]> {
    const rows = await this.query<MerchantRow>(
      'read',
      `SELECT ${MERCHANT_COLUMNS} FROM merchants ORDER BY name`,
    );
    return rows.map(toMerchant);
  }

  async merchant(name: string): Promise<Merchant | undefined> {
    const [row] = await this.query<MerchantRow>(
      'read',
      `SELECT ${MERCHANT_COLUMNS} FROM merchants WHERE name = $1`,
      [name],
    );
    return row === undefined ? undefined : toMerchant(row);
  }

  async addTerminal(input: NewTerminal): Promise<GatewayTerminal> {
    const row = newTerminal(input, this.credentials.time());
    // One statement: the merchant must exist when the row goes in (no window between the two).
    const inserted = await this.query<{ terminal_id: string | null; merchant_exists: boolean }>(
      'write',
      `WITH m AS (SELECT name FROM merchants WHERE name = $2),
            ins AS (
              INSERT INTO gateway_terminals
                (terminal_id, merchant, terminal_type, created_at, secret_hash, require_certificate)
              SELECT $1, name, $3, $4, $5, $6 FROM m
              ON CONFLICT (terminal_id) DO NOTHING RETURNING terminal_id)
       SELECT (SELECT terminal_id FROM ins) AS terminal_id,
              EXISTS (SELECT 1 FROM m) AS merchant_exists`,
      [
        row.terminal_id,
        row.merchant,
        row.terminal_type,
        row.created_at,
        row.secret_hash,
        row.require_certificate === 1,
      ],
    );
    const result = inserted[0];
    if (result?.merchant_exists !== true) throw noMerchant(row.merchant);
    if (result.terminal_id === null) throw duplicateTerminal(row.terminal_id);
    return toNewTerminal(row);
  }

  async updateTerminalIdentity(
    terminalId: string,
    change: TerminalIdentityChange,
  ): Promise<GatewayTerminal> {
    const update = identityUpdate(change);
    const [row] = await this.query<TerminalRow>(
      'write',
      `UPDATE gateway_terminals
       SET secret_hash = CASE WHEN $2 THEN $3::text ELSE secret_hash END,
           require_certificate = coalesce($4::boolean, require_certificate)
       WHERE terminal_id = $1
       RETURNING ${TERMINAL_COLUMNS}`,
      [
        terminalId,
        update.setSecret,
        update.secretHash,
        update.requireCertificate === null ? null : update.requireCertificate === 1,
      ],
    );
    if (row === undefined) throw noTerminal(terminalId);
    return toTerminal(row);
  }

  async checkTerminalSecret(terminalId: string, secret: string): Promise<boolean> {
    const [row] = await this.query<{ secret_hash: string | null }>(
      'read',
      'SELECT secret_hash FROM gateway_terminals WHERE terminal_id = $1',
      [terminalId],
    );
    return matchesSecretHash(secret, row?.secret_hash);
  }

  async terminal(terminalId: string): Promise<GatewayTerminal | undefined> {
    const [row] = await this.query<TerminalRow>(
      'read',
      `SELECT ${TERMINAL_COLUMNS} FROM gateway_terminals WHERE terminal_id = $1`,
      [terminalId],
    );
    return row === undefined ? undefined : toTerminal(row);
  }

  async terminalsOf(merchant: string): Promise<GatewayTerminal[]> {
    const rows = await this.query<TerminalRow>(
      'read',
      `SELECT ${TERMINAL_COLUMNS} FROM gateway_terminals WHERE merchant = $1 ORDER BY terminal_id`,
      [merchant],
    );
    return rows.map(toTerminal);
  }

  async allTerminals(): Promise<GatewayTerminal[]> {
    const rows = await this.query<TerminalRow>(
      'read',
      `SELECT ${TERMINAL_COLUMNS} FROM gateway_terminals ORDER BY merchant, terminal_id`,
    );
    return rows.map(toTerminal);
  }

  async bindReference(merchant: string, reference: string, terminalId: string): Promise<string> {
    // The unique key decides between two nodes binding the same refID at once; both read back
    // the one that won.
    const rows = await this.query<{ terminal_id: string }>(
      'write',
      `WITH ins AS (
         INSERT INTO gateway_references (merchant, reference, terminal_id, created_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT (merchant, reference) DO NOTHING
         RETURNING terminal_id)
       SELECT terminal_id FROM ins
       UNION ALL
       SELECT terminal_id FROM gateway_references WHERE merchant = $1 AND reference = $2
       LIMIT 1`,
      [merchant, reference, terminalId, this.credentials.time()],
    );
    const bound = rows[0]?.terminal_id ?? (await this.referenceTerminal(merchant, reference));
    if (bound === undefined)
      throw new EcrError('JOURNAL_ERROR', `refID ${reference} could not be bound nor read back`);
    return bound;
  }

  async referenceTerminal(merchant: string, reference: string): Promise<string | undefined> {
    const [row] = await this.query<{ terminal_id: string }>(
      'read',
      'SELECT terminal_id FROM gateway_references WHERE merchant = $1 AND reference = $2',
      [merchant, reference],
    );
    return row?.terminal_id;
  }

  authenticate(key: string, password: string): Promise<Merchant | undefined> {
    return this.credentials.authenticate(key, password, async (k) => {
      const [row] = await this.query<MerchantRow>(
        'read',
        `SELECT ${MERCHANT_COLUMNS} FROM merchants WHERE api_key = $1`,
        [k],
      );
      return row;
    });
  }

  /** scrypt computations run by `authenticate` so far. */
  get scryptRuns(): number {
    return this.credentials.scryptRuns;
  }

  private async query<T>(
    what: 'read' | 'write',
    sql: string,
    params: readonly unknown[] = [],
  ): Promise<T[]> {
    try {
      const result = await this.pool.query(sql, params as unknown[]);
      return result.rows as T[];
    } catch (error) {
      throw tenantError(what, error);
    }
  }
}
