import { EcrError } from '../core/errors.js';

/** Deepest nesting of objects and arrays a message may have (no real message comes close). */
export const MAX_JSON_DEPTH = 32;

/**
 * How deep `text` nests objects and arrays, stopping as soon as it passes `limit` (brackets inside
 * strings do not count). JSON.parse takes nesting that JSON.stringify, and every walk of the value
 * after it, cannot: a message is refused before it is parsed.
 */
function nestsDeeperThan(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/**
 * Parses one JSON message that must be an object, within `maxBytes` (FRAME_TOO_LARGE past it)
 * and MAX_JSON_DEPTH levels of nesting (PROTOCOL_ERROR on field `message`, as for anything else
 * wrong with it). Shared by the JSON protocols (PAYable, SEMI).
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
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) {
    throw new EcrError('PROTOCOL_ERROR', `the ${who} sent JSON nested too deep`, {
      field: 'message',
      rule: `at most ${MAX_JSON_DEPTH} levels of objects and arrays`,
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

/**
 * The first key that appears twice in one object of the JSON `text`, or undefined. JSON.parse
 * keeps the last of duplicate keys silently (`{"amount":"1.00","amount":"2.00"}` is 2.00), so an
 * edge that moves money refuses such a body instead of guessing which one was meant. A scan of
 * the text, without recursion (any depth), keys compared decoded (`"a"` and `"\u0061"` are one).
 * Text that is not JSON is left to the parser: it answers undefined whenever it cannot tell.
 */
export function firstDuplicateKey(text: string): string | undefined {
  // One entry per open object (its keys so far) or array (null).
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let end = i + 1;
      while (end < text.length && text.charCodeAt(end) !== 0x22) {
        if (text.charCodeAt(end) === 0x5c) end++; // a backslash: the next character is escaped
        end++;
      }
      const keys = stack[stack.length - 1];
      if (expectKey && keys instanceof Set) {
        let key: unknown;
        try {
          key = JSON.parse(text.slice(i, end + 1));
        } catch {
          return undefined;
        }
        if (typeof key !== 'string') return undefined;
        if (keys.has(key)) return key;
        keys.add(key);
        expectKey = false;
      }
      i = end;
    } else if (c === 0x7b) {
      stack.push(new Set());
      expectKey = true;
    } else if (c === 0x5b) {
      stack.push(null);
      expectKey = false;
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c) {
      expectKey = stack[stack.length - 1] instanceof Set;
    } else if (c === 0x3a) {
      expectKey = false;
    }
  }
  return undefined;
}
