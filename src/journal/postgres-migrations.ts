import type pg from 'pg';

/**
 * Advisory lock tags (the first key of the two-key form; the second names the schema or the
 * table). Any constants would do: these spell `ECRM` and `ECRJ`.
 */
export const MIGRATION_LOCK_TAG = 0x4543524d;
export const WRITE_ORDER_LOCK_TAG = 0x4543524a;

/** Milliseconds since the epoch by the database's clock: the one clock every node shares. */
export const DB_NOW_MS = '(extract(epoch from clock_timestamp()) * 1000)::bigint';

/**
 * PostgreSQL migrations, applied in order, one transaction each; `schema_migrations` holds the
 * versions applied. Never edit a shipped migration: append a new one.
 *
 * Migration 1 is SQLite migrations 1–6 in their final shape (`migrations.ts`): same tables, same
 * column names, same CHECKs, timestamps as bigint milliseconds. Two things are PostgreSQL's own:
 *
 * - **Write order.** PostgreSQL hands out sequence values in one order and commits in another,
 *   so a reader could see id 11 before id 10 exists and skip 10 for good. Two readers rely on
 *   ids never appearing behind ones already seen: the event feed (`eventsAfter`) and the outbox
 *   sweep's mark (`enqueueMissingNotifications`). So `transactions` and `transaction_events`
 *   take their ids in BEFORE INSERT triggers under one transaction-scoped advisory lock per
 *   journal (`journal_write_order`), held until commit: ids become visible in order, as in
 *   SQLite, which has a single writer anyway. Every write is one short statement, so the lock
 *   is never held across a round trip to a client.
 * - **Trigger functions** pin `search_path` (`SET search_path FROM CURRENT`): they find their
 *   tables whatever path the session that fires them uses.
 */
export const POSTGRES_MIGRATIONS: readonly string[] = [
  `
  CREATE SEQUENCE transactions_id_seq;
  CREATE TABLE transactions (
    id                 bigint  PRIMARY KEY,
    merchant_id        text    NOT NULL,
    terminal_id        text    NOT NULL,
    reference          text    NOT NULL,
    kind               text    NOT NULL CHECK (kind IN
                         ('sale', 'refund', 'void', 'auth', 'capture', 'tip-adjust')),
    amount_minor       bigint  NOT NULL CHECK (amount_minor >= 0),
    currency           text    NOT NULL CHECK (length(currency) = 3),
    method             text    NOT NULL CHECK (method IN ('card', 'wallet')),
    original_reference text,
    state              text    NOT NULL CHECK (state IN
                         ('received', 'sent', 'approved', 'declined', 'cancelled', 'failed', 'unknown')),
    error_code         text,
    message            text,
    approval_code      text,
    masked_pan         text,
    card_brand         text,
    terminal_tx_id     text,
    -- json, not jsonb: the text is kept as written, key order included, as SQLite keeps it.
    details            json,
    owner_pid          bigint,
    owner_token        text,
    heartbeat_at       bigint,
    created_at         bigint  NOT NULL,
    updated_at         bigint  NOT NULL,
    completed_at       bigint,
    UNIQUE (merchant_id, terminal_id, reference)
  );
  ALTER SEQUENCE transactions_id_seq OWNED BY transactions.id;
  CREATE INDEX transactions_state ON transactions (state) WHERE state IN ('received', 'sent', 'unknown');
  CREATE INDEX transactions_reference ON transactions (reference);
  CREATE INDEX transactions_terminal ON transactions (terminal_id, id);

  -- One row per attempt; its id is the wire id protocols number requests with (never reused).
  CREATE TABLE attempts (
    id             bigserial PRIMARY KEY,
    transaction_id bigint    NOT NULL REFERENCES transactions (id),
    started_at     bigint    NOT NULL
  );

  CREATE TABLE terminal_locks (
    terminal_id  text   PRIMARY KEY,
    owner_pid    bigint NOT NULL,
    owner_token  text   NOT NULL,
    acquired_at  bigint NOT NULL,
    heartbeat_at bigint NOT NULL
  );

  CREATE TABLE notifications (
    id              bigserial PRIMARY KEY,
    transaction_id  bigint    NOT NULL UNIQUE REFERENCES transactions (id),
    state           text      NOT NULL CHECK (state IN ('pending', 'sent')),
    attempts        integer   NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at bigint    NOT NULL,
    last_error      text      CHECK (length(last_error) <= 200),
    idempotency_key text      NOT NULL UNIQUE,
    created_at      bigint    NOT NULL,
    sent_at         bigint,
    CHECK ((state = 'sent') = (sent_at IS NOT NULL))
  );
  CREATE INDEX notifications_due ON notifications (next_attempt_at, id) WHERE state = 'pending';
  CREATE TABLE outbox_start (first_transaction_id bigint NOT NULL);
  INSERT INTO outbox_start VALUES (1);

  -- The gateway's tenants (SQLite migrations 4 and 5, same columns). COLLATE "C": names sort
  -- and compare byte by byte, as in SQLite, whatever the database's locale.
  CREATE TABLE merchants (
    name          text   COLLATE "C" PRIMARY KEY,
    api_key       text   NOT NULL UNIQUE,
    password_hash text   NOT NULL,
    created_at    bigint NOT NULL
  );
  CREATE TABLE gateway_terminals (
    terminal_id   text   COLLATE "C" PRIMARY KEY,
    merchant      text   COLLATE "C" NOT NULL REFERENCES merchants (name),
    terminal_type text   NOT NULL,
    created_at    bigint NOT NULL
  );
  CREATE INDEX gateway_terminals_merchant ON gateway_terminals (merchant, terminal_id);
  CREATE TABLE gateway_references (
    merchant    text   COLLATE "C" NOT NULL REFERENCES merchants (name),
    reference   text   NOT NULL,
    terminal_id text   NOT NULL,
    created_at  bigint NOT NULL,
    PRIMARY KEY (merchant, reference)
  );

  -- Every state a transaction went through (SQLite migration 6), kept by triggers.
  CREATE SEQUENCE transaction_events_id_seq;
  CREATE TABLE transaction_events (
    id             bigint PRIMARY KEY,
    transaction_id bigint NOT NULL REFERENCES transactions (id),
    state          text   NOT NULL,
    at             bigint NOT NULL,
    note           text
  );
  ALTER SEQUENCE transaction_events_id_seq OWNED BY transaction_events.id;
  CREATE INDEX transaction_events_transaction ON transaction_events (transaction_id, id);

  -- The write-order lock of this journal (see the comment of POSTGRES_MIGRATIONS), keyed by the
  -- oid of its transactions table: one lock per journal, however many share a database.
  CREATE FUNCTION journal_write_order() RETURNS void
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
  BEGIN
    PERFORM pg_advisory_xact_lock(${WRITE_ORDER_LOCK_TAG}, 'transactions'::regclass::oid::integer);
  END $$;

  CREATE FUNCTION transactions_take_id() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
  BEGIN
    PERFORM journal_write_order();
    NEW.id := nextval('transactions_id_seq');
    RETURN NEW;
  END $$;
  CREATE TRIGGER transactions_take_id BEFORE INSERT ON transactions
    FOR EACH ROW EXECUTE FUNCTION transactions_take_id();

  CREATE FUNCTION transaction_events_take_id() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
  BEGIN
    PERFORM journal_write_order();
    NEW.id := nextval('transaction_events_id_seq');
    RETURN NEW;
  END $$;
  CREATE TRIGGER transaction_events_take_id BEFORE INSERT ON transaction_events
    FOR EACH ROW EXECUTE FUNCTION transaction_events_take_id();

  CREATE FUNCTION transaction_events_on_insert() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
  BEGIN
    INSERT INTO transaction_events (transaction_id, state, at, note)
    VALUES (NEW.id, NEW.state, NEW.created_at, NULL);
    RETURN NULL;
  END $$;
  CREATE TRIGGER transaction_events_insert AFTER INSERT ON transactions
    FOR EACH ROW EXECUTE FUNCTION transaction_events_on_insert();

  CREATE FUNCTION transaction_events_on_update() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
  BEGIN
    INSERT INTO transaction_events (transaction_id, state, at, note)
    VALUES (NEW.id, NEW.state, NEW.updated_at,
            CASE WHEN NEW.state IN ('received', 'sent') THEN NULL ELSE NEW.message END);
    RETURN NULL;
  END $$;
  CREATE TRIGGER transaction_events_update AFTER UPDATE OF state ON transactions
    FOR EACH ROW WHEN (NEW.state IS DISTINCT FROM OLD.state)
    EXECUTE FUNCTION transaction_events_on_update();
  `,
  // 2 (SQLite migration 7): attempts. Each attempt under a reference is its own row, numbered
  // from 1; the key becomes (merchant, terminal, reference, attempt). The old key's constraint
  // was named by PostgreSQL from its columns.
  `
  ALTER TABLE transactions ADD COLUMN attempt integer NOT NULL DEFAULT 1 CHECK (attempt >= 1);
  ALTER TABLE transactions DROP CONSTRAINT transactions_merchant_id_terminal_id_reference_key;
  ALTER TABLE transactions ADD CONSTRAINT transactions_attempt_key
    UNIQUE (merchant_id, terminal_id, reference, attempt);
  `,
  // 3 (SQLite migration 8): public ids, the random id a transaction is shown by (`public-id.ts`:
  // 'tx_' and 24 letters a–p). Claims write it; the rows already here get one now: the first 12
  // hex digits of two version-4 UUIDs (all random bits; gen_random_uuid draws them from the
  // server's cryptographic generator), digits spelt g–p.
  `
  ALTER TABLE transactions ADD COLUMN public_id text;
  UPDATE transactions SET public_id = 'tx_' || translate(
    substr(replace(gen_random_uuid()::text, '-', ''), 1, 12) ||
      substr(replace(gen_random_uuid()::text, '-', ''), 1, 12),
    '0123456789', 'ghijklmnop');
  ALTER TABLE transactions ALTER COLUMN public_id SET NOT NULL;
  ALTER TABLE transactions ADD CONSTRAINT transactions_public_id_key UNIQUE (public_id);
  `,
  // 4 (SQLite migration 9): strong terminal identity, opt-in per terminal: the scrypt hash of its
  // registration secret (NULL: none) and whether it must present a client certificate.
  `
  ALTER TABLE gateway_terminals ADD COLUMN secret_hash text;
  ALTER TABLE gateway_terminals ADD COLUMN require_certificate boolean NOT NULL DEFAULT false;
  `,
];

/** The versions recorded in `schema_migrations`, ascending. */
async function appliedVersions(client: pg.ClientBase): Promise<number[]> {
  const result = await client.query<{ version: number }>(
    'SELECT version FROM schema_migrations ORDER BY version',
  );
  return result.rows.map((row) => row.version);
}

/**
 * Brings the journal's schema to the latest version. The whole run holds a session advisory
 * lock named after the schema, so that nodes starting together migrate exactly once: the first
 * migrates, the others wait, then find nothing left to do. `schema` (already validated as a
 * plain identifier) is created if missing; without it, the tables go to the session's current
 * schema. Throws a plain Error; the journal wraps it.
 */
export async function migratePostgres(
  client: pg.ClientBase,
  schema: string | undefined,
  migrations: readonly string[] = POSTGRES_MIGRATIONS,
): Promise<void> {
  const lockName =
    schema ??
    (await client.query<{ name: string | null }>('SELECT current_schema() AS name')).rows[0]
      ?.name ??
    '';
  await client.query('SELECT pg_advisory_lock($1, hashtext($2))', [MIGRATION_LOCK_TAG, lockName]);
  try {
    // Under the lock: CREATE SCHEMA IF NOT EXISTS is not safe against itself run concurrently.
    if (schema !== undefined) await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
         version    integer     PRIMARY KEY,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
    const applied = new Set(await appliedVersions(client));
    const newest = Math.max(0, ...applied);
    if (newest > migrations.length) {
      throw new Error(
        `the journal has schema version ${newest}; this ecr-bridge knows up to ${migrations.length}`,
      );
    }
    for (const [index, sql] of migrations.entries()) {
      const version = index + 1;
      if (applied.has(version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(sql);
        await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [version]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw new Error(`migration ${version} failed: ${(error as Error).message}`, {
          cause: error,
        });
      }
    }
  } finally {
    // Also released when the session ends, should this fail on a lost connection.
    await client
      .query('SELECT pg_advisory_unlock($1, hashtext($2))', [MIGRATION_LOCK_TAG, lockName])
      .catch(() => undefined);
  }
}
