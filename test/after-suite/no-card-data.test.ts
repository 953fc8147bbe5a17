import { inject, expect, it } from 'vitest';
import { files, filesWithPans } from '../global-setup.js';

// ARCHITECTURE.md invariant 3: after the whole suite, no journal, WAL or log file any test wrote,
// and no HTTP answer a test fetched (test/setup/http-answers.ts), holds a Luhn-valid 13–19 digit
// run that starts like a card number.
it('no full PAN in any journal, log file or HTTP answer of the whole suite', () => {
  const root = inject('testRoot');
  const all = [...files(root)];
  expect(all.some((path) => path.endsWith('.db'))).toBe(true);
  expect(all.some((path) => path.endsWith('.log'))).toBe(true);
  expect(all.some((path) => path.includes('http-answers'))).toBe(true);
  expect(filesWithPans(root)).toEqual([]);
});
