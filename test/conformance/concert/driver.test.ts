import { afterEach, describe, expect, it } from 'vitest';
import { parseTerminalAddress } from '../../../src/core/terminal-address.js';
import { createDriver } from '../../../src/drivers/index.js';
import { startScriptedPeer, type ScriptedPeer } from '../support/transcript.js';
import { DRIVER_AMOUNT_MINOR, DRIVER_CASES } from './transcripts.js';

// Our Concert driver, reached the way a user names a terminal (`concert+tcp://host:port`), is the
// POS; a scripted terminal on a real TCP socket replays each hand-written transcript and
// requires the driver's bytes exactly, in order (the private field by shape: see transcripts.ts).

/** Bound on waiting for the answer after the request was taken: the transcripts answer at once. */
const ANSWER_TIMEOUT_MS = 4_000;

const peers: ScriptedPeer[] = [];

afterEach(async () => {
  for (const peer of peers.splice(0)) await peer.close();
});

describe('Concert conformance: our driver against a scripted terminal', () => {
  it.each(DRIVER_CASES.map((c) => [c.transcript.shows, c] as const))(
    '%s',
    async (_title, { transcript, outcome, maskedPan, terminalTxId, query }) => {
      const peer = await startScriptedPeer(transcript, 'terminal', { quietMs: 200 });
      peers.push(peer);
      const driver = createDriver(
        parseTerminalAddress(`concert+tcp://127.0.0.1:${peer.port}${query ?? ''}`),
        {
          answerTimeoutMs: ANSWER_TIMEOUT_MS,
        },
      );
      try {
        const started = Date.now();
        const [result] = await Promise.all([
          driver.execute({
            kind: 'sale',
            reference: 'CONF-1',
            amount: { minor: DRIVER_AMOUNT_MINOR, currency: 'EUR' },
            wireId: 42,
          }),
          peer.done,
        ]);
        // The answer came and was ACKed: the outcome is the terminal's, never a timeout.
        expect(result.outcome).toBe(outcome);
        // Card data only from a full answer's report field, masked; none in a short answer.
        expect(result.maskedPan).toBe(maskedPan);
        // The terminal's own private data is its transaction id; blanks are no data.
        expect(result.terminalTxId).toBe(terminalTxId);
        expect(Date.now() - started).toBeLessThan(ANSWER_TIMEOUT_MS);
        // One connection per payment: the driver did not reconnect or resend.
        expect(peer.extraConnections).toBe(0);
      } finally {
        await driver.close();
      }
    },
  );
});
