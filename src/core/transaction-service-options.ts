import type { Logger } from 'pino';
import { z } from 'zod';
import type { Clock } from './clock.js';
import type { Journal, Owner } from './journal-port.js';
import { DEFAULT_MAX_AMOUNT_MINOR } from './money.js';
import { clockOption, loggerOption, MAX_TIMER_MS, wholeNumber } from './options.js';
import { DEFAULT_MAX_QUEUE } from './terminal-queue.js';

/** Merchant id used when a deployment has only one merchant. */
export const DEFAULT_MERCHANT_ID = 'default';
/** How long to wait for another process that holds the same terminal. */
export const DEFAULT_LOCK_WAIT_MS = 30_000;
/** How long a retry waits for the same reference still in flight elsewhere (card step ≤ ~2 min). */
export const DEFAULT_IN_FLIGHT_WAIT_MS = 300_000;
/** How often the journal is re-read while waiting on another process. */
export const DEFAULT_POLL_INTERVAL_MS = 25;

export interface TransactionServiceOptions {
  readonly journal: Journal;
  readonly logger?: Logger;
  /** @default DEFAULT_MERCHANT_ID */
  readonly merchantId?: string;
  /** Largest payment accepted, in minor units. @default DEFAULT_MAX_AMOUNT_MINOR */
  readonly maxAmountMinor?: number;
  /** Requests that may wait per terminal before TERMINAL_BUSY. @default DEFAULT_MAX_QUEUE */
  readonly maxQueue?: number;
  /** @default DEFAULT_LOCK_WAIT_MS */
  readonly lockWaitMs?: number;
  /** @default DEFAULT_IN_FLIGHT_WAIT_MS */
  readonly inFlightWaitMs?: number;
  /** @default DEFAULT_POLL_INTERVAL_MS */
  readonly pollIntervalMs?: number;
  /** Owner identity written on in-flight rows. @default a fresh one for this service object */
  readonly owner?: Owner;
  /**
   * What every wait and timer runs on: the heartbeat, the polls and bounds of the lock and
   * in-flight waits, the background retries of journal writes. Times read from the journal (a
   * row's age) stay on the journal's clock. @default systemClock
   */
  readonly clock?: Clock;
}

/** The options of TransactionService, strict, with their defaults (`parseOptions`). */
export const TRANSACTION_SERVICE_OPTIONS = z.strictObject({
  journal: z.custom<Journal>(
    (value) => typeof value === 'object' && value !== null,
    'must be a Journal',
  ),
  logger: loggerOption(),
  merchantId: z
    .string()
    .min(1, 'must not be empty')
    .max(64, 'must be at most 64 characters')
    .default(DEFAULT_MERCHANT_ID),
  maxQueue: wholeNumber(0, 10_000).default(DEFAULT_MAX_QUEUE),
  maxAmountMinor: wholeNumber(1, Number.MAX_SAFE_INTEGER).default(DEFAULT_MAX_AMOUNT_MINOR),
  lockWaitMs: wholeNumber(0, MAX_TIMER_MS).default(DEFAULT_LOCK_WAIT_MS),
  inFlightWaitMs: wholeNumber(0, MAX_TIMER_MS).default(DEFAULT_IN_FLIGHT_WAIT_MS),
  pollIntervalMs: wholeNumber(1, 10_000).default(DEFAULT_POLL_INTERVAL_MS),
  owner: z
    .custom<Owner>(
      (value) => typeof value === 'object' && value !== null && 'pid' in value && 'token' in value,
      'must be an Owner',
    )
    .optional(),
  clock: clockOption(),
});
