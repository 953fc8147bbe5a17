import { describe, expect, it } from 'vitest';
import { firstDuplicateKey } from '../../src/protocols/json-object.js';

describe('firstDuplicateKey: a key sent twice in one object (JSON.parse keeps the last silently)', () => {
  it.each([
    ['{"amount":"1.00","amount":"2.00"}', 'amount'],
    ['{"a":1,"b":{"c":1,"c":2}}', 'c'],
    ['{"a":[{"x":1},{"x":2}],"a":0}', 'a'],
    ['{"amount":1,"\\u0061mount":2}', 'amount'],
    ['{"s":"a \\" \\"amount\\": quoted","amount":1,"amount":2}', 'amount'],
  ])('%s → %s', (text, key) => {
    expect(firstDuplicateKey(text)).toBe(key);
  });

  it.each([
    '{"amount":"1.00","currency":"EUR"}',
    '{"a":{"x":1},"b":{"x":1}}',
    '[{"x":1},{"x":2}]',
    '{"list":["a","a"],"s":"amount amount"}',
    '{"a":1,',
    'not json',
    '',
  ])('%s → none', (text) => {
    expect(firstDuplicateKey(text)).toBeUndefined();
  });

  it('any depth, no recursion', () => {
    const deep = `${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`;
    expect(firstDuplicateKey(deep)).toBeUndefined();
    expect(firstDuplicateKey(`${'['.repeat(50_000)}{"k":1,"k":2}${']'.repeat(50_000)}`)).toBe('k');
  });
});
