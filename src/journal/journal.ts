import type { ErrorCode } from '../core/errors.js';
import type {
  DriverOutcome,
  MoneyKind,
  Outcome,
  PaymentMethod,
  TransactionState,
} from '../core/transaction.js';

/**
 * The durable store behind TransactionService. The embedded implementation is SQLite
 * (`sqlite-journal.ts`); a multi-node gateway gets a PostgreSQL one with the same interface.
 * Every method is one atomic step: a crash between two calls leaves a state the recovery
 * understands, never half a row.
 */
export interface Journal {
  /**
   * Claims `reference`. Atomic across processes: the unique key (merchant, terminal,
   * reference) decides. Returns `claimed` with a fresh wire id when the row is new and this
   * caller must drive the terminal, otherwise the `existing` row, whatever its state.
   */
  claim(input: ClaimInput): ClaimResult;
  /** `received → sent`, right before the first byte goes to the terminal. */
  markSent(id: number, owner: Owner): void;
  /** Writes the outcome of the attempt `owner` holds. */
  complete(id: number, owner: Owner, outcome: DriverOutcome): JournalRow;
  /**
   * `unknown → outcome`, when the terminal's own answer arrives after all (a late answer, or a
   * status query). Returns the row, or undefined when it was not `unknown`.
   */
  resolveUnknown(id: number, outcome: DriverOutcome): JournalRow | undefined;
  /**
   * `unknown → outcome` recorded by a person after reconciling. Only the state and the message
   * change (the message keeps what was known before); every other column stays as evidence.
   * Returns the row, or undefined when it was not `unknown`.
   */
  resolveByHand(
    id: number,
    outcome: Exclude<Outcome, 'unknown'>,
    note: string,
  ): JournalRow | undefined;
  get(id: number): JournalRow | undefined;
  find(key: TransactionKey): JournalRow | undefined;
  /** Every row with this reference, across terminals and merchants, newest first. */
  findByReference(reference: string): JournalRow[];
  list(filter?: ListFilter): JournalRow[];
  /**
   * Rows left `received` or `sent` by an owner that is gone (crash, kill) become `unknown`.
   * Returns the rows it changed.
   */
  recoverOrphans(isAlive: (owner: Owner) => boolean): JournalRow[];
  /**
   * Takes the cross-process lock of a terminal for `owner`, if free or held by a dead owner.
   * Keeps ARCHITECTURE.md invariant 2 when several processes share one data directory.
   */
  tryLockTerminal(terminalId: string, owner: Owner, isAlive: (owner: Owner) => boolean): boolean;
  unlockTerminal(terminalId: string, owner: Owner): void;
  /** The owner is alive: refreshes the heartbeat of its in-flight rows and terminal locks. */
  heartbeat(owner: Owner): void;
  close(): void;
}

/** Who drives an in-flight row: a process (pid) and a token unique to that process's life. */
export interface Owner {
  readonly pid: number;
  readonly token: string;
  /**
   * When the owner last said it is alive (ms since the epoch), as read from the journal: what
   * decides for owners whose process cannot be checked from here.
   */
  readonly heartbeatAt?: number;
}

export interface TransactionKey {
  readonly merchantId: string;
  readonly terminalId: string;
  readonly reference: string;
}

export interface ClaimInput extends TransactionKey {
  readonly kind: MoneyKind;
  readonly amountMinor: number;
  readonly currency: string;
  readonly method: PaymentMethod;
  readonly originalReference?: string;
  readonly owner: Owner;
}

export type ClaimResult =
  | { readonly type: 'claimed'; readonly row: JournalRow; readonly wireId: number }
  | { readonly type: 'existing'; readonly row: JournalRow };

export interface ListFilter {
  /** Only `unknown` rows and rows still in flight: what needs a person or a recovery. */
  readonly unresolved?: boolean;
  readonly terminalId?: string;
  /** @default 100 */
  readonly limit?: number;
}

export interface JournalRow extends TransactionKey {
  readonly id: number;
  readonly kind: MoneyKind;
  readonly amountMinor: number;
  readonly currency: string;
  readonly method: PaymentMethod;
  readonly originalReference: string | undefined;
  readonly state: TransactionState;
  readonly outcome: Outcome | undefined;
  readonly errorCode: ErrorCode | undefined;
  readonly message: string | undefined;
  readonly approvalCode: string | undefined;
  readonly maskedPan: string | undefined;
  readonly cardBrand: string | undefined;
  readonly terminalTxId: string | undefined;
  readonly details: Readonly<Record<string, string | number | boolean>> | undefined;
  readonly ownerPid: number | undefined;
  readonly ownerToken: string | undefined;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly completedAt: number | undefined;
}
