import { z } from 'zod';
import { invalid } from '../core/errors.js';
import { redactPans } from '../core/pan.js';
import { checkTlsCa, type TlsPeerCertificate } from '../transports/tls.js';
import type { ProvisionedTerminal } from './provisioning.js';

/**
 * Strong terminal identity (issue 17, part 1), opt-in per terminal. The seed's Register carries
 * no secret, so by default a terminal is known by its serial only. A terminal may be provisioned
 * with a registration secret (its Register must carry it as `TerminalSecret`) and/or as requiring
 * a client certificate (it must connect over TLS with a certificate the gateway's client CA
 * signed, whose CN or a DNS subjectAltName is its TerminalID). A registration that proves what
 * its terminal is provisioned to prove takes the terminal's place from any address, even while
 * another connection of it is live; one that does not is refused FAILED-REGISTRATION, whatever
 * the state of the terminal. Pure: the secret itself is checked by the caller's `checkSecret`
 * (the tenant store, which holds only its scrypt hash).
 */

/** Why a registration's proof was refused: the `reason` label of the refusals' metric. */
export const IDENTITY_REFUSALS = [
  'secret-missing',
  'secret-wrong',
  'certificate-missing',
  'certificate-untrusted',
  'certificate-name',
] as const;
export type IdentityRefusal = (typeof IDENTITY_REFUSALS)[number];

/** The terminal listener's options for strong identity (part of TerminalListenerOptions). */
export interface TerminalIdentityOptions {
  /**
   * Mutual TLS (with `tls` only): ask every terminal for a client certificate and verify it
   * against this CA (PEM). A terminal provisioned with `requireCertificate` must present one
   * naming its TerminalID; the others still connect without one. @default none asked for
   */
  readonly tlsClientCa?: string;
  /**
   * Whether `secret` is the registration secret of `terminalId` (constant time): asked for the
   * terminals provisioned with one (`hasSecret`). Without it they are all refused.
   */
  readonly checkSecret?: (terminalId: string, secret: string) => Promise<boolean>;
}

/** The zod shape of TerminalIdentityOptions, for the listener's strict options. */
export function identityOptionShape() {
  return {
    tlsClientCa: z.string().min(1, 'must be PEM text').optional(),
    checkSecret: z
      .custom<(terminalId: string, secret: string) => Promise<boolean>>(
        (value) => typeof value === 'function',
        'must be a function',
      )
      .optional(),
  };
}

/** `tlsClientCa` checked at construction: PEM, and only on a listener that speaks TLS. */
export function checkClientCa(tlsClientCa: string | undefined, tls: boolean): void {
  if (tlsClientCa === undefined) return;
  if (!tls)
    throw invalid('INVALID_INPUT', 'tlsClientCa', 'is only used with tls (a certificate and key)');
  checkTlsCa(tlsClientCa, 'tlsClientCa');
}

/** Refusals counted by reason, all at 0 (the listener's `stats.refusedCredentials`). */
export function refusalCounts(): Record<IdentityRefusal, number> {
  return Object.fromEntries(IDENTITY_REFUSALS.map((r) => [r, 0])) as Record<
    IdentityRefusal,
    number
  >;
}

/** Names of a refused certificate quoted in the log, at most. */
const MAX_NAMES_LOGGED = 4;

/** Whether the terminal's Register must come with a proof of identity. */
export function requiresProof(provisioned: ProvisionedTerminal): boolean {
  return provisioned.hasSecret === true || provisioned.requireCertificate === true;
}

export type IdentityVerdict =
  /** Provisioned without any proof: known by its serial (the live-terminal rule applies). */
  | { readonly type: 'serial-only' }
  /** It proved everything it is provisioned to prove. */
  | { readonly type: 'proven' }
  /** Refused: why, for the metric and for the log (never the secret, never its hash). */
  | { readonly type: 'refused'; readonly reason: IdentityRefusal; readonly why: string };

export interface IdentityClaim {
  readonly terminalId: string;
  readonly provisioned: ProvisionedTerminal;
  /** The Register's `TerminalSecret`, if it carried one. */
  readonly presentedSecret: string | undefined;
  /** The connection's client certificate, when the listener asks for one (mutual TLS). */
  readonly peer: TlsPeerCertificate | undefined;
  /** Whether `secret` is this terminal's registration secret (constant time, scrypt). */
  readonly checkSecret: ((terminalId: string, secret: string) => Promise<boolean>) | undefined;
}

/** Whether a verified client certificate names this terminal: its CN or a DNS subjectAltName, exactly. */
export function certificateNames(peer: TlsPeerCertificate, terminalId: string): boolean {
  // Exact and case-sensitive, as terminal ids are (`T1` and `t1` are two terminals).
  return peer.commonNames.includes(terminalId) || peer.dnsNames.includes(terminalId);
}

function refused(reason: IdentityRefusal, why: string): IdentityVerdict {
  return { type: 'refused', reason, why };
}

/** The names a certificate is for, as a log may quote them (bounded, card-number-like runs masked). */
function shownNames(peer: TlsPeerCertificate): string {
  const names = [
    ...peer.commonNames.map((n) => `CN=${n}`),
    ...peer.dnsNames.map((n) => `DNS:${n}`),
  ];
  const shown = names.slice(0, MAX_NAMES_LOGGED).map((n) => redactPans(n.slice(0, 80)));
  if (names.length > MAX_NAMES_LOGGED) shown.push(`… ${names.length - MAX_NAMES_LOGGED} more`);
  return shown.length === 0 ? 'no name' : shown.join(', ');
}

/**
 * The verdict on a registration's proof of identity, once its terminal was looked up. The
 * certificate is judged first (it costs nothing), the secret last (one scrypt).
 */
export async function judgeIdentity(claim: IdentityClaim): Promise<IdentityVerdict> {
  const { provisioned, peer, terminalId } = claim;
  if (!requiresProof(provisioned)) return { type: 'serial-only' };
  if (provisioned.requireCertificate === true) {
    if (peer === undefined) {
      return refused(
        'certificate-missing',
        'this terminal must present a client certificate: connect over TLS to a gateway started with --tls-client-ca',
      );
    }
    if (!peer.authorized) {
      return peer.reason === 'no certificate'
        ? refused('certificate-missing', 'this terminal must present a client certificate')
        : refused(
            'certificate-untrusted',
            `client certificate not verified against the client CA (${peer.reason ?? 'not verified'})`,
          );
    }
    if (!certificateNames(peer, terminalId)) {
      return refused(
        'certificate-name',
        `client certificate is for ${shownNames(peer)}: neither its CN nor a DNS name is this TerminalID`,
      );
    }
  }
  if (provisioned.hasSecret === true) {
    if (claim.presentedSecret === undefined)
      return refused('secret-missing', 'TerminalSecret: is required for this terminal');
    if (claim.checkSecret === undefined)
      return refused('secret-wrong', 'TerminalSecret: this listener has no way to check it');
    if (!(await claim.checkSecret(terminalId, claim.presentedSecret)))
      return refused('secret-wrong', 'TerminalSecret: is not this terminal’s secret');
  }
  return { type: 'proven' };
}
