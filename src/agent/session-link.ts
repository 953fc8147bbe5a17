import { EcrError } from '../core/errors.js';
import type { Inbox, LinkClosed, MessageLink } from '../transports/message-link.js';
import { tlsFailureReason } from '../transports/tls.js';

/** What a session link asks of its agent. */
export interface SessionOwner {
  /** Writes an answer; it answers the oldest payload not yet answered. */
  readonly send: (text: string) => Promise<void>;
  /** Ends the connection from this side: in order (FIN first) or at once. */
  readonly end: (reason: string, orderly: boolean) => void;
}

/** The session link handed to the embedding code: payloads only, on one connection. */
export class SessionLink implements MessageLink {
  readonly closed: Promise<LinkClosed>;

  constructor(
    private readonly link: MessageLink,
    private readonly inbox: Inbox,
    readonly remote: string,
    private readonly owner: SessionOwner,
  ) {
    this.closed = link.closed;
  }

  get isOpen(): boolean {
    return this.link.isOpen;
  }

  /** Writes `text` and 0x04 0x04; it answers the oldest payload not yet answered. */
  send(text: string): Promise<void> {
    return this.owner.send(text);
  }

  onMessage(handler: ((text: string) => void) | undefined): void {
    this.inbox.setHandler(handler);
  }

  /** Ends the connection (FIN, then dropped after AGENT_CLOSE_GRACE_MS); the agent reconnects. */
  close(): void {
    this.owner.end('session closed', true);
  }

  /** Drops the connection at once; the agent reconnects. */
  terminate(): void {
    this.owner.end('session terminated', false);
  }
}

/** Reasons for `offline` events, by the socket error under connectTcp's TERMINAL_UNREACHABLE. */
const CONNECT_FAILURES: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ETIMEDOUT: 'connection timed out',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host not found',
  ENETUNREACH: 'network unreachable',
  EHOSTUNREACH: 'network unreachable',
};

/** Why a connect failed, in the words of an `offline` event. */
export function connectFailure(error: unknown): string {
  const cause = error instanceof Error ? error.cause : undefined;
  const code =
    typeof cause === 'object' && cause !== null && 'code' in cause ? String(cause.code) : undefined;
  // connectTcp's own bound (connectTimeoutMs) has no cause.
  if (code === undefined)
    return error instanceof EcrError && error.code === 'TERMINAL_UNREACHABLE'
      ? 'connection timed out'
      : 'connection failed';
  return CONNECT_FAILURES[code] ?? tlsFailureReason(code) ?? `connection failed (${code})`;
}

/** Why a link neither side chose to end was lost, in the words of an `offline` event. */
export function lostReason(closed: LinkClosed): string {
  return closed.error?.code === 'FRAME_TOO_LARGE' ? 'message too large' : 'link lost';
}

/** An error for the log: its name and code, never its message (it may quote a payload). */
export function describe(error: unknown): string {
  if (error instanceof EcrError) return `${error.name} ${error.code}`;
  return error instanceof Error ? error.name : typeof error;
}
