import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
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

export function* files(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* files(path);
    else yield path;
  }
}

/** Files holding a Luhn-valid 13–19 digit run that starts like a card number. */
export function filesWithPans(root: string): string[] {
  return [...files(root)].filter((path) => containsPan(readFileSync(path).toString('latin1')));
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
