import type { z } from 'zod';
import { invalid, type EcrError, type ErrorCode } from '../core/errors.js';

/**
 * Request input (a body, a query string, route parameters) checked against a zod schema at the
 * HTTP edge: the first problem becomes an EcrError naming the field and the rule it broke
 * (invariant 4), so that every route answers bad input the same way.
 */

export interface RequestIssueOptions {
  /** The field named when the input as a whole is at fault (an issue with no path). @default 'body' */
  readonly whole?: string;
  /** The code of an error about `field`. @default INVALID_INPUT */
  readonly codeFor?: (field: string) => ErrorCode;
  /**
   * A field left out breaks the rule "is required", whatever message its schema gives; false
   * keeps the schema's message (the dashboard's schemas say it themselves). @default true
   */
  readonly missingIsRequired?: boolean;
  /**
   * A key a strict object does not know is named as the field, with the rule "is not a field of
   * this request"; false reports it as zod does, against the input as a whole. @default true
   */
  readonly namesUnknownKeys?: boolean;
}

/** The error for one zod issue: INVALID_INPUT (or `codeFor`'s code) naming the field and rule. */
export function requestIssueError(
  issue: z.core.$ZodIssue,
  options: RequestIssueOptions = {},
): EcrError {
  if (issue.code === 'unrecognized_keys' && options.namesUnknownKeys !== false)
    return invalid('INVALID_INPUT', issue.keys.join(', '), 'is not a field of this request');
  const field = issue.path.length === 0 ? (options.whole ?? 'body') : issue.path.join('.');
  const missing =
    options.missingIsRequired !== false &&
    issue.code === 'invalid_type' &&
    issue.input === undefined;
  return invalid(
    options.codeFor?.(field) ?? 'INVALID_INPUT',
    field,
    missing ? 'is required' : issue.message,
  );
}

/**
 * `value` as `schema` reads it, or the first problem as an EcrError (see `requestIssueError`).
 * Issues carry the input they were about (`reportInput`), which tells a missing field apart.
 */
export function parseRequest<S extends z.ZodType>(
  schema: S,
  value: unknown,
  options: RequestIssueOptions = {},
): z.output<S> {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  throw requestIssueError(result.error.issues[0] as z.core.$ZodIssue, options);
}
