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
/**
 * Credentials a log object might carry by mistake: a terminal's registration secret (the
 * eConduit Register's `TerminalSecret`; the listener never puts it in a log object).
 */
const CREDENTIAL_KEYS = ['terminalSecret', 'TerminalSecret'];
export const REDACT_PATHS: readonly string[] = [...CARD_KEYS, ...CREDENTIAL_KEYS].flatMap((key) => [
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

/**
 * A pino logger with card-data redaction and ISO timestamps (no epoch digit runs in logs), whose
 * writes never throw (see `neverThrowing`).
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      base: { pid: process.pid },
    },
    neverThrowing(options.destination ?? pino.destination(2)),
  );
}

let writeFailures = 0;

/** Log lines this process could not write (full disk, unwritable file) since it started. */
export function logWriteFailures(): number {
  return writeFailures;
}

/** How often a destination that failed is tried again, while lines come. */
const LOG_RETRY_MS = 1_000;

interface EventfulDestination extends DestinationStream {
  on?(event: 'error', listener: (error: unknown) => void): unknown;
}

/**
 * A destination whose failures are counted, not thrown: pino writes synchronously, so a log file
 * on a full disk would otherwise throw out of `logger.info` in the middle of a payment, or,
 * through an `'error'` event nobody listens to, stop the process. The first failure is reported
 * once on standard error (not the log, which is what failed). While the destination is failing,
 * lines are dropped and counted, and one line a second goes to it as a try (pino's file
 * destination keeps the line that failed and writes it first on that try), so logging resumes
 * once the file can be written again, and what it holds meanwhile grows by one line a second at
 * most. Never `flushSync`: sonic-boom's retries a full disk forever, blocking the process.
 */
function neverThrowing(destination: EventfulDestination): DestinationStream {
  let failing = false;
  let triedAt = 0;
  const failed = (error: unknown): void => {
    failing = true;
    if (writeFailures++ > 0) return;
    const why = error instanceof Error ? error.message : String(error);
    try {
      process.stderr.write(
        `ecr-bridge: a log line could not be written (${why}); payments go on, and log lines are dropped while this lasts (counted: logWriteFailures in /readyz, ecr_log_write_failures_total in the gateway's /metrics)\n`,
      );
    } catch {
      // Standard error is gone too: the count is all that is left.
    }
  };
  destination.on?.('error', failed);
  return {
    write(line: string): void {
      if (failing) {
        const now = Date.now();
        if (now - triedAt < LOG_RETRY_MS) {
          writeFailures++;
          return;
        }
        triedAt = now;
        // A try: a failure comes back through `failed` (thrown, or the 'error' event).
        failing = false;
      }
      try {
        destination.write(line);
      } catch (error) {
        failed(error);
      }
    },
  };
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
