import { z } from 'zod';
import { EcrError } from '../../core/errors.js';

/**
 * eConduit cloud channel messages (seed 002, protocols.md "econduit"). Commands are JSON objects
 * with a `Command`; the cloud's replies to them are plain text or a small JSON object; anything
 * else on the channel is a transaction payload in the terminal's own format (SEMI JSON for the
 * terminal types configured so), passed through untouched. Pure functions, shared by the gateway
 * and the terminal agent.
 */

/** The registration answers (anything but OK is a failure). */
export const REGISTRATION_RESULTS = [
  'OK-REGISTRATION',
  'FAILED-REGISTRATION',
  'FAILED-INVALID-TERMINAL-TYPE',
] as const;
export type RegistrationResult = (typeof REGISTRATION_RESULTS)[number];

/** The answer to a heartbeat, when the terminal asked for one (`AckHeartbeat`). */
export const HEARTBEAT_ACK = '{"Status":"OK"}';
/** What the terminal shows while its cloud connection is up, and while it is not (in red). */
export const POS_ONLINE = 'POS Online';
export const POS_OFFLINE = 'POS Offline';

/**
 * Longest `TerminalSecret` a Register may carry. The field is this project's addition to the
 * seed's Register (issue 17): a terminal provisioned with a registration secret must send it.
 */
export const MAX_TERMINAL_SECRET_LENGTH = 128;

/** Identifiers: the device serial number and the type names (letters, digits, `._-`). */
const ID = /^[A-Za-z0-9._-]+$/;

const text = (max: number) =>
  z.string({ error: 'must be a string' }).max(max, `must be at most ${max} characters`);

const REGISTER = z.object({
  Command: z.literal('Register'),
  TerminalType: text(64).min(1, 'must not be empty').regex(ID, 'letters, digits, . _ - only'),
  TerminalModel: text(64),
  TerminalID: text(64).min(1, 'must not be empty').regex(ID, 'letters, digits, . _ - only'),
  SoftwareVersion: text(128),
  // The seed writes "true" as a string; a JSON boolean means the same.
  AckHeartbeat: z
    .union([z.boolean(), z.enum(['true', 'false', 'True', 'False', 'TRUE', 'FALSE'])], {
      error: 'must be true or false',
    })
    .optional(),
  // Not in the seed: the registration secret of a terminal provisioned with one. Checked by the
  // gateway against its hash; never kept with the registration (see RegisterCommand).
  TerminalSecret: text(MAX_TERMINAL_SECRET_LENGTH).optional(),
});

export interface Registration {
  readonly terminalType: string;
  readonly terminalModel: string;
  readonly terminalId: string;
  readonly softwareVersion: string;
  /** The terminal wants `{"Status":"OK"}` for each heartbeat. */
  readonly ackHeartbeat: boolean;
}

/**
 * A Register as read off the wire: what the terminal says it is, and apart from it the
 * registration secret it presented (undefined when absent or empty). The secret is never part of
 * a `Registration`, which is what views, logs and cluster messages carry.
 */
export interface RegisterCommand {
  readonly registration: Registration;
  readonly terminalSecret: string | undefined;
}

/** A message from a terminal, as the gateway reads it. */
export type TerminalMessage =
  | ({ readonly type: 'register' } & Registration)
  | { readonly type: 'heartbeat' }
  /** A transaction answer, in the terminal's own format. */
  | { readonly type: 'payload'; readonly text: string };

function protocolError(message: string, field: string, rule: string): EcrError {
  return new EcrError('PROTOCOL_ERROR', message, { field, rule });
}

/** JSON.parse, or undefined when `text` is not JSON. */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** The start of a JSON value, for a message; JSON.parse takes nesting JSON.stringify cannot. */
function excerpt(value: unknown): string {
  try {
    return JSON.stringify(value)?.slice(0, 40) ?? 'undefined';
  } catch {
    return 'nested too deep to quote';
  }
}

/**
 * Reads one message from a terminal. A JSON object with a `Command` is a command (Register or
 * TerminalHeartbeat, checked field by field); anything else is a payload. Throws PROTOCOL_ERROR
 * naming the field and the rule for a command that breaks one (an unknown command, a Register
 * with a missing field); never for a payload, which its own codec judges.
 */
export function decodeTerminalMessage(text: string): TerminalMessage {
  const value = parseJson(text);
  if (value === null || typeof value !== 'object' || Array.isArray(value) || !('Command' in value))
    return { type: 'payload', text };
  const command = (value as { Command: unknown }).Command;
  if (command === 'TerminalHeartbeat') return { type: 'heartbeat' };
  if (command !== 'Register') {
    throw protocolError(
      `Command: must be Register or TerminalHeartbeat (${excerpt(command)})`,
      'Command',
      'Register or TerminalHeartbeat',
    );
  }
  const parsed = REGISTER.safeParse(value, { reportInput: true });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue === undefined || issue.path.length === 0 ? 'message' : issue.path.join('.');
    const rule =
      issue?.code === 'invalid_type' && issue.input === undefined
        ? 'is required'
        : (issue?.message ?? 'must be valid');
    throw protocolError(`Register: ${field}: ${rule}`, field, rule);
  }
  const r = parsed.data;
  return {
    type: 'register',
    terminalType: r.TerminalType,
    terminalModel: r.TerminalModel,
    terminalId: r.TerminalID,
    softwareVersion: r.SoftwareVersion,
    ackHeartbeat: r.AckHeartbeat === true || String(r.AckHeartbeat).toLowerCase() === 'true',
  };
}

/**
 * Why a message that should be a Register is not one, for the log (the terminal only ever hears
 * FAILED-REGISTRATION): not JSON (the seed's own sample, with typographic quotes and no opening
 * brace, is not), not an object, or not a Register.
 */
export function decodeRegister(text: string): Registration {
  return decodeRegisterCommand(text).registration;
}

/** `decodeRegister`, with the `TerminalSecret` the terminal presented kept apart. */
export function decodeRegisterCommand(text: string): RegisterCommand {
  const value = parseJson(text);
  if (value === undefined) {
    throw protocolError(
      'Register: must be JSON (straight quotes, braces around the object)',
      'message',
      'must be a JSON object',
    );
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw protocolError('Register: must be a JSON object', 'message', 'must be a JSON object');
  const message = decodeTerminalMessage(text);
  if (message.type === 'register') {
    const secret = (value as { TerminalSecret?: unknown }).TerminalSecret;
    return {
      registration: {
        terminalType: message.terminalType,
        terminalModel: message.terminalModel,
        terminalId: message.terminalId,
        softwareVersion: message.softwareVersion,
        ackHeartbeat: message.ackHeartbeat,
      },
      // decodeTerminalMessage checked it (a string within its bound) when present.
      terminalSecret: typeof secret === 'string' && secret !== '' ? secret : undefined,
    };
  }
  throw protocolError(
    `Command: must be Register before anything else (got ${message.type})`,
    'Command',
    'must be Register first',
  );
}

/**
 * The Register command a terminal sends (without the terminator); with `terminalSecret`, its
 * `TerminalSecret` field too.
 */
export function encodeRegister(registration: Registration, terminalSecret?: string): string {
  return JSON.stringify({
    Command: 'Register',
    TerminalType: registration.terminalType,
    TerminalModel: registration.terminalModel,
    TerminalID: registration.terminalId,
    SoftwareVersion: registration.softwareVersion,
    AckHeartbeat: registration.ackHeartbeat ? 'true' : 'false',
    ...(terminalSecret === undefined ? {} : { TerminalSecret: terminalSecret }),
  });
}

/** The heartbeat command (without the terminator). */
export const HEARTBEAT = '{"Command":"TerminalHeartbeat"}';

/** A message from the gateway, as a terminal reads it. */
export type GatewayMessage =
  | { readonly type: 'registration'; readonly result: RegistrationResult }
  | { readonly type: 'heartbeat-ack' }
  /** A transaction request, in the terminal's own format. */
  | { readonly type: 'payload'; readonly text: string };

export function decodeGatewayMessage(text: string): GatewayMessage {
  const trimmed = text.trim();
  if ((REGISTRATION_RESULTS as readonly string[]).includes(trimmed))
    return { type: 'registration', result: trimmed as RegistrationResult };
  const value = parseJson(trimmed);
  if (
    value !== null &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    Object.keys(value).length === 1 &&
    (value as { Status?: unknown }).Status === 'OK'
  )
    return { type: 'heartbeat-ack' };
  return { type: 'payload', text };
}
