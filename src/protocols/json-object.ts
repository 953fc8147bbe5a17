import { EcrError } from '../core/errors.js';

/**
 * Parses one JSON message that must be an object, within `maxBytes` (FRAME_TOO_LARGE past it,
 * PROTOCOL_ERROR on field `message` otherwise). Shared by the JSON protocols (PAYable, SEMI).
 */
export function parseJsonObject(
  text: string,
  who: string,
  maxBytes: number,
): Record<string, unknown> {
  if (Buffer.byteLength(text, 'utf8') > maxBytes) {
    throw new EcrError('FRAME_TOO_LARGE', `${who} message is over ${maxBytes} bytes`, {
      field: 'message',
      rule: `at most ${maxBytes} bytes`,
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    // No `cause`: the parser's own error quotes the raw text; its message here is masked.
    throw new EcrError(
      'PROTOCOL_ERROR',
      `malformed JSON from the ${who}: ${(error as Error).message}`,
      {
        field: 'message',
        rule: 'must be a JSON object',
      },
    );
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new EcrError('PROTOCOL_ERROR', `the ${who} sent JSON that is not an object`, {
      field: 'message',
      rule: 'must be a JSON object',
    });
  }
  return value as Record<string, unknown>;
}
