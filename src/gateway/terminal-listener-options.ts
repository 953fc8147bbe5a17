import type { Logger } from 'pino';
import { z } from 'zod';
import type { Clock } from '../core/clock.js';
import type { Awaitable } from '../core/journal-port.js';
import { clockOption, loggerOption, MAX_TIMER_MS, wholeNumber } from '../core/options.js';
import { ECONDUIT_MAX_FRAME_BYTES } from '../protocols/econduit/framer.js';
import { tlsServerOption, type TlsServerInput } from '../transports/tls.js';
import type { ProvisionedTerminal } from './provisioning.js';
import { identityOptionShape, type TerminalIdentityOptions } from './terminal-identity.js';

/** Where terminals connect (seed 002's testing endpoint port). */
export const GATEWAY_TERMINAL_PORT = 9001;
/** How often an idle terminal sends a heartbeat (seed 002: "once per minute"). */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 60_000;
/** A terminal silent for this many heartbeat intervals is offline and its socket closed. */
export const DEFAULT_MISSED_HEARTBEATS = 3;
/** A connection must register within this long, or it is closed. */
export const DEFAULT_REGISTER_TIMEOUT_MS = 10_000;
/** Terminal connections held at most (20,000 open files per process here). */
export const DEFAULT_MAX_TERMINAL_CONNECTIONS = 18_000;
/** Connections one address may hold open before they register. */
export const DEFAULT_MAX_UNREGISTERED_PER_ADDRESS = 64;
/** Largest message before Register (a Register is a few hundred bytes). */
export const UNREGISTERED_MAX_FRAME_BYTES = 4 * 1024;
/** Registrations one address may make at once, then per second. */
export const DEFAULT_REGISTRATION_BURST = 100;
export const DEFAULT_REGISTRATIONS_PER_SECOND = 20;
/** The silence sweep runs at the heartbeat interval, but at least this often. */
export const MAX_SWEEP_INTERVAL_MS = 5_000;

export interface TerminalListenerOptions extends TerminalIdentityOptions {
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** 0 picks a free one. @default GATEWAY_TERMINAL_PORT */
  readonly port?: number;
  /**
   * An allow-list: only these terminal types may register (FAILED-INVALID-TERMINAL-TYPE for any
   * other, provisioned or not). Each terminal's own type and payload format come from its
   * provisioning. @default any type (the one each terminal is provisioned with)
   */
  readonly terminalTypes?: readonly string[];
  /** The provisioned terminal with this id, or undefined (it gets FAILED-REGISTRATION). */
  readonly lookup: (terminalId: string) => Awaitable<ProvisionedTerminal | undefined>;
  /** @default DEFAULT_HEARTBEAT_INTERVAL_MS */
  readonly heartbeatIntervalMs?: number;
  /** @default DEFAULT_MISSED_HEARTBEATS */
  readonly missedHeartbeats?: number;
  /** @default DEFAULT_REGISTER_TIMEOUT_MS */
  readonly registerTimeoutMs?: number;
  /** @default ECONDUIT_MAX_FRAME_BYTES */
  readonly maxFrameBytes?: number;
  /** @default DEFAULT_MAX_TERMINAL_CONNECTIONS */
  readonly maxConnections?: number;
  /** @default DEFAULT_REGISTRATION_BURST */
  readonly registrationBurst?: number;
  /** @default DEFAULT_REGISTRATIONS_PER_SECOND */
  readonly registrationsPerSecond?: number;
  /** @default DEFAULT_MAX_UNREGISTERED_PER_ADDRESS */
  readonly maxUnregisteredPerAddress?: number;
  /**
   * Speak TLS only, with this certificate and key (files or PEM text): a plain TCP connection
   * is refused at its first bytes, and the TLS handshake must be done within
   * `registerTimeoutMs`. @default plain TCP
   */
  readonly tls?: TlsServerInput;
  /**
   * The deadlines' time and timers (register bound, refusal grace, silence sweep, registration
   * rate). The times a terminal view shows are dates all the same. @default systemClock
   */
  readonly clock?: Clock;
  readonly logger?: Logger;
}

export const LISTENER_OPTIONS = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  port: wholeNumber(0, 65_535).default(GATEWAY_TERMINAL_PORT),
  terminalTypes: z
    .array(z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'type names: 1-64 letters, digits, . _ -'))
    .min(1, 'must name at least one type (leave it out to accept any provisioned type)')
    .max(1_000)
    .optional(),
  lookup: z.custom<(terminalId: string) => Awaitable<ProvisionedTerminal | undefined>>(
    (value) => typeof value === 'function',
    'must be a function',
  ),
  heartbeatIntervalMs: wholeNumber(10, MAX_TIMER_MS).default(DEFAULT_HEARTBEAT_INTERVAL_MS),
  missedHeartbeats: wholeNumber(1, 100).default(DEFAULT_MISSED_HEARTBEATS),
  registerTimeoutMs: wholeNumber(10, MAX_TIMER_MS).default(DEFAULT_REGISTER_TIMEOUT_MS),
  maxFrameBytes: wholeNumber(256, 16 * 1024 * 1024).default(ECONDUIT_MAX_FRAME_BYTES),
  maxConnections: wholeNumber(1, 1_000_000).default(DEFAULT_MAX_TERMINAL_CONNECTIONS),
  registrationBurst: wholeNumber(1, 1_000_000).default(DEFAULT_REGISTRATION_BURST),
  registrationsPerSecond: wholeNumber(1, 1_000_000).default(DEFAULT_REGISTRATIONS_PER_SECOND),
  maxUnregisteredPerAddress: wholeNumber(1, 1_000_000).default(
    DEFAULT_MAX_UNREGISTERED_PER_ADDRESS,
  ),
  tls: tlsServerOption().optional(),
  ...identityOptionShape(),
  clock: clockOption(),
  logger: loggerOption(),
});

/** The listener's options, checked, with their defaults. */
export type ListenerSettings = Readonly<z.output<typeof LISTENER_OPTIONS>>;
