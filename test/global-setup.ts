import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { containsPan } from '../src/core/pan.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Directory under which every test keeps its data dirs, journals and logs. */
    testRoot: string;
  }
}

/** Regular files under `dir`: links are not followed (a test may link a log to /dev/full). */
export function* files(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stat = lstatSync(path);
    if (stat.isDirectory()) yield* files(path);
    else if (stat.isFile()) yield path;
  }
}

/**
 * The card numbers the suite itself uses, found by a pattern independent of src/core/pan.ts
 * (digits with up to two spaces, dots or dashes between them), so that a blind spot in the
 * masking code cannot also blind the scan.
 */
const SUITE_PANS = ['4111111111111111', '4761739001010010', '378282246310005', '5555555555554444'];
const SUITE_PAN_PATTERNS = SUITE_PANS.map((pan) => new RegExp([...pan].join('[ .-]{0,2}')));

/** Files holding card data: anything `containsPan` flags, or one of the suite's own card numbers. */
export function filesWithPans(root: string): string[] {
  return [...files(root)].filter((path) => {
    const text = readFileSync(path).toString('latin1');
    // A float printed whole (prom-client's `process_cpu_user_seconds_total 0.46820399999999995`
    // in a /metrics answer) has a long fraction that can read as a Luhn-valid card number; no
    // card number follows a decimal point. The suite's own numbers are still looked for anywhere.
    const withoutFractions = text.replace(/(\d\.)\d{13,}/g, '$1');
    return (
      containsPan(withoutFractions) || SUITE_PAN_PATTERNS.some((pattern) => pattern.test(text))
    );
  });
}

let root: string;

export function setup(project: TestProject): void {
  root = mkdtempSync(join(tmpdir(), 'ecr-bridge-test-'));
  project.provide('testRoot', root);
}

export function teardown(): void {
  // Kept when a scan found card data, for inspection.
  if (filesWithPans(root).length === 0) rmSync(root, { recursive: true, force: true });
}
