import type { FastifyRequest } from 'fastify';
import { systemClock, type Clock } from '../core/clock.js';
import { EcrError } from '../core/errors.js';
import { randomLetters } from '../core/random-text.js';
import { sameSecret } from '../core/secret.js';

/**
 * The dashboard's sign-in sessions: a cookie (HttpOnly, SameSite=Strict, path `/ui`) naming a
 * session opened with the service's own credentials, a CSRF token per session for every
 * state-changing request, and an expiry. Bounded: per scope and in all.
 */

const COOKIE = 'ecr_session';
/** How long a session lasts after sign-in. */
export const DEFAULT_SESSION_TTL_MS = 12 * 60 * 60 * 1000;
/** Sessions held at most, all scopes together; past it the oldest go. */
export const MAX_SESSIONS = 10_000;
/** Sessions one scope (a merchant) may hold; past it its own oldest one goes. */
export const MAX_SESSIONS_PER_SCOPE = 100;

/** Session ids and CSRF tokens (43 letters of 52: about 245 bits), test references. */
export const TOKEN_LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export interface Session {
  readonly id: string;
  readonly who: string;
  readonly csrf: string;
  expiresAt: number;
  /** Live streams open. */
  streams: number;
  /** A test payment of this session is running. */
  paying: boolean;
}

export interface DashboardSessionsOptions {
  /** @default DEFAULT_SESSION_TTL_MS */
  readonly ttlMs?: number;
  /** @default systemClock */
  readonly clock?: Pick<Clock, 'now'>;
}

export class DashboardSessions {
  readonly ttlMs: number;
  private readonly clock: Pick<Clock, 'now'>;
  private readonly sessions = new Map<string, Session>();
  private readonly endListeners = new Set<(session: Session) => void>();

  constructor(options: DashboardSessionsOptions = {}) {
    this.ttlMs = options.ttlMs ?? DEFAULT_SESSION_TTL_MS;
    this.clock = options.clock ?? systemClock;
  }

  /** Calls `listener` with every session signed out or evicted (its live streams end with it). */
  onEnd(listener: (session: Session) => void): void {
    this.endListeners.add(listener);
  }

  /** Signed in, not signed out, not expired, not evicted. */
  alive(session: Session): boolean {
    return this.sessions.get(session.id) === session && session.expiresAt > this.clock.now();
  }

  /** The live session the request's cookie names, if any. */
  of(request: FastifyRequest): Session | undefined {
    const cookie = request.headers.cookie ?? '';
    const match = new RegExp(`(?:^|;\\s*)${COOKIE}=([A-Za-z]{43})(?:;|$)`).exec(cookie);
    const id = match?.[1];
    if (id === undefined) return undefined;
    const session = this.sessions.get(id);
    if (session === undefined || !this.alive(session)) {
      this.sessions.delete(id);
      return undefined;
    }
    return session;
  }

  /** The request's live session, or UNAUTHORIZED. */
  require(request: FastifyRequest): Session {
    const session = this.of(request);
    if (session === undefined)
      throw new EcrError('UNAUTHORIZED', 'session: sign in first', {
        field: 'session',
        rule: 'a signed-in session',
      });
    return session;
  }

  /** State-changing requests: the session's CSRF token in `x-csrf-token`, from this origin. */
  requireCsrf(request: FastifyRequest, session: Session): void {
    const token = request.headers['x-csrf-token'];
    if (typeof token !== 'string' || !sameSecret(token, session.csrf)) {
      throw new EcrError('UNAUTHORIZED', 'x-csrf-token: missing or wrong', {
        field: 'x-csrf-token',
        rule: "the session's CSRF token",
      });
    }
  }

  /** A new session for `who`, making room first: its own oldest past the per-scope bound, then any. */
  open(who: string): Session {
    const mine = [...this.sessions.values()].filter((s) => s.who === who);
    for (const old of mine.slice(0, Math.max(0, mine.length - MAX_SESSIONS_PER_SCOPE + 1)))
      this.end(old);
    if (this.sessions.size >= MAX_SESSIONS) {
      const now = this.clock.now();
      // Expired ones go quietly: their streams end at their next write.
      for (const [id, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(id);
      for (const old of this.sessions.values()) {
        if (this.sessions.size < MAX_SESSIONS) break;
        this.end(old);
      }
    }
    const id = randomLetters(43, TOKEN_LETTERS);
    const session: Session = {
      id,
      who,
      csrf: randomLetters(43, TOKEN_LETTERS),
      expiresAt: this.clock.now() + this.ttlMs,
      streams: 0,
      paying: false,
    };
    this.sessions.set(id, session);
    return session;
  }

  /** Signs a session out: its live streams end with it. */
  end(session: Session): void {
    this.sessions.delete(session.id);
    for (const listener of this.endListeners) listener(session);
  }

  /** The `set-cookie` value that names `session` (Secure over HTTPS). */
  cookie(session: Session, secure: boolean): string {
    return `${COOKIE}=${session.id}; HttpOnly; SameSite=Strict; Path=/ui; Max-Age=${Math.floor(this.ttlMs / 1000)}${secure ? '; Secure' : ''}`;
  }

  /** The `set-cookie` value that clears the session cookie. */
  clearedCookie(): string {
    return `${COOKIE}=; HttpOnly; SameSite=Strict; Path=/ui; Max-Age=0`;
  }
}

/**
 * Sign-in comes from the dashboard's own page: a cross-site form or script sends an `Origin` of
 * its own. The host only: behind a TLS-terminating proxy the page is https while this server
 * sees http.
 */
export function requireSameOrigin(request: FastifyRequest): void {
  const origin = request.headers.origin;
  let host: string | undefined;
  try {
    host = origin === undefined ? undefined : new URL(origin).host;
  } catch {
    host = '';
  }
  if (origin !== undefined && host !== request.headers.host) {
    throw new EcrError('UNAUTHORIZED', 'origin: requests must come from the dashboard itself', {
      field: 'origin',
      rule: 'same origin',
    });
  }
}
