import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { luhnValid } from '../../src/core/pan.js';
import { filesWithPans } from '../global-setup.js';

/** A Luhn-valid card number, built here so that no source file holds one. */
function pan(prefix: string): string {
  for (let digit = 0; digit <= 9; digit++)
    if (luhnValid(prefix + digit)) return prefix + String(digit);
  throw new Error('unreachable');
}

/** The after-suite scan (test/after-suite/no-card-data.test.ts) on files written here. */
function scan(files: Record<string, string>): string[] {
  const root = mkdtempSync(join(tmpdir(), 'ecr-bridge-scan-'));
  try {
    for (const [name, text] of Object.entries(files)) writeFileSync(join(root, name), text);
    return filesWithPans(root).map((path) => path.slice(root.length + 1));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

describe('the suite-wide card-number scan', () => {
  it('flags a card number in a log, however it is written around', () => {
    const card = pan('411111111111111');
    expect(
      scan({
        'plain.log': `{"msg":"paid","pan":"${card}"}`,
        'after-amount.log': `amount 10.00 card ${card}`,
      }).sort(),
    ).toEqual(['after-amount.log', 'plain.log']);
  });

  it("passes a float's long fraction in a /metrics answer, which only looks like one", () => {
    expect(luhnValid('46820399999999995')).toBe(true);
    expect(scan({ 'metrics.log': 'process_cpu_user_seconds_total 0.46820399999999995\n' })).toEqual(
      [],
    );
  });
});
