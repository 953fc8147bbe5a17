import { defineConfig } from 'vitest/config';

const shared = {
  // Real sockets, real child processes and a real SQLite file: give them room on 2 cores.
  pool: 'forks' as const,
  testTimeout: 60_000,
  hookTimeout: 30_000,
  // Every test process keeps the HTTP answers it fetched, for the after-suite card-data scan.
  setupFiles: ['test/setup/http-answers.ts'],
  // expect.poll's own default (1 s) is a timed assertion in disguise: a browser round trip on a
  // loaded CI box can take longer. Polls wait for a condition; give them room.
  expect: { poll: { timeout: 20_000, interval: 50 } },
};

export default defineConfig({
  test: {
    // One global setup for both projects: one root directory, scanned by the after-suite project.
    globalSetup: ['test/global-setup.ts'],
    reporters: ['default', './test/summary-reporter.ts'],
    projects: [
      {
        test: {
          ...shared,
          name: 'suite',
          include: ['test/**/*.test.ts'],
          exclude: ['test/after-suite/**'],
          sequence: { groupOrder: 0 },
        },
      },
      {
        // Runs after every other test: scans all they wrote for card data.
        test: {
          ...shared,
          name: 'after-suite',
          include: ['test/after-suite/**/*.test.ts'],
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
