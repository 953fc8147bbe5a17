import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/core/errors.js';
import { SCENARIOS } from '../../src/simulators/scenarios.js';

const read = (path: string): string =>
  readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

describe('documentation stays true to the code', () => {
  it('docs/errors.md lists every error code with its HTTP status', () => {
    const doc = read('docs/errors.md');
    for (const [code, { http }] of Object.entries(ERROR_CODES)) {
      expect(doc, code).toMatch(new RegExp(`\\|\\s*\`${code}\`\\s*\\|\\s*${http}\\s*\\|`));
    }
  });

  it('docs/simulators.md lists every scenario of the shared table', () => {
    const doc = read('docs/simulators.md');
    for (const [digits, { name, charged }] of Object.entries(SCENARIOS)) {
      expect(doc, digits).toMatch(
        new RegExp(
          `\\|\\s*\`${digits}\`\\s*\\|\\s*${name}\\s*\\|.*\\|\\s*${charged ? '(\\*\\*)?yes' : 'no'}`,
        ),
      );
    }
  });

  it('the README gives the test command and the one-command demo', () => {
    const readme = read('README.md');
    expect(readme).toContain('npm test');
    expect(readme).toContain('npm start');
  });
});
