import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { systemClock, type Clock, type ClockTimer } from '../core/clock.js';
import { EcrError, toEcrError } from '../core/errors.js';
import { terminalsJson, type DashboardBackend, type TerminalsJson } from './backend.js';
import { SECURITY_HEADERS } from './security-headers.js';
import type { DashboardSessions, Session } from './sessions.js';

/**
 * The dashboard's live updates: server-sent events to every page listening, fed by one reader of
 * the journal's change feed (transactions) and by the service's terminal changes.
 */

/** How often the journal's change feed is read while a page listens. */
export const DEFAULT_FEED_INTERVAL_MS = 250;
/** Live streams one session may hold open, and all sessions together. */
export const MAX_STREAMS_PER_SESSION = 4;
export const MAX_STREAMS = 1_000;
const SSE_KEEPALIVE_MS = 15_000;
/** Terminal changes within this long are announced to the pages as one. */
const TERMINALS_DEBOUNCE_MS = 250;
const FEED_BATCH = 500;

export interface LiveFeedOptions {
  readonly backend: DashboardBackend;
  readonly sessions: DashboardSessions;
  readonly logger: Logger;
  /** @default DEFAULT_FEED_INTERVAL_MS */
  readonly feedIntervalMs?: number;
  /** @default systemClock */
  readonly clock?: Clock;
}

interface Listener {
  readonly session: Session;
  readonly raw: ServerResponse;
}

/** Calls `tick` every `ms` until the returned function is called. */
function every(clock: Clock, ms: number, tick: () => void): () => void {
  let timer: ClockTimer;
  let stopped = false;
  const arm = (): void => {
    timer = clock.setTimeout(() => {
      if (stopped) return;
      arm();
      tick();
    }, ms);
  };
  arm();
  return () => {
    stopped = true;
    clock.clearTimeout(timer);
  };
}

export class LiveFeed {
  private readonly backend: DashboardBackend;
  private readonly sessions: DashboardSessions;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly feedIntervalMs: number;
  private readonly listeners = new Set<Listener>();
  private lastEventId = 0;
  /** Stops the change-feed reader; set while a page listens. */
  private stopFeed: (() => void) | undefined;
  /** True while a round reads the feed: a slow journal never gets two rounds at once. */
  private reading = false;
  /** Terminals changed since the pending announcement was scheduled. */
  private changed: Set<string | undefined> | undefined;
  private readonly stopTerminals: () => void;

  constructor(options: LiveFeedOptions) {
    this.backend = options.backend;
    this.sessions = options.sessions;
    this.logger = options.logger;
    this.clock = options.clock ?? systemClock;
    this.feedIntervalMs = options.feedIntervalMs ?? DEFAULT_FEED_INTERVAL_MS;
    this.sessions.onEnd((session) => {
      for (const listener of this.listeners) if (listener.session === session) listener.raw.end();
    });
    // Terminals coming and going arrive in bursts (a node's fleet moving): one listing per burst.
    this.stopTerminals = this.backend.onTerminalsChange((terminalId) => {
      if (this.listeners.size === 0) return;
      if (this.changed !== undefined) {
        this.changed.add(terminalId);
        return;
      }
      this.changed = new Set([terminalId]);
      this.clock.setTimeout(() => {
        const ids = this.changed ?? new Set<string | undefined>();
        this.changed = undefined;
        this.announceTerminals(ids.size === 1 ? [...ids][0] : undefined).catch((error: unknown) =>
          this.logger.error({ err: toEcrError(error).message }, 'could not list the terminals'),
        );
      }, TERMINALS_DEBOUNCE_MS);
    });
  }

  /** `GET /ui/api/events` for a signed-in session: the stream stays open until the page goes. */
  async open(session: Session, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (session.streams >= MAX_STREAMS_PER_SESSION || this.listeners.size >= MAX_STREAMS) {
      throw new EcrError(
        'RATE_LIMITED',
        `events: at most ${MAX_STREAMS_PER_SESSION} live streams per session; close a tab`,
      );
    }
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      connection: 'keep-alive',
    });
    const listener: Listener = { session, raw };
    this.listeners.add(listener);
    session.streams++;
    const stopKeepalive = every(this.clock, SSE_KEEPALIVE_MS, () => {
      if (this.sessions.alive(session)) raw.write(': keep-alive\n\n');
      else raw.end();
    });
    // First of all, how the stream ends: whatever fails below, it is counted out again.
    request.raw.once('close', () => {
      stopKeepalive();
      this.listeners.delete(listener);
      session.streams--;
      if (this.listeners.size === 0) {
        this.stopFeed?.();
        this.stopFeed = undefined;
      }
    });
    raw.write('retry: 2000\n\n');
    try {
      if (this.stopFeed === undefined) {
        // No round reads the feed until its starting point is known.
        this.reading = true;
        this.stopFeed = every(this.clock, this.feedIntervalMs, () => void this.readFeed());
        try {
          this.lastEventId = await this.backend.journal.latestEventId();
        } finally {
          this.reading = false;
        }
      }
      this.send(listener, 'terminals', await this.terminalsOf(new Map(), session.who));
    } catch (error) {
      this.logger.error({ err: toEcrError(error).message }, 'could not start a live stream');
      raw.end();
    }
  }

  /** Ends every stream and stops reading. */
  close(): void {
    this.stopTerminals();
    this.stopFeed?.();
    this.stopFeed = undefined;
    for (const listener of this.listeners) listener.raw.end();
    this.listeners.clear();
  }

  private send(listener: Listener, event: string, data: unknown): void {
    if (!this.sessions.alive(listener.session)) {
      listener.raw.end();
      return;
    }
    listener.raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** Each scope's terminal list, made once per round however many pages listen. */
  private async terminalsOf(cache: Map<string, TerminalsJson>, who: string) {
    let list = cache.get(who);
    if (list === undefined) {
      list = await terminalsJson(this.backend, who);
      cache.set(who, list);
    }
    return list;
  }

  private async readFeed(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      const events = await this.backend.journal.eventsAfter(this.lastEventId, FEED_BATCH);
      if (events.length === 0) return;
      const touched = new Set<Listener>();
      for (const event of events) {
        const row = await this.backend.journal.get(event.transactionId);
        // Moved on event by event: when a read fails (the journal away for a moment), the next
        // round starts with the event it failed on instead of skipping the rest of the batch.
        this.lastEventId = event.id;
        if (row === undefined) continue;
        for (const listener of this.listeners) {
          if (!this.backend.owns(listener.session.who, row)) continue;
          touched.add(listener);
          this.send(listener, 'transaction', {
            id: row.publicId,
            reference: row.reference,
            terminalId: row.terminalId,
            state: event.state,
          });
        }
      }
      // A transaction starting or ending makes its terminal busy or free.
      const cache = new Map<string, TerminalsJson>();
      for (const listener of touched)
        this.send(listener, 'terminals', await this.terminalsOf(cache, listener.session.who));
    } catch (error) {
      this.logger.error(
        { err: toEcrError(error).message },
        'could not read the journal change feed',
      );
    } finally {
      this.reading = false;
    }
  }

  private async announceTerminals(terminalId: string | undefined): Promise<void> {
    const cache = new Map<string, TerminalsJson>();
    for (const listener of this.listeners) {
      const list = await this.terminalsOf(cache, listener.session.who);
      // Only the scopes the terminal belongs to hear of it.
      if (terminalId !== undefined && !list.terminals.some((t) => t.terminalId === terminalId))
        continue;
      this.send(listener, 'terminals', list);
    }
  }
}
