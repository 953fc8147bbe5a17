/**
 * Schema migrations, applied in order inside one transaction each; `PRAGMA user_version` holds
 * how many have run. Never edit a shipped migration: append a new one.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: transactions, attempts (the wire ids), terminal locks.
  `
  CREATE TABLE transactions (
    id                 INTEGER PRIMARY KEY,
    merchant_id        TEXT    NOT NULL,
    terminal_id        TEXT    NOT NULL,
    reference          TEXT    NOT NULL,
    kind               TEXT    NOT NULL CHECK (kind IN ('sale', 'refund', 'void')),
    amount_minor       INTEGER NOT NULL CHECK (amount_minor >= 0),
    currency           TEXT    NOT NULL CHECK (length(currency) = 3),
    method             TEXT    NOT NULL CHECK (method IN ('card', 'wallet')),
    original_reference TEXT,
    state              TEXT    NOT NULL CHECK (state IN
                         ('received', 'sent', 'approved', 'declined', 'cancelled', 'failed', 'unknown')),
    error_code         TEXT,
    message            TEXT,
    approval_code      TEXT,
    masked_pan         TEXT,
    card_brand         TEXT,
    terminal_tx_id     TEXT,
    details            TEXT,
    owner_pid          INTEGER,
    owner_token        TEXT,
    heartbeat_at       INTEGER,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    completed_at       INTEGER,
    UNIQUE (merchant_id, terminal_id, reference)
  );
  CREATE INDEX transactions_state ON transactions (state) WHERE state IN ('received', 'sent', 'unknown');
  CREATE INDEX transactions_reference ON transactions (reference);

  -- One row per attempt; its id is the wire id protocols number requests with (never reused).
  CREATE TABLE attempts (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id INTEGER NOT NULL REFERENCES transactions (id),
    started_at     INTEGER NOT NULL
  );

  CREATE TABLE terminal_locks (
    terminal_id  TEXT PRIMARY KEY,
    owner_pid    INTEGER NOT NULL,
    owner_token  TEXT    NOT NULL,
    acquired_at  INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
  );
  `,
  // 2: the kinds auth, capture and tip-adjust (SEMI). SQLite cannot change a CHECK in place: the
  // table is rebuilt (renaming keeps the attempts' foreign key pointing at the right table).
  `
  ALTER TABLE transactions RENAME TO transactions_v1;
  CREATE TABLE transactions (
    id                 INTEGER PRIMARY KEY,
    merchant_id        TEXT    NOT NULL,
    terminal_id        TEXT    NOT NULL,
    reference          TEXT    NOT NULL,
    kind               TEXT    NOT NULL CHECK (kind IN
                         ('sale', 'refund', 'void', 'auth', 'capture', 'tip-adjust')),
    amount_minor       INTEGER NOT NULL CHECK (amount_minor >= 0),
    currency           TEXT    NOT NULL CHECK (length(currency) = 3),
    method             TEXT    NOT NULL CHECK (method IN ('card', 'wallet')),
    original_reference TEXT,
    state              TEXT    NOT NULL CHECK (state IN
                         ('received', 'sent', 'approved', 'declined', 'cancelled', 'failed', 'unknown')),
    error_code         TEXT,
    message            TEXT,
    approval_code      TEXT,
    masked_pan         TEXT,
    card_brand         TEXT,
    terminal_tx_id     TEXT,
    details            TEXT,
    owner_pid          INTEGER,
    owner_token        TEXT,
    heartbeat_at       INTEGER,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    completed_at       INTEGER,
    UNIQUE (merchant_id, terminal_id, reference)
  );
  INSERT INTO transactions SELECT * FROM transactions_v1;
  ALTER TABLE attempts RENAME TO attempts_v1;
  CREATE TABLE attempts (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id INTEGER NOT NULL REFERENCES transactions (id),
    started_at     INTEGER NOT NULL
  );
  INSERT INTO attempts SELECT * FROM attempts_v1;
  DROP TABLE attempts_v1;
  DROP TABLE transactions_v1;
  CREATE INDEX transactions_state ON transactions (state) WHERE state IN ('received', 'sent', 'unknown');
  CREATE INDEX transactions_reference ON transactions (reference);
  CREATE INDEX transactions_terminal ON transactions (terminal_id, id);
  `,
];
