import { z } from 'zod';
import { EcrError, invalid } from '../core/errors.js';
import { formatAmount } from '../core/money.js';
import type { MoneyKind, TransactionResult } from '../core/transaction.js';
import type { RequestIssueOptions } from '../http/parse-request.js';

/**
 * eConduit's request and answer shapes (protocols.md, "econduit"): the `command` values, the
 * fields of `runTransaction` and `checkStatus` with their rules, and the result and error JSON.
 * Pure: the routes that use them are in pos-api.ts.
 */

/** eConduit `command` values, and what each is here. Gift cards are not supported. */
export const COMMANDS = {
  sale: { kind: 'sale', name: 'Sale', followUp: false },
  refund: { kind: 'refund', name: 'Refund', followUp: false },
  auth: { kind: 'auth', name: 'Auth', followUp: false },
  capture: { kind: 'capture', name: 'Capture', followUp: true },
  void: { kind: 'void', name: 'Void', followUp: true },
  tipadjust: { kind: 'tip-adjust', name: 'TipAdjust', followUp: true },
} as const satisfies Record<string, { kind: MoneyKind; name: string; followUp: boolean }>;
export type Command = keyof typeof COMMANDS;
const GIFT_COMMANDS = ['giftactivate', 'giftsale', 'giftrefund', 'giftaddvalue', 'giftbalance'];

/** Longest refID: follow-ups are journaled as `<refID>:<command>` within 64 characters. */
const MAX_REF_ID = 50;
/** A terminal id as the gateway's routes take it. */
export const ID = /^[A-Za-z0-9._-]{1,64}$/;
/** An amount as eConduit sends it: digits with a decimal point. */
export const AMOUNT = /^\d{1,10}\.\d{1,3}$/;

const field = (name: string, max: number) =>
  z
    .string({ error: (i) => (i.input === undefined ? 'is required' : 'must be a string') })
    .max(max, `must be at most ${max} characters`);

export const Credentials = z.object({
  key: field('key', 128).min(1, 'is required'),
  password: field('password', 256).min(1, 'is required'),
});

export const RunTransaction = Credentials.extend({
  command: field('command', 32).min(1, 'is required'),
  terminalId: field('terminalId', 64).regex(ID, 'letters, digits, . _ - (1 to 64)'),
  refID: field('refID', MAX_REF_ID)
    .min(1, 'is required (it makes retries and checkStatus safe)')
    .regex(/^[\x21-\x39\x3b-\x7e]+$/, "printable ASCII without spaces or ':'"),
  amount: z
    .string({
      error: (i) =>
        i.input === undefined
          ? 'is required'
          : 'must be a string with a decimal point, e.g. "2.50"',
    })
    .max(16, 'must be at most 16 characters')
    .optional(),
  invoiceNumber: field('invoiceNumber', 64).optional(),
});

export const CheckStatus = Credentials.extend({
  refID: field('refID', MAX_REF_ID).min(1, 'is required'),
  terminalId: field('terminalId', 64).regex(ID, 'letters, digits, . _ - (1 to 64)').optional(),
  command: field('command', 32).optional(),
  date: field('date', 8)
    .regex(/^\d{8}$/, 'MMddyyyy')
    .optional(),
});

/**
 * How the gateway names a bad field (its own zod schemas' messages kept): an issue about the
 * input as a whole names `request`, and a bad amount is INVALID_AMOUNT.
 */
export const FIELD_ERRORS: RequestIssueOptions = {
  whole: 'request',
  codeFor: (field) => (field === 'amount' ? 'INVALID_AMOUNT' : 'INVALID_INPUT'),
  namesUnknownKeys: false,
};

export function commandOf(text: string | undefined): Command {
  const name = (text ?? 'sale').toLowerCase();
  if (Object.hasOwn(COMMANDS, name)) return name as Command;
  if (GIFT_COMMANDS.includes(name)) {
    throw new EcrError(
      'UNSUPPORTED_OPERATION',
      `command: gift card commands are not supported by this gateway (${text})`,
      { field: 'command', rule: 'Sale, Refund, Auth, Capture, Void or TipAdjust' },
    );
  }
  throw invalid(
    'INVALID_INPUT',
    'command',
    'must be Sale, Refund, Auth, Capture, Void or TipAdjust',
    text?.slice(0, 32),
  );
}

/** The journal's reference of an eConduit transaction: follow-ups reuse their original's refID. */
export function referenceOf(command: Command, refId: string): string {
  return COMMANDS[command].followUp ? `${refId}:${command}` : refId;
}

const RESULT_CODES = {
  approved: 'Approved',
  declined: 'Declined',
  cancelled: 'Cancelled',
  failed: 'Error',
  unknown: 'Unknown',
} as const;

/** A transaction as eConduit's result JSON (protocols.md, "econduit"). */
export function resultJson(
  result: TransactionResult,
  command: Command,
  refId: string,
  merchant: string,
): Record<string, unknown> {
  const details = result.details ?? {};
  const approved = result.outcome === 'approved';
  const approvedMinor =
    typeof details.approvedMinor === 'number' ? details.approvedMinor : result.amount.minor;
  const amount = formatAmount({
    minor: approved ? approvedMinor : result.amount.minor,
    currency: result.amount.currency,
  });
  const last4 = result.maskedPan?.slice(-4) ?? '';
  const entry = typeof details.ENTRY_MODE === 'string' ? details.ENTRY_MODE : '';
  const message =
    result.state === 'received' || result.state === 'sent'
      ? 'in progress at the terminal: call checkStatus until ResultFinal is true'
      : result.outcome === 'unknown'
        ? `${result.message ?? 'no answer seen'}: call checkStatus until ResultFinal is true`
        : (result.message ?? (approved ? 'APPROVED' : ''));
  return {
    TerminalID: result.terminalId,
    ResultCode: RESULT_CODES[result.outcome],
    // False while the outcome is not known: eConduit's own flag for "call checkStatus again".
    ResultFinal: result.outcome !== 'unknown',
    AuthCode: result.approvalCode ?? '',
    TransType: COMMANDS[command].name,
    Amount: Number(amount),
    AmountString: amount,
    CardType: result.cardBrand ?? '',
    Last4: last4,
    Name: '',
    Message: message,
    RefID: refId,
    EntryMethod: entry,
    ErrorCode: result.errorCode ?? '',
    receiptTerminal: receipt(result, command, merchant, amount),
  };
}

/** A short receipt text; the card number only ever masked. */
function receipt(
  result: TransactionResult,
  command: Command,
  merchant: string,
  amount: string,
): string {
  return [
    `Merchant: ${merchant}`,
    `Terminal: ${result.terminalId}`,
    `${result.completedAt ?? result.createdAt}`,
    `${COMMANDS[command].name.toUpperCase()} ${amount} ${result.amount.currency}`,
    ...(result.maskedPan === undefined
      ? []
      : [`Account: ${result.cardBrand ?? ''} ${result.maskedPan}`.replace('  ', ' ')]),
    ...(result.approvalCode === undefined ? [] : [`Authorization Code: ${result.approvalCode}`]),
    `Result: ${RESULT_CODES[result.outcome].toUpperCase()}`,
  ].join('\n');
}

/** An error as eConduit-shaped JSON. */
export function errorJson(error: EcrError, final: boolean): Record<string, unknown> {
  return {
    ResultCode: 'Error',
    ResultFinal: final,
    Message: error.message,
    ErrorCode: error.code,
    ...(error.field === undefined ? {} : { Field: error.field }),
    ...(error.rule === undefined ? {} : { Rule: error.rule }),
  };
}
