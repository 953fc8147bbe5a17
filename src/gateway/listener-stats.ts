import type { RegistrationResult } from '../protocols/econduit/messages.js';
import { refusalCounts, type IdentityRefusal } from './terminal-identity.js';

/** The terminal listener's counters, for `/metrics`. */
export interface ListenerStats {
  readonly registrations: Record<RegistrationResult | 'rate-limited', number>;
  heartbeats: number;
  /** Transaction answers that came with no request waiting (ignored). */
  unexpectedAnswers: number;
  /**
   * Registrations from another address that replaced a connection of the same terminal gone
   * silent past its heartbeat window (a terminal that moved), before the sweep dropped it.
   */
  replacedFromElsewhere: number;
  /**
   * Registrations refused because the terminal is live on another address (an impostor, or two
   * devices sharing a serial): the live connection keeps its place.
   */
  refusedFromElsewhere: number;
  /**
   * Registrations of a terminal provisioned with a secret or a certificate requirement that did
   * not prove it, by why (terminal-identity.ts): refused FAILED-REGISTRATION.
   */
  readonly refusedCredentials: Record<IdentityRefusal, number>;
  /**
   * Registrations that proved the terminal's identity and replaced a live connection of it from
   * another address (a terminal that moved; repeated, two holders of one terminal's credentials).
   */
  replacedVerified: number;
  /** TLS listener: connections closed for a failed or missing TLS handshake (plain TCP, …). */
  tlsRefused: number;
}

/** Every counter at 0. */
export function newListenerStats(): ListenerStats {
  return {
    registrations: {
      'OK-REGISTRATION': 0,
      'FAILED-REGISTRATION': 0,
      'FAILED-INVALID-TERMINAL-TYPE': 0,
      'rate-limited': 0,
    },
    heartbeats: 0,
    unexpectedAnswers: 0,
    replacedFromElsewhere: 0,
    refusedFromElsewhere: 0,
    refusedCredentials: refusalCounts(),
    replacedVerified: 0,
    tlsRefused: 0,
  };
}
