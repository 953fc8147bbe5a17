import { describe, expect, it } from 'vitest';
import { faultTable, Rng, seedFor } from './harness.js';

describe('fault harness', () => {
  it('the same seed gives the same draws; scenarios and runs get distinct seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const drawsA = Array.from({ length: 20 }, () => a.int(0, 1_000_000));
    expect(Array.from({ length: 20 }, () => b.int(0, 1_000_000))).toEqual(drawsA);
    expect(new Set(drawsA).size).toBeGreaterThan(15);
    expect(seedFor('x', 0)).toBe(seedFor('x', 0));
    expect(new Set([seedFor('x', 0), seedFor('x', 1), seedFor('y', 0)]).size).toBe(3);
    expect(new Rng(7).letters(12)).toMatch(/^[A-Z]{12}$/);
  });

  it('prints one line per scenario and a total', () => {
    const table = faultTable([
      {
        scenario: 'semi tcp: cut mid-answer',
        runs: 10,
        payments: 40,
        lost: 0,
        duplicated: 0,
        unresolved: 0,
        seed: 1,
      },
      {
        scenario: 'gateway: SIGKILL',
        runs: 5,
        payments: 5,
        lost: 1,
        duplicated: 0,
        unresolved: 2,
        seed: 1,
      },
      {
        scenario: 'semi tcp: retry a declined or busy reference under faults',
        runs: 3,
        payments: 12,
        lost: 0,
        duplicated: 0,
        unresolved: 0,
        attempts: 7,
        unknownRetries: 2,
        seed: 1,
      },
    ]);
    const lines = table.split('\n');
    expect(lines[1]).toMatch(
      /^scenario\s+runs\s+payments\s+lost\s+duplicated\s+unresolved\s+attempts\s+unknown retries$/,
    );
    // A scenario that does not retry shows a dash, not a zero, in the retry columns.
    expect(lines[3]).toMatch(/^semi tcp: cut mid-answer\s+10\s+40\s+0\s+0\s+0\s+-\s+-$/);
    expect(lines.at(-1)).toMatch(/^total\s+18\s+57\s+1\s+0\s+2\s+7\s+2$/);
  });
});
