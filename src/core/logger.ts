import { pino, type DestinationStream, type Logger } from 'pino';
import { redactPans } from './pan.js';

export type { Logger } from 'pino';

/**
 * Second line of defence for card data (the first is masking at the edge): these keys are
 * censored wherever they appear, one or two levels deep.
 */
const CARD_KEYS = [
  'pan',
  'cardNumber',
  'card_number',
  'track1',
  'track2',
  'track_data',
  'trackData',
  'cvv',
  'cvc',
];
export const REDACT_PATHS: readonly string[] = CARD_KEYS.flatMap((key) => [
  key,
  `*.${key}`,
  `*.*.${key}`,
]);

export interface LoggerOptions {
  /** @default 'info' */
  readonly level?: string;
  /** Where lines go. @default standard error */
  readonly destination?: DestinationStream;
}

/** A pino logger with card-data redaction and ISO timestamps (no epoch digit runs in logs). */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      base: { pid: process.pid },
    },
    options.destination ?? pino.destination(2),
  );
}

/** A logger that writes nothing: the default for library code that was given none. */
export const silentLogger: Logger = pino({ level: 'silent' });

/**
 * What a log line may say of an HTTP request: its method, its path without the query string (an
 * eConduit POS sends `key` and `password` there) with card numbers masked, and the peer's
 * address. Never a header (Authorization carries Basic Auth credentials) and never a body.
 */
export function requestForLog(request: unknown): Record<string, string | undefined> {
  const r = (typeof request === 'object' && request !== null ? request : {}) as {
    method?: unknown;
    url?: unknown;
    ip?: unknown;
  };
  const path = typeof r.url === 'string' ? r.url.split('?', 1)[0] : undefined;
  return {
    method: typeof r.method === 'string' ? r.method : undefined,
    url: path === undefined ? undefined : redactPans(path),
    remoteAddress: typeof r.ip === 'string' ? r.ip : undefined,
  };
}

/** What a log line may say of an HTTP answer: its status only. */
export function responseForLog(reply: unknown): { statusCode: unknown } {
  return { statusCode: (reply as { statusCode?: unknown } | null)?.statusCode };
}

/**
 * The logger an HTTP service hands Fastify: warnings and errors only, and Fastify's own request
 * and answer objects (`req`, `res`, logged by its fallback error handler among others) through
 * `requestForLog` / `responseForLog`, so that no query string or header reaches a log.
 */
export function httpServiceLogger(logger: Logger): Logger {
  return logger.child(
    {},
    { level: 'warn', serializers: { req: requestForLog, res: responseForLog } },
  );
}
