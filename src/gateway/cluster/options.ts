import type { Logger } from 'pino';
import { z } from 'zod';
import { clockOption, MAX_TIMER_MS, wholeNumber } from '../../core/options.js';
import { NAME, NAME_RULE } from './wire.js';

/** Default subject prefix: two clusters may share a NATS server with different ones. */
export const DEFAULT_SUBJECT_PREFIX = 'ecr';
/**
 * How long a node waits for the holder's answer to a money request: the holder's SEMI driver
 * answers within its card step and recovery window (2 + 0.5 min); past this it is `unknown`.
 */
export const DEFAULT_CLUSTER_REQUEST_TIMEOUT_MS = 180_000;
/**
 * How long a patient status query keeps asking for a terminal that is on no node (reconnecting,
 * perhaps to another node): like the gateway's own recovery window.
 */
export const DEFAULT_CLUSTER_RECOVERY_MS = 30_000;
/**
 * How long a presence, release or cancel question waits before it counts as unanswered: a
 * living holder answers those at once, without asking its terminal anything.
 */
export const DEFAULT_CLUSTER_CONTROL_TIMEOUT_MS = 2_000;
/** Longest control timeout accepted: past it a dead holder would hold a takeover up for long. */
export const MAX_CLUSTER_CONTROL_TIMEOUT_MS = 60_000;
/** How long connecting to NATS may take before the node refuses to start. */
export const DEFAULT_CLUSTER_CONNECT_TIMEOUT_MS = 5_000;
/** Longest connect timeout accepted. */
export const MAX_CLUSTER_CONNECT_TIMEOUT_MS = 60_000;
/** Most NATS server URLs one node is given (the client tries them in turn). */
export const MAX_CLUSTER_SERVERS = 16;
export const CLUSTER_OPTIONS = z.strictObject({
  servers: z.union([z.string().min(1), z.array(z.string().min(1)).min(1).max(MAX_CLUSTER_SERVERS)]),
  nodeId: z.string().regex(NAME, NAME_RULE).optional(),
  subjectPrefix: z.string().regex(NAME, NAME_RULE).default(DEFAULT_SUBJECT_PREFIX),
  requestTimeoutMs: wholeNumber(1, MAX_TIMER_MS).default(DEFAULT_CLUSTER_REQUEST_TIMEOUT_MS),
  recoveryMs: wholeNumber(0, MAX_TIMER_MS).default(DEFAULT_CLUSTER_RECOVERY_MS),
  controlTimeoutMs: wholeNumber(1, MAX_CLUSTER_CONTROL_TIMEOUT_MS).default(
    DEFAULT_CLUSTER_CONTROL_TIMEOUT_MS,
  ),
  connectTimeoutMs: wholeNumber(1, MAX_CLUSTER_CONNECT_TIMEOUT_MS).default(
    DEFAULT_CLUSTER_CONNECT_TIMEOUT_MS,
  ),
  logger: z.custom<Logger>((v) => typeof v === 'object' && v !== null).optional(),
  /** The node's timers (holder checks, status query retries). @default systemClock */
  clock: clockOption(),
});
/** A ClusterNode's options; see the DEFAULT_… constants for each default. */
export type ClusterOptions = z.input<typeof CLUSTER_OPTIONS>;
export type ParsedClusterOptions = z.output<typeof CLUSTER_OPTIONS>;
