import { redactPans } from './pan.js';

/**
 * The error taxonomy. Codes are the contract: a POS program, the CLI's exit codes and the HTTP
 * services branch on `code`, never on message text. Every code is listed in `docs/errors.md`
 * (a test fails when one is missing).
 */

/** Every error code, with the HTTP status an HTTP edge answers it with and a one-line meaning. */
export const ERROR_CODES = {
  INVALID_INPUT: { http: 400, summary: 'A field of the request breaks a rule; nothing was done.' },
  INVALID_AMOUNT: { http: 400, summary: 'The amount is not a valid amount in its currency.' },
  INVALID_CURRENCY: { http: 400, summary: 'The currency is not an active ISO 4217 code.' },
  INVALID_REFERENCE: {
    http: 400,
    summary:
      'The reference is empty, too long, holds control characters or a digit run that could be a card number.',
  },
  INVALID_TERMINAL_ADDRESS: { http: 400, summary: 'The terminal address names no valid form.' },
  DUPLICATE_REFERENCE: {
    http: 409,
    summary: 'The reference was already used for another amount, currency or kind.',
  },
  UNSUPPORTED_OPERATION: { http: 501, summary: "The terminal's protocol cannot do this call." },
  TERMINAL_BUSY: {
    http: 409,
    summary: 'The terminal is taken by another transaction and the queue is full.',
  },
  TERMINAL_UNREACHABLE: { http: 502, summary: 'No connection to the terminal could be made.' },
  TERMINAL_OFFLINE: {
    http: 503,
    summary: 'The terminal holds no connection to the gateway now; nothing was sent or charged.',
  },
  CLUSTER_UNAVAILABLE: {
    http: 503,
    summary:
      "The cluster's message bus (NATS) cannot be reached from this node; nothing was sent or charged.",
  },
  TERMINAL_AUTH_FAILED: { http: 502, summary: 'The terminal refused the connection handshake.' },
  TERMINAL_NOT_READY: {
    http: 502,
    summary: 'The terminal is not logged in or its payment service is not ready.',
  },
  TERMINAL_HOST_UNREACHABLE: {
    http: 502,
    summary: "The terminal lost its acquirer's host mid-transaction; reconcile.",
  },
  TERMINAL_REFUSED: {
    http: 422,
    summary: 'The terminal refused the request before the card step; nothing was charged.',
  },
  DUPLICATE_REQUEST_ID: {
    http: 502,
    summary: 'The terminal refused a request id it had already seen; nothing was charged.',
  },
  PROTOCOL_ERROR: { http: 502, summary: 'The terminal sent bytes that break its protocol.' },
  FRAME_TOO_LARGE: { http: 502, summary: 'A message from the peer exceeded the size bound.' },
  OUTCOME_UNKNOWN: {
    http: 504,
    summary: 'The request may have reached the terminal but no outcome was seen.',
  },
  LINK_LOST: { http: 502, summary: 'The connection to the terminal closed.' },
  TIMEOUT: { http: 504, summary: 'A bounded wait ran out.' },
  ABORTED: { http: 499, summary: 'The caller cancelled the operation.' },
  UNAUTHORIZED: { http: 401, summary: 'Credentials are missing or wrong.' },
  RATE_LIMITED: {
    http: 429,
    summary: 'Too many failed logins from this address: wait for Retry-After seconds.',
  },
  MISDIRECTED_REQUEST: {
    http: 421,
    summary: "The request's Host header names no host this service answers to; nothing was done.",
  },
  NOT_FOUND: {
    http: 404,
    summary: 'Nothing has this reference or name (a transaction, terminal or merchant).',
  },
  JOURNAL_ERROR: { http: 500, summary: 'The journal could not be read or written.' },
  INTERNAL: { http: 500, summary: 'A bug: an invariant of ecr-bridge did not hold.' },
} as const satisfies Record<string, { http: number; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface EcrErrorOptions {
  /** The input field at fault, as the caller named it (`amount`, `reference`, `status`). */
  field?: string;
  /** The rule the value broke, in a few words (`at most 64 characters`). */
  rule?: string;
  cause?: unknown;
}

/** The one error class of ecr-bridge: a stable `code`, and the field and rule at fault. */
export class EcrError extends Error {
  override readonly name = 'EcrError';
  readonly code: ErrorCode;
  readonly field: string | undefined;
  readonly rule: string | undefined;

  constructor(code: ErrorCode, message: string, options: EcrErrorOptions = {}) {
    // Messages often quote what a peer sent: card numbers in it are masked here, once for all.
    super(redactPans(message), options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.field = options.field;
    this.rule = options.rule;
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code].http;
  }

  toJSON(): { code: ErrorCode; message: string; field?: string; rule?: string } {
    return {
      code: this.code,
      message: this.message,
      ...(this.field === undefined ? {} : { field: this.field }),
      ...(this.rule === undefined ? {} : { rule: this.rule }),
    };
  }
}

/** A validation failure: names the field and the rule, in the message and as properties. */
export function invalid(code: ErrorCode, field: string, rule: string, detail?: string): EcrError {
  const message = `${field}: ${rule}${detail === undefined ? '' : ` (${detail})`}`;
  return new EcrError(code, message, { field, rule });
}

export function isEcrError(value: unknown): value is EcrError {
  return value instanceof EcrError;
}

/** Wraps anything thrown into an EcrError, keeping the original as `cause`. */
export function toEcrError(value: unknown, fallback: ErrorCode = 'INTERNAL'): EcrError {
  if (value instanceof EcrError) return value;
  const message = value instanceof Error ? value.message : String(value);
  return new EcrError(fallback, message, { cause: value });
}
