import { afterEach, describe, expect, it } from 'vitest';
import { ConcertSimulator } from '../../../src/simulators/concert/simulator.js';
import { runScriptedClient } from '../support/transcript.js';
import { simulatorCases } from './transcripts.js';

// Our Concert simulator, served over TCP (Concert over IP), is the terminal; a scripted POS on a
// real socket replays each hand-written transcript and requires the simulator's bytes exactly,
// in order — except the fields a real terminal chooses, checked by shape (see transcripts.ts).

const simulators: ConcertSimulator[] = [];

afterEach(async () => {
  for (const simulator of simulators.splice(0)) await simulator.stop();
});

async function start(echoPrivate: boolean): Promise<number> {
  const simulator = await new ConcertSimulator({ tcpPort: 0, echoPrivate }).start();
  simulators.push(simulator);
  return Number(new URL(simulator.tcpUrl as string).port);
}

describe.each([false, true])(
  'Concert conformance: our simulator (echoPrivate %s) against a scripted POS',
  (echo) => {
    it.each(simulatorCases(echo).map((t) => [t.shows, t] as const))(
      '%s',
      async (_title, transcript) => {
        const port = await start(echo);
        // quietMs: after its EOT the terminal says nothing more (no resend, no second answer).
        const { received } = await runScriptedClient(transcript, { port }, { quietMs: 300 });
        // The answer is the fourth thing the terminal sends: ACK, ACK, ENQ, answer, EOT.
        const answer = Buffer.from(received[3] as Uint8Array).toString('latin1');
        const privateData = answer.slice(answer.length - 12, answer.length - 2);
        // Echoing, the POS's 10 blanks come back; by default the simulator fills the field with
        // its own transaction number, as the terminals pyTeliumManager talks to do.
        if (echo) expect(privateData).toBe(' '.repeat(10));
        else expect(privateData.trim()).not.toBe('');
      },
    );
  },
);
