import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { invalid } from '../core/errors.js';
import { formatAmount, parseAmount, requireCurrency, type Money } from '../core/money.js';
import { validateReference, type MoneyKind, type TransactionResult } from '../core/transaction.js';
import { requestIssueError } from '../http/parse-request.js';

/**
 * The HiPay connectors' request and response shapes (seeds 001 desktop, 003 kiosk), parsed into
 * the project's model and built back from a TransactionResult. A POS written against the vendor's
 * connector must work against ours unchanged: field names, spellings (the desktop seed's
 * `transation_type`) and shapes (the kiosk answer is an array of one object) are kept.
 */

export type ConnectorFlavour = 'desktop' | 'kiosk';

/** Longest cart/basket, customer or custom data echoed back, once serialised. */
export const MAX_ECHO_BYTES = 16 * 1024;
/** Custom data entries kept. */
export const MAX_CUSTOM_DATA_ENTRIES = 64;

/** A payment as the connector understood it, before it reaches TransactionService. */
export interface ConnectorPayment {
  readonly flavour: ConnectorFlavour;
  readonly kind: MoneyKind;
  readonly reference: string;
  /** True when the caller gave no order id and one was made up (desktop only). */
  readonly generatedReference: boolean;
  readonly amount: Money;
  /** The amount exactly as the caller sent it, echoed back (`9.99` or `"10,23"`). */
  readonly amountAsSent: number | string;
  readonly forceAuthorization: boolean;
  /** The cart/basket echoed back: the caller's when it is well-formed and adds up, else `{}`. */
  readonly cart: unknown;
  /** Why the cart was replaced by an empty one, if it was. */
  readonly cartProblem?: string;
  readonly customer: unknown;
  readonly customData: Readonly<Record<string, string | number | boolean>>;
}

const amountField = z.union([z.number(), z.string().max(32)], {
  error: 'must be a number such as 9.99 or a string such as "10,23"',
});

const DESKTOP = z.object({
  amount: amountField,
  currency: z.string().max(8).optional(),
  order_id: z.string().max(256).optional(),
  transaction_type: z.string().max(16).optional(),
  // The seed's own example spells it so; both are read.
  transation_type: z.string().max(16).optional(),
  force_authorization: z.boolean({ error: 'must be true or false' }).optional(),
  cart: z.unknown().optional(),
  customer: z.unknown().optional(),
  custom_data: z.unknown().optional(),
});

const KIOSK = z.object({
  amount: amountField,
  orderId: z.string({ error: 'is required: the kiosk connector needs the order number' }).max(256),
  currency: z.string().max(8).optional(),
  force_authorization: z.boolean({ error: 'must be true or false' }).optional(),
  basket: z.unknown().optional(),
  customer: z.unknown().optional(),
  customData: z.unknown().optional(),
});

/** The desktop seed's `transaction_type` values. */
const KINDS: Readonly<Record<string, MoneyKind>> = { debit: 'sale', credit: 'refund' };

function firstIssue(error: z.ZodError): never {
  throw requestIssueError(error.issues[0] as z.core.$ZodIssue);
}

/** Bytes of `value` as JSON; undefined when it is nested too deep for JSON.stringify. */
function serialisedSize(value: unknown): number | undefined {
  if (value === undefined) return 0;
  try {
    return Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');
  } catch {
    // JSON.parse takes nesting (`[[[…]]]` a few thousand deep) that JSON.stringify cannot.
    return undefined;
  }
}

function echoable(value: unknown, field: string): unknown {
  const size = serialisedSize(value);
  if (size === undefined || size > MAX_ECHO_BYTES) {
    const detail = size === undefined ? 'nested too deep' : undefined;
    throw invalid(
      'INVALID_INPUT',
      field,
      `must be at most ${MAX_ECHO_BYTES} bytes of JSON`,
      detail,
    );
  }
  return value ?? {};
}

/** Custom data: only Bool / Int / Float / String values are accepted (seed 001). */
function customData(value: unknown, field: string): Record<string, string | number | boolean> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value))
    throw invalid('INVALID_INPUT', field, 'must be an object');
  const entries = Object.entries(value);
  if (entries.length > MAX_CUSTOM_DATA_ENTRIES)
    throw invalid('INVALID_INPUT', field, `must have at most ${MAX_CUSTOM_DATA_ENTRIES} entries`);
  const out: Record<string, string | number | boolean> = {};
  for (const [key, item] of entries) {
    if (key.length > 64)
      throw invalid('INVALID_INPUT', field, 'keys must be at most 64 characters');
    if (
      typeof item === 'boolean' ||
      (typeof item === 'number' && Number.isFinite(item)) ||
      (typeof item === 'string' && item.length <= 1024)
    ) {
      out[key] = item;
    } else {
      throw invalid(
        'INVALID_INPUT',
        `${field}.${key.replace(/[^\w.-]/g, '?')}`,
        'must be a boolean, a number or a string of at most 1024 characters',
      );
    }
  }
  return out;
}

/**
 * The seed's cart rule: a cart that is not filled in correctly or does not add up to the amount
 * does not stop the payment; the order goes on with an empty cart, and the answer says so. A cart
 * is one item or a list of items, each with a numeric `total_amount`.
 */
function checkCart(cart: unknown, amount: Money): { cart: unknown; problem?: string } {
  if (cart === undefined || cart === null) return { cart: {} };
  const items = Array.isArray(cart) ? cart : [cart];
  let total = 0;
  for (const item of items) {
    const value = (item as { total_amount?: unknown } | null)?.total_amount;
    if (typeof item !== 'object' || item === null || typeof value !== 'number' || !(value >= 0)) {
      return { cart: {}, problem: 'every item needs a numeric total_amount' };
    }
    total += value;
  }
  const exponent = requireCurrency(amount.currency).exponent;
  if (Math.round(total * 10 ** exponent) !== amount.minor) {
    return {
      cart: {},
      problem: `its items add up to ${total.toFixed(exponent)}, not ${formatAmount(amount)}`,
    };
  }
  return { cart };
}

/** Parses a payment body of the configured flavour. Throws INVALID_* errors naming the field. */
export function parsePayment(
  flavour: ConnectorFlavour,
  body: unknown,
  defaultCurrency: string,
): ConnectorPayment {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw invalid('INVALID_INPUT', 'body', 'must be a JSON object');
  const desktop = flavour === 'desktop';
  // A kiosk body sent to a desktop connector would lose its orderId (unknown fields are ignored)
  // and become a new payment on every retry: refused, naming the field and the fix.
  if (desktop && Object.hasOwn(body, 'orderId') && !Object.hasOwn(body, 'order_id'))
    throw invalid(
      'INVALID_INPUT',
      'orderId',
      "is the kiosk API's field: this connector speaks the desktop API (send order_id, or set CONNECTOR_FLAVOUR=kiosk)",
    );
  const parsed = desktop
    ? DESKTOP.safeParse(body, { reportInput: true })
    : KIOSK.safeParse(body, { reportInput: true });
  if (!parsed.success) firstIssue(parsed.error);
  const data = parsed.data as z.output<typeof DESKTOP> & z.output<typeof KIOSK>;
  const currency = requireCurrency(data.currency ?? defaultCurrency).code;
  const amount = parseAmount(data.amount, currency, { field: 'amount' });
  const given = desktop ? data.order_id : data.orderId;
  const reference =
    given === undefined
      ? `ECR-${randomUUID()}`
      : validateReference(given, desktop ? 'order_id' : 'orderId');
  const typeName = (data.transaction_type ?? data.transation_type ?? 'Debit').toLowerCase();
  // Own keys only: `constructor` or `__proto__` would otherwise name Object's.
  const kind = Object.hasOwn(KINDS, typeName) ? KINDS[typeName] : undefined;
  if (kind === undefined)
    throw invalid('INVALID_INPUT', 'transaction_type', 'must be Debit or Credit');
  const cartField = desktop ? 'cart' : 'basket';
  // Bounded first; then checked as sent (no cart at all is no problem).
  echoable(data[cartField], cartField);
  const { cart, problem } = checkCart(data[cartField], amount);
  return {
    flavour,
    kind,
    reference,
    generatedReference: given === undefined,
    amount,
    amountAsSent: data.amount,
    forceAuthorization: data.force_authorization ?? false,
    cart,
    ...(problem === undefined ? {} : { cartProblem: `${cartField} ignored: ${problem}` }),
    customer: echoable(data.customer, 'customer'),
    customData: customData(
      desktop ? data.custom_data : data.customData,
      desktop ? 'custom_data' : 'customData',
    ),
  };
}

/** What the back-office notification did within the request. */
export interface NotificationReport {
  readonly sent: boolean;
  readonly attempts: number;
}

/** ecr-bridge's own view of the result, added beside the vendor's fields. */
function ours(result: TransactionResult, payment: ConnectorPayment) {
  return {
    outcome: result.outcome,
    state: result.state,
    attempt: result.attempt,
    replayed: result.replayed,
    ...(result.approvalCode === undefined ? {} : { approvalCode: result.approvalCode }),
    ...(result.maskedPan === undefined ? {} : { maskedPan: result.maskedPan }),
    ...(result.cardBrand === undefined ? {} : { cardBrand: result.cardBrand }),
    ...(result.terminalTxId === undefined ? {} : { terminalTxId: result.terminalTxId }),
    ...(payment.cartProblem === undefined ? {} : { cartProblem: payment.cartProblem }),
    // A partial approval (SEMI) charged less than asked: say how much, or the merchant
    // under-collects.
    ...(result.details?.partial === true && typeof result.details.approvedMinor === 'number'
      ? {
          partial: true,
          approvedAmount: formatAmount({
            minor: result.details.approvedMinor,
            currency: result.amount.currency,
          }),
        }
      : {}),
  };
}

/** The desktop connector's answer (seed 001). */
export function desktopAnswer(
  payment: ConnectorPayment,
  result: TransactionResult,
  notification: NotificationReport,
) {
  const success = result.outcome === 'approved';
  return {
    paymentStatus: success ? 'SUCCESS' : 'FAILURE',
    notificationHipaySent: notification.sent,
    numberOfNotificationSent: notification.attempts,
    ...(success
      ? {}
      : {
          errorCode: result.errorCode ?? result.outcome.toUpperCase(),
          errorDescription: result.message ?? `the payment was ${result.outcome}`,
        }),
    amount: payment.amountAsSent,
    currency: payment.amount.currency,
    orderId: payment.reference,
    transationType: payment.kind === 'refund' ? 'Credit' : 'Debit',
    forceAuthorization: payment.forceAuthorization,
    cart: payment.cart,
    customer: payment.customer,
    customData: payment.customData,
    ecrBridge: ours(result, payment),
  };
}

/**
 * The kiosk answer's `receipt` keys, in the order of seed 003's example answer: all 32 are always
 * there, blank (`""`) where the terminal's protocol does not give the value, so that a kiosk
 * program written against the vendor's connector finds every key it reads.
 */
export const KIOSK_RECEIPT_KEYS = [
  'ticketHeader',
  'localDate',
  'localTime',
  'acceptor',
  'transactionType',
  'contractNumber',
  'SIRET',
  'activity',
  'paymentType',
  'siteType',
  'primaryAccountNumber',
  'TASA',
  'cardAppExpiry',
  'serviceCode',
  'crypto',
  'currencyNumCode',
  'acceptationSystemNum',
  'transactionNumber',
  'transactionFileNumber',
  'readingMode',
  'authorizationNumber',
  'forceCode',
  'amount',
  'currencyAlphaCode',
  'currencyFractionPart',
  'counterValueAmount',
  'counterValueCurrencyAlphaCode',
  'counterValueCurrencyFractionPart',
  'inclusiveAmount',
  'ticketFooter',
  'AID',
  'label',
] as const;

export type KioskReceipt = Readonly<Record<(typeof KIOSK_RECEIPT_KEYS)[number], string>>;

/** A masked PAN as it stands in a masked PAN: at most 6 digits, masking, at most 4 digits. */
const MASKED_PAN = /^(\d{0,6})([*Xx#]+)(\d{0,4})$/;

/**
 * A masked PAN in the seed's receipt form, `123456XXXXXX7890`; blank when it is not a masked PAN
 * (never anything that could hold more digits).
 */
export function receiptPan(maskedPan: string | undefined): string {
  const match = MASKED_PAN.exec((maskedPan ?? '').replace(/[\s-]/g, ''));
  if (match === null) return '';
  const [, first = '', hidden = '', last = ''] = match;
  return `${first}${'X'.repeat(hidden.length)}${last}`;
}

/** The PAN on the seed's ticket shows the last 4 digits only: `XXXXXXXXXXXX1234`. */
function ticketPan(maskedPan: string | undefined): string {
  const pan = receiptPan(maskedPan);
  return pan.replace(/^\d+/, (digits) => 'X'.repeat(digits.length));
}

/**
 * The terminal's transaction number in the seed's 6-digit form (`000001`): a shorter number is
 * zero-padded, leading zeros past 6 digits are dropped (a Concert private field is 10 wide), and
 * anything else is kept as the terminal gave it rather than cut.
 */
function transactionNumber(terminalTxId: string | undefined): string {
  const id = (terminalTxId ?? '').trim();
  if (!/^\d+$/.test(id)) return id;
  return id.replace(/^0+(?=\d{6})/, '').padStart(6, '0');
}

/** What the terminal charged, in minor units: less than asked on a partial approval (SEMI). */
function chargedMinor(result: TransactionResult): number {
  const approved = result.details?.approvedMinor;
  return result.details?.partial === true && typeof approved === 'number'
    ? approved
    : result.amount.minor;
}

const two = (n: number): string => String(n).padStart(2, '0');

/**
 * The receipt (seed 003's 32 keys, in order) from a terminal result. Filled: date and time of
 * the request, debit `01` / credit `02`, the masked PAN, currency, the terminal's transaction
 * number, approval code, amount charged, card brand. The rest (acceptor, contract, SIRET, EMV
 * data, counter-value) no protocol ecr-bridge speaks gives: blank.
 */
export function kioskReceipt(result: TransactionResult): KioskReceipt {
  const created = new Date(result.createdAt);
  const currency = requireCurrency(result.amount.currency);
  // The currency the terminal answered in (Concert's numeric code), else the request's.
  const numeric = result.details?.currencyNumeric;
  const filled: Partial<Record<(typeof KIOSK_RECEIPT_KEYS)[number], string>> = {
    localDate: `${two(created.getDate())}${two(created.getMonth() + 1)}${String(created.getFullYear()).slice(2)}`,
    localTime: `${two(created.getHours())}${two(created.getMinutes())}${two(created.getSeconds())}`,
    transactionType: result.kind === 'refund' ? '02' : '01',
    primaryAccountNumber: receiptPan(result.maskedPan),
    currencyNumCode:
      typeof numeric === 'string' && /^\d{3}$/.test(numeric) ? numeric : currency.numeric,
    transactionNumber: transactionNumber(result.terminalTxId),
    authorizationNumber: result.approvalCode ?? '',
    amount: String(chargedMinor(result)).padStart(8, '0'),
    currencyAlphaCode: currency.code,
    currencyFractionPart: String(currency.exponent),
    label: result.cardBrand ?? '',
  };
  return Object.fromEntries(
    KIOSK_RECEIPT_KEYS.map((key) => [key, filled[key] ?? '']),
  ) as KioskReceipt;
}

/**
 * The ticket text, `|`-separated lines in the seed's order, with the lines a terminal result can
 * fill: `CARTE BANCAIRE`, the card brand, `LE dd/mm/yy A hh:mm:ss`, the PAN (last 4 digits, as
 * the seed's ticket), the transaction number line,
 * `NO AUTO:`, `MONTANT REEL:`, `DEBIT` / `CREDIT`, `TICKET CLIENT A CONSERVER`, and the seed's
 * two empty lines at the end. The acceptor, contract, `@` and `MONTANT ESTIME` lines are left out.
 */
export function kioskTicket(result: TransactionResult, receipt = kioskReceipt(result)): string {
  const when = new Date(result.createdAt);
  const pan = ticketPan(result.maskedPan);
  const charged = { minor: chargedMinor(result), currency: result.amount.currency };
  const lines: (string | undefined)[] = [
    'CARTE BANCAIRE',
    result.cardBrand,
    `LE ${two(when.getDate())}/${two(when.getMonth() + 1)}/${String(when.getFullYear()).slice(2)} A ${two(when.getHours())}:${two(when.getMinutes())}:${two(when.getSeconds())}`,
    pan === '' ? undefined : pan,
    // Seed: `001 000001 03 C ` (fixed columns); only the transaction number is known.
    receipt.transactionNumber === ''
      ? undefined
      : `${receipt.acceptationSystemNum.padEnd(3)} ${receipt.transactionNumber} ${''.padEnd(2)} ${receipt.readingMode.padEnd(1)} `,
    result.approvalCode === undefined ? undefined : `NO AUTO:${result.approvalCode}`,
    `MONTANT REEL:${formatAmount(charged).replace('.', ',')} ${result.amount.currency}`,
    result.kind === 'refund' ? 'CREDIT' : 'DEBIT',
    result.outcome === 'approved'
      ? 'TICKET CLIENT A CONSERVER'
      : `TRANSACTION ${result.outcome.toUpperCase()}`,
    '',
    '',
  ];
  return lines.filter((line): line is string => line !== undefined).join('|');
}

/** The kiosk connector's answer (seed 003): an array of one object. */
export function kioskAnswer(
  payment: ConnectorPayment,
  result: TransactionResult,
  notification: NotificationReport,
) {
  const success = result.outcome === 'approved';
  return [
    {
      status: success ? 'Success' : 'Failure',
      error: success
        ? null
        : {
            code: result.errorCode ?? result.outcome.toUpperCase(),
            message: result.message ?? `the payment was ${result.outcome}`,
          },
      receipt: kioskReceipt(result),
      ticket: kioskTicket(result),
      amount: payment.amountAsSent,
      currency: payment.amount.currency,
      orderId: payment.reference,
      basket: payment.cart,
      customer: payment.customer,
      customData: payment.customData,
      notificationHipaySent: notification.sent,
      numberOfNotificationSent: notification.attempts,
      ecrBridge: ours(result, payment),
    },
  ];
}

/** A refusal before any payment, in the flavour's shape (desktop object, kiosk array). */
export function errorAnswer(
  flavour: ConnectorFlavour,
  error: { code: string; message: string; field?: string },
) {
  if (flavour === 'kiosk') {
    return [
      {
        status: 'Failure',
        error: {
          code: error.code,
          message: error.message,
          ...(error.field === undefined ? {} : { field: error.field }),
        },
      },
    ];
  }
  return {
    paymentStatus: 'FAILURE',
    notificationHipaySent: false,
    numberOfNotificationSent: 0,
    errorCode: error.code,
    errorDescription: error.message,
    ...(error.field === undefined ? {} : { field: error.field }),
  };
}
