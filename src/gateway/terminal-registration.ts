import type { Logger } from 'pino';
import { toEcrError } from '../core/errors.js';
import {
  decodeRegisterCommand,
  type Registration,
  type RegistrationResult,
} from '../protocols/econduit/messages.js';
import type { TlsPeerCertificate } from '../transports/tls.js';
import type { ListenerStats } from './listener-stats.js';
import {
  judgeRegistration,
  maskRegistration,
  type PayloadProtocol,
  type ProvisionedTerminal,
} from './provisioning.js';
import { AddressRateLimiter } from './rate-limit.js';
import { judgeIdentity } from './terminal-identity.js';
import type { ListenerSettings } from './terminal-listener-options.js';

/** Addresses remembered as warned at most; past it the set starts over (memory stays bounded). */
const MAX_WARNED_ADDRESSES = 10_000;

/** What a Register gets, before the live-terminal rule (`judgeTakeover`) is applied. */
export type RegisterVerdict =
  | {
      readonly type: 'accepted';
      readonly registration: Registration;
      readonly payload: PayloadProtocol;
      /** It proved everything its terminal is provisioned to prove (terminal-identity.ts). */
      readonly proven: boolean;
    }
  | {
      readonly type: 'refused';
      readonly result: Exclude<RegistrationResult, 'OK-REGISTRATION'> | 'rate-limited';
      /** For the log: never the secret. */
      readonly why: string;
      readonly terminalId?: string;
    }
  /** No verdict (the database is away for a moment): the connection just ends. */
  | { readonly type: 'unjudged' };

/** Warnings about an address, once each until that address calms down. */
export class AddressWarnings {
  private readonly warned = new Set<string>();

  constructor(private readonly logger: Logger) {}

  warn(address: string, message: string): void {
    if (this.warned.has(address)) return;
    if (this.warned.size >= MAX_WARNED_ADDRESSES) this.warned.clear();
    this.warned.add(address);
    this.logger.warn({ address }, message);
  }

  clear(address: string): void {
    this.warned.delete(address);
  }
}

/**
 * The checks a first message passes before its connection is a registered terminal, in order:
 * the registration rate of its address, a well-formed Register, the `terminalTypes` allow-list,
 * the provisioning (looked up), the terminal's proof of identity when it is provisioned with
 * one, and its provisioned type.
 */
export class RegistrationChecks {
  private readonly limiter: AddressRateLimiter;

  constructor(
    private readonly settings: ListenerSettings,
    private readonly stats: ListenerStats,
    private readonly warnings: AddressWarnings,
    private readonly logger: Logger,
    now: () => number,
  ) {
    this.limiter = new AddressRateLimiter(
      settings.registrationBurst,
      settings.registrationsPerSecond,
      now,
    );
  }

  /** Whether terminals of this type may register here (the `terminalTypes` allow-list, if any). */
  accepts(terminalType: string): boolean {
    return this.settings.terminalTypes?.includes(terminalType) ?? true;
  }

  async judge(
    text: string,
    address: string,
    peer: TlsPeerCertificate | undefined,
  ): Promise<RegisterVerdict> {
    if (!this.limiter.take(address)) {
      this.warnings.warn(address, 'too many registrations from this address: refusing for now');
      return { type: 'refused', result: 'rate-limited', why: 'rate limited' };
    }
    this.warnings.clear(address);
    let registration: Registration;
    // The presented secret stays in this function: never in the registration, a log or a view.
    let presentedSecret: string | undefined;
    try {
      const command = decodeRegisterCommand(text);
      registration = maskRegistration(command.registration);
      presentedSecret = command.terminalSecret;
    } catch (error) {
      return { type: 'refused', result: 'FAILED-REGISTRATION', why: toEcrError(error).message };
    }
    const { terminalId, terminalType } = registration;
    if (!this.accepts(terminalType)) {
      return {
        type: 'refused',
        result: 'FAILED-INVALID-TERMINAL-TYPE',
        why: `TerminalType: must be one of ${this.settings.terminalTypes?.join(', ')} (this gateway's allow-list)`,
        terminalId,
      };
    }
    let provisioned: ProvisionedTerminal | undefined;
    let proven = false;
    try {
      provisioned = await this.settings.lookup(terminalId);
      // A terminal provisioned with a secret or a certificate must prove it before anything
      // else is said about it (its type included).
      if (provisioned !== undefined) {
        const identity = await judgeIdentity({
          terminalId,
          provisioned,
          presentedSecret,
          peer,
          checkSecret: this.settings.checkSecret,
        });
        if (identity.type === 'refused') {
          this.stats.refusedCredentials[identity.reason]++;
          return { type: 'refused', result: 'FAILED-REGISTRATION', why: identity.why, terminalId };
        }
        proven = identity.type === 'proven';
      }
    } catch (error) {
      // The database is away for a moment: not a verdict on the terminal. The connection just
      // ends, and the terminal registers again after its back-off.
      this.logger.error(
        { terminalId, err: toEcrError(error).message },
        'terminal lookup or secret check failed: connection closed, the terminal will register again',
      );
      return { type: 'unjudged' };
    }
    const verdict = judgeRegistration(registration, provisioned);
    if ('result' in verdict) return { type: 'refused', ...verdict, terminalId };
    return { type: 'accepted', registration, payload: verdict.payload, proven };
  }
}

/** The connection a terminal holds when another registration of it arrives. */
export interface HeldConnection {
  /** Its address, without the port. */
  readonly address: string;
  /** A request is in flight on it. */
  readonly busy: boolean;
  readonly silentForMs: number;
}

export type Takeover =
  /** No connection held, or one from the same address (its own half-open one): replaced. */
  | { readonly type: 'take' }
  /** Proven from another address: replaced at once, logged and counted. */
  | { readonly type: 'take-verified'; readonly before: string }
  /** From another address after the held one went silent past the window: replaced. */
  | { readonly type: 'take-silent'; readonly before: string; readonly silentForMs: number }
  /** From another address while the held one is live: refused. */
  | { readonly type: 'refuse'; readonly why: string };

/**
 * A live terminal keeps its place: the seed's Register carries no secret, so a registration of
 * a terminal heard within its heartbeat window (or in the middle of a transaction) from another
 * address is refused, whoever sent it. The same address replaces its own half-open connection;
 * another address takes over only once the terminal has gone silent. A terminal that proved its
 * identity (terminal-identity.ts) takes its place from any address at once: no impostor can, so
 * the live connection is its own stale one, or a clone's.
 */
export function judgeTakeover(
  held: HeldConnection | undefined,
  address: string,
  proven: boolean,
  silenceLimitMs: number,
): Takeover {
  if (held === undefined || held.address === address) return { type: 'take' };
  if (proven) return { type: 'take-verified', before: held.address };
  if (held.busy || held.silentForMs <= silenceLimitMs) {
    return {
      type: 'refuse',
      why: `TerminalID: live from ${held.address} (heard ${Math.round(held.silentForMs)} ms ago): a registration from another address may take over only after ${silenceLimitMs} ms of silence`,
    };
  }
  return { type: 'take-silent', before: held.address, silentForMs: held.silentForMs };
}
