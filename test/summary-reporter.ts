import type { Reporter, TestModule } from 'vitest/node';
import { faultTable, type FaultRow } from './faults/harness.js';

/**
 * Prints the plain closing line CI readers look for: "Tests: N passed, N failed, N skipped",
 * preceded by the invariant suite's table when fault scenarios ran (test/faults/).
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: readonly TestModule[]): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const faults: FaultRow[] = [];
    for (const module of modules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
        const row = test.meta().faults;
        if (row !== undefined) faults.push(row);
      }
    }
    if (faults.length > 0) {
      faults.sort((a, b) => a.scenario.localeCompare(b.scenario));
      process.stdout.write(`\n${faultTable(faults)}\n`);
    }
    process.stdout.write(`\nTests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
