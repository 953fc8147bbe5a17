import { pino, type DestinationStream, type Logger } from 'pino';

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
