import { invalid } from '../core/errors.js';
import { redactPans } from '../core/pan.js';
import type { Registration, RegistrationResult } from '../protocols/econduit/messages.js';

/**
 * What the gateway accepts from a provisioned terminal (seed 002): a `Register` whose
 * `TerminalType` is the one the terminal was provisioned with, then transactions in the payload
 * format it was provisioned with. The provisioning decides; `gateway start --terminal-type` is
 * only an optional allow-list on top of it.
 */

/**
 * The transaction payload formats a terminal can speak over the channel (seed 002: transactions
 * are "processed just as they are today"). SEMI JSON (seed 004) is the one there is.
 */
export const PAYLOAD_PROTOCOLS = ['semi'] as const;
export type PayloadProtocol = (typeof PAYLOAD_PROTOCOLS)[number];
/**
 * The payload of a terminal provisioned without one. Nothing is stored per terminal while SEMI
 * is the only format: every terminal speaks it; a second format will bring a column.
 */
export const DEFAULT_PAYLOAD: PayloadProtocol = 'semi';

/** What the gateway knows of a provisioned terminal when it registers. */
export interface ProvisionedTerminal {
  /** The `TerminalType` its Register must carry. */
  readonly terminalType: string;
  /** The format of its transaction payloads. */
  readonly payload: PayloadProtocol;
  /**
   * Provisioned with a registration secret: its Register must carry it (`TerminalSecret`),
   * checked against the stored hash (terminal-identity.ts). @default false
   */
  readonly hasSecret?: boolean;
  /**
   * It must connect over TLS with a client certificate the gateway's client CA signed, naming its
   * TerminalID (CN or DNS subjectAltName). @default false
   */
  readonly requireCertificate?: boolean;
}

/** Checks a payload format name; INVALID_INPUT naming `field` otherwise. */
export function validatePayload(field: string, value: unknown): PayloadProtocol {
  if (typeof value === 'string' && (PAYLOAD_PROTOCOLS as readonly string[]).includes(value))
    return value as PayloadProtocol;
  throw invalid(
    'INVALID_INPUT',
    field,
    `must be one of: ${PAYLOAD_PROTOCOLS.join(', ')}`,
    typeof value === 'string' ? redactPans(value.slice(0, 64)) : typeof value,
  );
}

/** Why a registration is refused: the answer the terminal gets, and the reason for the log. */
export interface Refusal {
  readonly result: Exclude<RegistrationResult, 'OK-REGISTRATION'>;
  readonly why: string;
}

/**
 * The verdict on a Register once its terminal was looked up: its payload format, or the refusal
 * (FAILED-REGISTRATION for a TerminalID nobody provisioned, FAILED-INVALID-TERMINAL-TYPE for a
 * type other than the provisioned one).
 */
export function judgeRegistration(
  registration: Registration,
  provisioned: ProvisionedTerminal | undefined,
): { readonly payload: PayloadProtocol } | Refusal {
  if (provisioned === undefined)
    return { result: 'FAILED-REGISTRATION', why: 'TerminalID: not a provisioned terminal' };
  if (provisioned.terminalType !== registration.terminalType) {
    return {
      result: 'FAILED-INVALID-TERMINAL-TYPE',
      why: `TerminalType: this terminal is provisioned as ${provisioned.terminalType}`,
    };
  }
  return { payload: provisioned.payload };
}

/**
 * A Register as the gateway keeps and shows it: `TerminalModel` and `SoftwareVersion` are free
 * text from the terminal, so a card number in them is masked before any log, view or cluster
 * message sees it (ARCHITECTURE.md invariant 3). `TerminalID` stays as sent: it is the key the
 * terminal is provisioned under; views mask it with `shownSerial`.
 */
export function maskRegistration(registration: Registration): Registration {
  return {
    ...registration,
    terminalModel: redactPans(registration.terminalModel),
    softwareVersion: redactPans(registration.softwareVersion),
  };
}

/** A terminal's serial (its Register's `TerminalID`) for a view or a log: card-number-like runs masked. */
export function shownSerial(terminalId: string): string {
  return redactPans(terminalId);
}
