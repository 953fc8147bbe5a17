import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';

/**
 * Keeps a copy of every HTTP answer a test reads with `fetch` (the connector's, the gateway's,
 * the dashboards' and the simulators' APIs) under the suite's root, so that the after-suite scan
 * (test/after-suite/no-card-data.test.ts) also proves no answer carried a full card number.
 * Event streams are left alone (they never end); each answer is kept up to MAX_KEPT_CHARS.
 */
const MAX_KEPT_CHARS = 1024 * 1024;
const RECORDING = Symbol.for('ecr-bridge.test.http-answers');

type Fetch = typeof globalThis.fetch;

const current = globalThis.fetch as Fetch & { [RECORDING]?: true };
if (current[RECORDING] !== true) {
  const dir = join(inject('testRoot'), 'http-answers');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${process.pid}.log`);
  const recording = Object.assign(
    async (...args: Parameters<Fetch>): Promise<Response> => {
      const response = await current(...args);
      const type = response.headers.get('content-type') ?? '';
      if (response.body !== null && !type.includes('text/event-stream')) {
        response
          .clone()
          .text()
          .then(
            (text) =>
              appendFileSync(
                file,
                // The path only: a query is what the test sent, not what the server answered.
                `${response.status} ${new URL(response.url).pathname}\n${text.slice(0, MAX_KEPT_CHARS)}\n`,
              ),
            // A body the test aborted or the server cut: nothing arrived to keep.
            () => undefined,
          );
      }
      return response;
    },
    { [RECORDING]: true as const },
  );
  globalThis.fetch = recording;
}
