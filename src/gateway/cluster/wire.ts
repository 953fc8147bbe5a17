import { z } from 'zod';
import { EcrError, ERROR_CODES, type ErrorCode } from '../../core/errors.js';
import {
  MAX_REFERENCE_LENGTH,
  MONEY_KINDS,
  OUTCOMES,
  PAYMENT_METHODS,
  type DriverOutcome,
} from '../../core/transaction.js';
import { PAYLOAD_PROTOCOLS } from '../provisioning.js';

/**
 * The wire format between gateway nodes, over NATS: JSON, one message per request, reply or
 * event. Both ends validate: a message that does not parse is refused with a coded error (holder
 * side) or taken for no answer (requester side), never guessed at. The enums come from the core's
 * own lists, so that a kind or outcome the core knows is one the wire carries.
 */

/** Largest NATS message this node accepts or sends (a payment request is a few hundred bytes). */
export const MAX_CLUSTER_MESSAGE_BYTES = 16 * 1024;

/** A node id or a subject prefix: one NATS subject token, short enough to read in a log. */
export const NAME = /^[A-Za-z0-9_-]{1,32}$/;
export const NAME_RULE = 'letters, digits, _ and -, 1 to 32';

/** A terminal's field, as long as the SEMI codec lets it be (its MAX_FIELD). */
const FIELD = z.string().max(256);
/** Latest instant a JavaScript Date can hold (ms since the epoch). */
const MAX_DATE_MS = 8.64e15;
const REFERENCE = z.string().min(1).max(MAX_REFERENCE_LENGTH);

const Money = z.strictObject({
  minor: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  currency: z.string().regex(/^[A-Z]{3}$/),
});
const KIND = z.enum(MONEY_KINDS);
const Request = z.strictObject({
  kind: KIND,
  reference: REFERENCE,
  amount: Money,
  method: z.enum(PAYMENT_METHODS).optional(),
  originalReference: REFERENCE.optional(),
  receiptEmail: z.string().max(254).optional(),
  receiptSms: z.string().max(32).optional(),
  forceAuthorization: z.boolean().optional(),
  wireId: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  original: z
    .strictObject({
      reference: REFERENCE,
      kind: KIND,
      amount: Money,
      terminalTxId: FIELD.optional(),
    })
    .optional(),
});
/** Where the holder says, as soon as it takes a long request, which node it is. */
const PROGRESS = z
  .string()
  .regex(/^_INBOX\.[A-Za-z0-9]{1,64}$/)
  .optional();
export const RpcRequest = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('execute'), request: Request, progress: PROGRESS }),
  z.strictObject({
    op: z.literal('query'),
    progress: PROGRESS,
    reference: REFERENCE,
    wireId: z.number().int().positive().optional(),
    attempt: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
    earlierTerminalTxIds: z.array(FIELD).max(100).optional(),
    // An age, not a time: the two nodes' clocks need not agree.
    sentAgoMs: z.number().int().nonnegative().optional(),
    patient: z.boolean(),
  }),
  z.strictObject({ op: z.literal('cancel') }),
  z.strictObject({ op: z.literal('batch-close') }),
  z.strictObject({ op: z.literal('status') }),
]);
export type RpcRequest = z.infer<typeof RpcRequest>;

const ERROR_CODE = z.custom<ErrorCode>(
  (v) => typeof v === 'string' && Object.hasOwn(ERROR_CODES, v),
);
const Outcome = z.object({
  outcome: z.enum(OUTCOMES),
  errorCode: ERROR_CODE.optional(),
  message: z.string().max(4_000).optional(),
  approvalCode: FIELD.optional(),
  maskedPan: FIELD.optional(),
  cardBrand: FIELD.optional(),
  terminalTxId: FIELD.optional(),
  details: z.record(z.string().max(256), z.union([FIELD, z.number(), z.boolean()])).optional(),
});
type WireOutcome = z.infer<typeof Outcome>;
/** A terminal's live state as its holder reports it (shown by every node). */
const Info = z.object({
  terminalId: z.string().min(1).max(64),
  terminalType: z.string().max(64),
  terminalModel: z.string().max(256),
  softwareVersion: z.string().max(256),
  ackHeartbeat: z.boolean(),
  payload: z.enum(PAYLOAD_PROTOCOLS),
  remote: z.string().max(128),
  registeredAt: z.number().int().nonnegative().max(MAX_DATE_MS),
  lastSeenAt: z.number().int().nonnegative().max(MAX_DATE_MS),
  busy: z.boolean(),
});
const Totals = z.object({ batchNumber: z.string().max(64) }).catchall(z.unknown());
export const RpcReply = z.union([
  z.object({ ok: z.literal(true), outcome: Outcome }),
  z.object({ ok: z.literal(true), cancelled: z.boolean() }),
  z.object({ ok: z.literal(true), totals: Totals }),
  z.object({ ok: z.literal(true), info: Info }),
  z.object({ ok: z.literal(false), code: ERROR_CODE, message: z.string().max(2_000) }),
]);
export type RpcReply = z.infer<typeof RpcReply>;

/** A takeover: the node the terminal registered on asks the previous holder to let go. */
export const Release = z.strictObject({ node: z.string().max(32) });
/** A liveness check; naming a request (its progress inbox) asks whether the holder is still on it. */
export const Ping = z.object({ request: PROGRESS });
/** The holder's word, on a request's progress inbox, that it took the request. */
export const Accepted = z.strictObject({ node: z.string().regex(NAME) });
/** A terminal came online on, or left, a node. */
export const Presence = z.strictObject({
  terminalId: z.string().min(1).max(64),
  online: z.boolean(),
  node: z.string().max(32),
});

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encode(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

/** Parses a NATS payload with `schema`; INVALID_INPUT naming what is wrong otherwise. */
export function decode<T>(schema: z.ZodType<T>, data: Uint8Array, what: string): T {
  if (data.length > MAX_CLUSTER_MESSAGE_BYTES)
    throw new EcrError('INVALID_INPUT', `${what}: larger than ${MAX_CLUSTER_MESSAGE_BYTES} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(data));
  } catch {
    throw new EcrError('INVALID_INPUT', `${what}: not JSON`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new EcrError(
      'INVALID_INPUT',
      `${what}: ${issue?.path.join('.') || 'message'} ${issue?.message ?? 'is malformed'}`,
    );
  }
  return parsed.data;
}

/** A holder's answer to a ping about a request: true when it says it is done with it. */
export function saysDone(data: Uint8Array): boolean {
  try {
    return (JSON.parse(decoder.decode(data)) as { working?: unknown }).working === false;
  } catch {
    return false;
  }
}

/** A terminal id as one subject token: ids hold letters, digits, `.`, `_`, `-`; `.` splits tokens. */
export function token(terminalId: string): string {
  return terminalId.replace(/\./g, '~');
}

/**
 * A driver's outcome as the wire carries it. `lastReference` travels as `details.lastReference`,
 * where it was before DriverOutcome had a field for it: nodes of either version read each other.
 */
export function outcomeToWire(outcome: DriverOutcome): WireOutcome {
  const { lastReference, ...rest } = outcome;
  if (lastReference === undefined) return rest;
  return { ...rest, details: { ...rest.details, lastReference } };
}

/** The outcome a holder sent, with `details.lastReference` back in its own field. */
export function outcomeFromWire(wire: WireOutcome): DriverOutcome {
  const lastReference = wire.details?.lastReference;
  if (typeof lastReference !== 'string') return wire;
  const { details: withReference, ...rest } = wire;
  const details = { ...withReference };
  delete details.lastReference;
  return { ...rest, ...(Object.keys(details).length === 0 ? {} : { details }), lastReference };
}
