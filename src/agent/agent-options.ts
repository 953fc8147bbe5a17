import type { Logger } from 'pino';
import { z } from 'zod';
import type { Clock } from '../core/clock.js';
import { EcrError, invalid } from '../core/errors.js';
import { clockOption, loggerOption, MAX_TIMER_MS, wholeNumber } from '../core/options.js';
import { ECONDUIT_MAX_FRAME_BYTES } from '../protocols/econduit/framer.js';
import {
  decodeRegister,
  encodeRegister,
  MAX_TERMINAL_SECRET_LENGTH,
  type Registration,
} from '../protocols/econduit/messages.js';
import type { TlsClientConfig } from '../transports/tls.js';

/** Seed 002: "we recommend once per minute" while the terminal is idle. */
export const AGENT_HEARTBEAT_INTERVAL_MS = 60_000;
/** Bound on the wait for the answer to Register, and for a heartbeat's ack. */
export const AGENT_ACK_TIMEOUT_MS = 10_000;
/** Bound on opening the TCP connection to one endpoint. */
export const AGENT_CONNECT_TIMEOUT_MS = 5_000;
/** Ceiling of the first jittered back-off after a failed cycle; it doubles per failure. */
export const AGENT_BACKOFF_BASE_MS = 250;
/** Longest back-off between two cycles. */
export const AGENT_BACKOFF_MAX_MS = 30_000;
/** The first reconnect after a working connection drops comes within this (random spread). */
export const AGENT_RECONNECT_SPREAD_MS = 500;
/** Endpoints tried per cycle at most (seed 002 has two: primary, then secondary). */
export const AGENT_MAX_ENDPOINTS = 8;
/** How long an orderly close waits for the gateway's side before the socket is dropped. */
export const AGENT_CLOSE_GRACE_MS = 2_000;

/** One eConduit cloud endpoint (seed 002: configurable from the terminal management system). */
export interface AgentEndpoint {
  readonly host: string;
  readonly port: number;
}

export interface EconduitAgentOptions {
  /** Tried in this order each cycle: the primary first, then the secondary (1 to 8). */
  readonly endpoints: readonly AgentEndpoint[];
  /** What the terminal registers as; `ackHeartbeat` asks the gateway to ack each heartbeat. */
  readonly registration: Registration;
  /**
   * The terminal's registration secret, sent as its Register's `TerminalSecret` (for a terminal
   * provisioned with one; see docs/gateway.md). Never logged. @default none sent
   */
  readonly terminalSecret?: string;
  /** Heartbeat period while idle. @default AGENT_HEARTBEAT_INTERVAL_MS */
  readonly heartbeatIntervalMs?: number;
  /** Wait for OK-REGISTRATION, and for a heartbeat's ack. @default AGENT_ACK_TIMEOUT_MS */
  readonly ackTimeoutMs?: number;
  /** @default AGENT_CONNECT_TIMEOUT_MS */
  readonly connectTimeoutMs?: number;
  /** @default AGENT_BACKOFF_BASE_MS */
  readonly backoffBaseMs?: number;
  /** @default AGENT_BACKOFF_MAX_MS */
  readonly backoffMaxMs?: number;
  /** Largest message accepted from the gateway. @default ECONDUIT_MAX_FRAME_BYTES (64 KiB) */
  readonly maxFrameBytes?: number;
  /**
   * Connect over TLS only, verifying the gateway's certificate against `ca` (PEM; the system's
   * CAs without it) and its host name: an endpoint that does not speak TLS or whose certificate
   * is not trusted is never registered with (the agent never falls back to plain TCP). With
   * `cert` and `key` (PEM), it presents that client certificate (mutual TLS).
   * @default plain TCP
   */
  readonly tls?: TlsClientConfig;
  /** The time of its deadlines and its timers (heartbeats, acks, back-off). @default systemClock */
  readonly clock?: Clock;
  readonly logger?: Logger;
}

const text = z.string({ error: 'must be a string' });

export const AGENT_OPTIONS = z
  .strictObject({
    endpoints: z
      .array(
        z.strictObject({
          host: text.min(1, 'must not be empty').max(253, 'must be at most 253 characters'),
          port: wholeNumber(1, 65_535),
        }),
        { error: 'must be a list of { host, port }' },
      )
      .min(1, 'must name at least one endpoint')
      .max(AGENT_MAX_ENDPOINTS, `must name at most ${AGENT_MAX_ENDPOINTS} endpoints`),
    registration: z.strictObject({
      terminalType: text,
      terminalModel: text,
      terminalId: text,
      softwareVersion: text,
      ackHeartbeat: z.boolean({ error: 'must be true or false' }),
    }),
    terminalSecret: text
      .min(1, 'must not be empty')
      .max(MAX_TERMINAL_SECRET_LENGTH, `must be at most ${MAX_TERMINAL_SECRET_LENGTH} characters`)
      .optional(),
    heartbeatIntervalMs: wholeNumber(1, MAX_TIMER_MS).default(AGENT_HEARTBEAT_INTERVAL_MS),
    ackTimeoutMs: wholeNumber(1, MAX_TIMER_MS).default(AGENT_ACK_TIMEOUT_MS),
    connectTimeoutMs: wholeNumber(1, MAX_TIMER_MS).default(AGENT_CONNECT_TIMEOUT_MS),
    backoffBaseMs: wholeNumber(1, MAX_TIMER_MS).default(AGENT_BACKOFF_BASE_MS),
    backoffMaxMs: wholeNumber(1, MAX_TIMER_MS).default(AGENT_BACKOFF_MAX_MS),
    maxFrameBytes: wholeNumber(1024, ECONDUIT_MAX_FRAME_BYTES).default(ECONDUIT_MAX_FRAME_BYTES),
    tls: z
      .strictObject({
        ca: z.string().min(1, 'must be PEM text').optional(),
        cert: z.string().min(1, 'must be PEM text').optional(),
        key: z.string().min(1, 'must be PEM text').optional(),
      })
      .optional(),
    clock: clockOption(),
    logger: loggerOption(),
  })
  .refine((o) => o.backoffMaxMs >= o.backoffBaseMs, {
    path: ['backoffMaxMs'],
    message: 'must be at least backoffBaseMs',
  });

/** The agent's options, checked, with their defaults. */
export type AgentSettings = Readonly<z.output<typeof AGENT_OPTIONS>>;

/** The Register fields on the wire, by option name, for errors that name the option. */
const OPTION_OF_WIRE_FIELD: Readonly<Record<string, keyof Registration>> = {
  TerminalType: 'terminalType',
  TerminalModel: 'terminalModel',
  TerminalID: 'terminalId',
  SoftwareVersion: 'softwareVersion',
};

/** The gateway's own rules for Register (messages.ts), so a registration it would refuse is refused here. */
export function checkRegistration(registration: Registration): void {
  try {
    decodeRegister(encodeRegister(registration));
  } catch (error) {
    if (!(error instanceof EcrError)) throw error;
    const field = OPTION_OF_WIRE_FIELD[error.field ?? ''];
    throw invalid(
      'INVALID_INPUT',
      field === undefined ? 'registration' : `registration.${field}`,
      error.rule ?? 'must be a valid registration',
    );
  }
}
