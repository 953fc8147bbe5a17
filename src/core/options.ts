import type { Logger } from 'pino';
import { z } from 'zod';
import type { Clock } from './clock.js';
import { invalid } from './errors.js';

/** Longest delay a Node timer can hold; past it setTimeout fires at once. */
export const MAX_TIMER_MS = 2_147_483_647;

/** A whole number in [min, max], with one message for every way of missing it. */
export function wholeNumber(min: number, max: number) {
  const rule = `must be a whole number from ${min} to ${max}`;
  return z.number({ error: rule }).int(rule).min(min, rule).max(max, rule);
}

/** An injected pino logger (house style 9). */
export function loggerOption() {
  return z
    .custom<Logger>((value) => typeof value === 'object' && value !== null, 'must be a pino logger')
    .optional();
}

/** An injected clock (house style 8): tests pass a fake one; the default is the system's. */
export function clockOption() {
  return z
    .custom<Clock>(
      (value) =>
        typeof value === 'object' &&
        value !== null &&
        typeof (value as Partial<Clock>).now === 'function' &&
        typeof (value as Partial<Clock>).setTimeout === 'function' &&
        typeof (value as Partial<Clock>).clearTimeout === 'function',
      'must be a clock (now, setTimeout, clearTimeout)',
    )
    .optional();
}

/**
 * The options every network terminal driver takes, with that protocol's defaults: its address,
 * the terminal's currency, the connect and answer bounds, and the logger.
 */
export function networkDriverOptions(defaults: {
  readonly currency: string;
  readonly connectTimeoutMs: number;
  readonly answerTimeoutMs: number;
  readonly connectAttempts: number;
}) {
  return {
    url: z.string().max(2048, 'must be at most 2048 characters'),
    currency: z.string().default(defaults.currency),
    connectTimeoutMs: wholeNumber(1, MAX_TIMER_MS).default(defaults.connectTimeoutMs),
    answerTimeoutMs: wholeNumber(1, MAX_TIMER_MS).default(defaults.answerTimeoutMs),
    connectAttempts: wholeNumber(1, 10).default(defaults.connectAttempts),
    logger: loggerOption(),
  };
}

/**
 * The one path for options (house style 5): a strict zod schema with the defaults, then a frozen
 * object. The first problem becomes an INVALID_INPUT error naming the option and the rule;
 * unknown option names are refused.
 */
export function parseOptions<S extends z.ZodType>(
  schema: S,
  input: unknown,
  what: string,
): Readonly<z.output<S>> {
  const result = schema.safeParse(input);
  if (result.success) return Object.freeze(result.data);
  const issue = result.error.issues[0] as z.core.$ZodIssue;
  if (issue.code === 'unrecognized_keys') {
    throw invalid('INVALID_INPUT', issue.keys.join(', '), `is not an option of ${what}`);
  }
  throw invalid(
    'INVALID_INPUT',
    issue.path.length === 0 ? what : issue.path.join('.'),
    issue.message,
  );
}
