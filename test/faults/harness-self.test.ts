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
    ]);
    const lines = table.split('\n');
    expect(lines[1]).toMatch(/^scenario\s+runs\s+payments\s+lost\s+duplicated\s+unresolved$/);
    expect(lines.at(-1)).toMatch(/^total\s+15\s+45\s+1\s+0\s+2$/);
  });
});
