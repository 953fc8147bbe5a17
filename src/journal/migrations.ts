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
  // 3: the back-office notification outbox (seed 001, "Transaction request is sent to HiPay's
  // server"): at most one row per transaction, only for transactions that happened (approved,
  // declined, cancelled). `idempotency_key` is random per row, so that two shops' journals never
  // hand a back office the same key. A later migration that rebuilds `transactions` the way
  // migration 2 did must rebuild this table too (its foreign key follows the renamed table).
  `
  CREATE TABLE notifications (
    id              INTEGER PRIMARY KEY,
    transaction_id  INTEGER NOT NULL UNIQUE REFERENCES transactions (id),
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'sent')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT    CHECK (length(last_error) <= 200),
    idempotency_key TEXT    NOT NULL UNIQUE,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    CHECK ((state = 'sent') = (sent_at IS NOT NULL))
  );
  CREATE INDEX notifications_due ON notifications (next_attempt_at, id) WHERE state = 'pending';
  -- Transactions journaled before the outbox existed were never promised a notification: a
  -- journal with years of history must not flood the back office on its first start.
  CREATE TABLE outbox_start (first_transaction_id INTEGER NOT NULL);
  INSERT INTO outbox_start SELECT coalesce(max(id), 0) + 1 FROM transactions;
  `,
  // 4: the cloud gateway's tenants (seed 002): merchants with their API key and the scrypt hash
  // of their password (never the password), and the terminals each one owns. A terminal id is
  // the device serial, so it is unique across all merchants, not per merchant.
  `
  CREATE TABLE merchants (
    name          TEXT    PRIMARY KEY,
    api_key       TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
  );
  CREATE TABLE gateway_terminals (
    terminal_id   TEXT    PRIMARY KEY,
    merchant      TEXT    NOT NULL REFERENCES merchants (name),
    terminal_type TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
  );
  CREATE INDEX gateway_terminals_merchant ON gateway_terminals (merchant, terminal_id);
  `,
  // 5: which terminal a merchant's eConduit refID belongs to. A refID is the POS's idempotency
  // key across all of a merchant's terminals (a retry on another terminal must not charge
  // again), while the journal's own key is per terminal: this table is the merchant-wide claim.
  `
  CREATE TABLE gateway_references (
    merchant    TEXT    NOT NULL REFERENCES merchants (name),
    reference   TEXT    NOT NULL,
    terminal_id TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (merchant, reference)
  );
  `,
  // 6: every state a transaction went through, when, and why (the dashboard's timeline). Kept
  // by triggers, so no write path can forget it, and never deleted. A later migration that
  // rebuilds \`transactions\` must recreate these triggers. Rows older than this migration get
  // what their columns still tell: received at creation, their state at completion.
  `
  CREATE TABLE transaction_events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id INTEGER NOT NULL REFERENCES transactions (id),
    state          TEXT    NOT NULL,
    at             INTEGER NOT NULL,
    note           TEXT
  );
  CREATE INDEX transaction_events_transaction ON transaction_events (transaction_id, id);
  INSERT INTO transaction_events (transaction_id, state, at, note)
    SELECT id, 'received', created_at, NULL FROM transactions ORDER BY id;
  INSERT INTO transaction_events (transaction_id, state, at, note)
    SELECT id, state, coalesce(completed_at, updated_at), message FROM transactions
    WHERE state <> 'received' ORDER BY id;
  CREATE TRIGGER transaction_events_insert AFTER INSERT ON transactions
  BEGIN
    INSERT INTO transaction_events (transaction_id, state, at, note)
    VALUES (new.id, new.state, new.created_at, NULL);
  END;
  CREATE TRIGGER transaction_events_update AFTER UPDATE OF state ON transactions
    WHEN new.state IS NOT old.state
  BEGIN
    INSERT INTO transaction_events (transaction_id, state, at, note)
    VALUES (new.id, new.state, new.updated_at,
            CASE WHEN new.state IN ('received', 'sent') THEN NULL ELSE new.message END);
  END;
  `,
  // 7: attempts (issue 16). A reference names one payment, which may take several attempts: after
  // a decline, a cancel or a failure that charged nothing, the same reference starts a new one
  // (ARCHITECTURE.md invariant 1). Each attempt is its own row, numbered from 1, so that its
  // outcome, timeline and notification stay its own; the key becomes (merchant, terminal,
  // reference, attempt). SQLite cannot change a UNIQUE in place: the table is rebuilt the
  // documented way (new table, copy, drop, rename) with foreign keys off during migrations
  // (`migrate` in sqlite-database.ts checks them before each commit), so the tables that reference
  // `transactions` keep pointing at it. Dropping the table dropped its indexes and triggers:
  // they are made again here, as migrations 2 and 6 made them.
  `
  CREATE TABLE transactions_v7 (
    id                 INTEGER PRIMARY KEY,
    merchant_id        TEXT    NOT NULL,
    terminal_id        TEXT    NOT NULL,
    reference          TEXT    NOT NULL,
    attempt            INTEGER NOT NULL DEFAULT 1 CHECK (attempt >= 1),
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
    UNIQUE (merchant_id, terminal_id, reference, attempt)
  );
  INSERT INTO transactions_v7 (id, merchant_id, terminal_id, reference, attempt, kind, amount_minor,
    currency, method, original_reference, state, error_code, message, approval_code, masked_pan,
    card_brand, terminal_tx_id, details, owner_pid, owner_token, heartbeat_at, created_at,
    updated_at, completed_at)
  SELECT id, merchant_id, terminal_id, reference, 1, kind, amount_minor, currency, method,
    original_reference, state, error_code, message, approval_code, masked_pan, card_brand,
    terminal_tx_id, details, owner_pid, owner_token, heartbeat_at, created_at, updated_at,
    completed_at
  FROM transactions;
  DROP TABLE transactions;
  ALTER TABLE transactions_v7 RENAME TO transactions;
  CREATE INDEX transactions_state ON transactions (state) WHERE state IN ('received', 'sent', 'unknown');
  CREATE INDEX transactions_reference ON transactions (reference);
  CREATE INDEX transactions_terminal ON transactions (terminal_id, id);
  CREATE TRIGGER transaction_events_insert AFTER INSERT ON transactions
  BEGIN
    INSERT INTO transaction_events (transaction_id, state, at, note)
    VALUES (new.id, new.state, new.created_at, NULL);
  END;
  CREATE TRIGGER transaction_events_update AFTER UPDATE OF state ON transactions
    WHEN new.state IS NOT old.state
  BEGIN
    INSERT INTO transaction_events (transaction_id, state, at, note)
    VALUES (new.id, new.state, new.updated_at,
            CASE WHEN new.state IN ('received', 'sent') THEN NULL ELSE new.message END);
  END;
  `,
  // 8: public ids (issue 17). The integer id is global and sequential: shown to a merchant, the
  // gaps between its own ids would count every other merchant's sales in the same journal. Each
  // row gets a random id to be shown instead (`public-id.ts`: 'tx_' and 24 letters a–p, 96 bits);
  // claims write it, and the rows already here get one now, from SQLite's generator (ChaCha20,
  // seeded by the operating system). SQLite cannot add a NOT NULL column without a constant
  // default: every insert names it instead. A later migration that rebuilds `transactions` must
  // recreate this index.
  `
  ALTER TABLE transactions ADD COLUMN public_id TEXT;
  UPDATE transactions SET public_id = 'tx_' ||
    replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(
      lower(hex(randomblob(12))),
      '0', 'g'), '1', 'h'), '2', 'i'), '3', 'j'), '4', 'k'),
      '5', 'l'), '6', 'm'), '7', 'n'), '8', 'o'), '9', 'p');
  CREATE UNIQUE INDEX transactions_public_id ON transactions (public_id);
  `,
  // 9: strong terminal identity (issue 17, part 1), opt-in per terminal: the scrypt hash of its
  // registration secret (never the secret; NULL: none), and whether its Register must come over
  // TLS with a client certificate naming its TerminalID (gateway/terminal-identity.ts).
  `
  ALTER TABLE gateway_terminals ADD COLUMN secret_hash TEXT;
  ALTER TABLE gateway_terminals ADD COLUMN require_certificate INTEGER NOT NULL DEFAULT 0
    CHECK (require_certificate IN (0, 1));
  `,
];
