import { describe, expect, it } from 'vitest';
import {
  ascii,
  concat,
  hex,
  runScriptedClient,
  startScriptedPeer,
  type Transcript,
} from './transcript.js';

// The conformance harness checks itself: a peer and a client playing the two roles of the same
// transcript agree, and a wrong byte fails naming the step with both byte strings.

const EXCHANGE: Transcript = {
  source: 'this file: a made-up exchange to exercise the harness',
  shows: 'two roles of one transcript agree, across split writes',
  steps: [
    { from: 'pos', bytes: ascii('<ENQ>'), note: 'ENQ' },
    { from: 'terminal', bytes: ascii('<ACK>') },
    {
      from: 'pos',
      bytes: ascii('<STX>HELLO<ETX>'),
      chunks: [1, 3, 6],
      note: 'a frame in four writes',
    },
    { from: 'terminal', bytes: hex('06 04') },
    { from: 'pos', close: true },
  ],
};

describe('conformance transcript harness', () => {
  it('builds bytes from named control bytes, hex and pieces', () => {
    expect(Array.from(ascii('<STX>A<ETX><x7F>'))).toEqual([0x02, 0x41, 0x03, 0x7f]);
    expect(Array.from(hex('02 41:03'))).toEqual([0x02, 0x41, 0x03]);
    expect(Array.from(concat(ascii('A'), 0x04, hex('04')))).toEqual([0x41, 0x04, 0x04]);
    expect(() => ascii('<BAD>')).toThrow(/unknown control byte/);
    expect(() => ascii('“')).toThrow(/not ASCII/);
  });

  it('a scripted peer and a scripted client playing opposite roles both pass', async () => {
    const peer = await startScriptedPeer(EXCHANGE, 'terminal');
    try {
      const client = await runScriptedClient(EXCHANGE, peer);
      const server = await peer.done;
      expect(client.received.map((b) => Array.from(b))).toEqual([[0x06], [0x06, 0x04]]);
      expect(server.received).toHaveLength(2);
      expect(Buffer.from(server.received[1] as Uint8Array).toString('latin1')).toBe(
        '\x02HELLO\x03',
      );
      expect(peer.extraConnections).toBe(0);
    } finally {
      await peer.close();
    }
  });

  it('a wrong byte fails naming the step and showing expected and received hex', async () => {
    const wrong: Transcript = {
      ...EXCHANGE,
      steps: EXCHANGE.steps.map((step, i) =>
        i === 2 ? { from: 'pos', bytes: ascii('<STX>HELLO<ETX>') } : step,
      ),
    };
    const expecting: Transcript = {
      ...EXCHANGE,
      steps: EXCHANGE.steps.map((step, i) =>
        i === 2 ? { from: 'pos', bytes: ascii('<STX>HELL0<ETX>'), note: 'the frame' } : step,
      ),
    };
    const peer = await startScriptedPeer(expecting, 'terminal', { timeoutMs: 1_000 });
    try {
      await runScriptedClient(wrong, peer, { timeoutMs: 1_000 }).catch(() => undefined);
      await expect(peer.done).rejects.toThrow(
        /step 3\/5 \(pos → terminal\) "the frame".*first difference at byte 5[\s\S]*expected: 02 48 45 4c 4c 30 03[\s\S]*got: {6}02 48 45 4c 4c 4f 03/,
      );
    } finally {
      await peer.close();
    }
  });

  it('bytes that never come fail within the step timeout, naming the step', async () => {
    const silent: Transcript = {
      source: 'this file',
      shows: 'a peer that never answers',
      steps: [{ from: 'terminal', bytes: ascii('<ACK>'), note: 'ACK of the ENQ' }],
    };
    // The peer's own script is empty: it accepts the connection and says nothing.
    const peer = await startScriptedPeer({ ...silent, steps: [] }, 'terminal');
    try {
      const started = Date.now();
      await expect(runScriptedClient(silent, peer, { timeoutMs: 300 })).rejects.toThrow(
        /step 1\/1 \(terminal → pos\) "ACK of the ENQ".*nothing more within 300 ms/,
      );
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await peer.close();
    }
  });
});
