import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { EcrError } from '../core/errors.js';
import { silentLogger } from '../core/logger.js';
import { LoginGuard } from '../http/login-guard.js';
import type { DashboardBackend } from './backend.js';
import { LiveFeed } from './live-feed.js';
import { registerDashboardRoutes } from './routes.js';
import { SECURITY_HEADERS } from './security-headers.js';
import { DashboardSessions } from './sessions.js';

/**
 * The web dashboard (issue 7), one page for both services: the HiPay-compatible connector and
 * the cloud gateway. The page itself is static (`web/`, no build step, no CDN); this module
 * serves it under `/ui/` with a strict Content-Security-Policy, and its JSON API under
 * `/ui/api/`: a cookie session (HttpOnly, SameSite=Strict) opened with the service's own
 * credentials (sessions.ts), a CSRF token on every state-changing request, and live updates over
 * server-sent events fed by the journal's change feed (live-feed.ts). The routes are in
 * routes.ts; what each service lends the dashboard, in backend.ts.
 */

export interface DashboardOptions {
  readonly logger?: Logger;
  /** @default DEFAULT_SESSION_TTL_MS (12 h) */
  readonly sessionTtlMs?: number;
  /** How often the journal's change feed is read while a page listens. @default 250 */
  readonly feedIntervalMs?: number;
  /** Sign-in limits (the gateway shares its POS API's). @default a new LoginGuard */
  readonly guard?: LoginGuard;
  /** Session expiry, the feed's rounds and the streams' keep-alives. @default systemClock */
  readonly clock?: Clock;
}

/** The page's files, read once from the package's `web/` directory. */
const WEB_DIR = new URL('../../web/', import.meta.url);
const FILES: Readonly<Record<string, { file: string; type: string }>> = {
  '/ui/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/ui/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/ui/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

/**
 * Adds the dashboard to `app`: `GET /` from a browser (Accept: text/html) redirects to `/ui/`;
 * the page and its API live under `/ui/`. The service's own routes are untouched (the connector's
 * `POST /` stays as it is). Call before the app listens.
 */
export function registerDashboard(
  app: FastifyInstance,
  backend: DashboardBackend,
  options: DashboardOptions = {},
): { close(): void } {
  const logger = (options.logger ?? silentLogger).child({ component: 'dashboard' });
  const sessions = new DashboardSessions({
    ...(options.sessionTtlMs === undefined ? {} : { ttlMs: options.sessionTtlMs }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  });
  const feed = new LiveFeed({
    backend,
    sessions,
    logger,
    ...(options.feedIntervalMs === undefined ? {} : { feedIntervalMs: options.feedIntervalMs }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  });
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const [path, { file, type }] of Object.entries(FILES))
    files.set(path, { body: readFileSync(new URL(file, WEB_DIR)), type });

  app.addHook('onSend', async (request, reply, payload) => {
    if (request.url.startsWith('/ui/')) void reply.headers(SECURITY_HEADERS);
    return payload;
  });

  // A browser asking for the service's root gets the page; API clients keep their routes.
  app.get('/', async (request, reply) => {
    if ((request.headers.accept ?? '').includes('text/html')) return reply.redirect('/ui/', 302);
    throw new EcrError('NOT_FOUND', 'GET /: nothing here; the dashboard is at /ui/');
  });
  app.get('/ui', async (_request, reply) => reply.redirect('/ui/', 301));
  for (const [path, file] of files) {
    app.get(path, async (_request, reply) => reply.type(file.type).send(file.body));
  }

  registerDashboardRoutes(app, {
    backend,
    sessions,
    feed,
    guard: options.guard ?? new LoginGuard(),
    logger,
  });

  return { close: () => feed.close() };
}

/**
 * A request for the dashboard's page or API: its errors answer as `{ error }` JSON. Not `/`:
 * the connector's `POST /` keeps its HiPay answers.
 */
export function isDashboardRequest(url: string): boolean {
  return url === '/ui' || url.startsWith('/ui/');
}
