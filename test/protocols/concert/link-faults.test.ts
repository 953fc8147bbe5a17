import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CONCERT_CONTROL, encodeFrame } from '../../../src/protocols/concert/frame.js';
import {
  CONCERT_COLLISION_RULE,
  ConcertLink,
  type ConcertRole,
} from '../../../src/protocols/concert/link.js';
import { ANSWER, bytes, corrupt, frameHex, hex, isFrame, REQUEST, splitter, Wire } from './wire.js';

const { STX, ETX, EOT, ENQ, ACK, NAK } = CONCERT_CONTROL;

// Faults on the line: lost and garbled bytes, crossing ENQs, arbitrary cuts and garbage.

describe('ConcertLink lost bytes', () => {
  it.each([
    ['garbled (0x07)', Uint8Array.of(0x07)],
    ['turned into a NAK', Uint8Array.of(NAK)],
  ])(
    'an ACK to the frame %s: the sender resends, the receiver ACKs again, one message only',
    (_case, into) => {
      const wire = new Wire({
        tamper: (from, b, nth) => (from === 'terminal' && nth === 1 ? into : b),
      });
      wire.send('pos', REQUEST);
      wire.run();
      expect(wire.trace.filter((t) => t.startsWith('pos>02'))).toHaveLength(2);
      expect(wire.summary('terminal')).toEqual([{ type: 'message', data: REQUEST }]);
      expect(wire.summary('pos')).toEqual([{ type: 'delivered' }]);
    },
  );

  it("every ACK to the frame garbled on the line: the terminal has the message, so the POS reports 'no-answer-to-frame' (unknown), never 'nak-limit' (refused)", () => {
    // The terminal's writes after the ENQ's ACK are its ACKs to each sending: all garbled.
    const wire = new Wire({
      tamper: (from, b, nth) => (from === 'terminal' && nth >= 1 ? Uint8Array.of(0x07) : b),
    });
    wire.send('pos', REQUEST);
    wire.run();
    expect(wire.summary('terminal')).toEqual([{ type: 'message', data: REQUEST }]);
    expect(wire.summary('pos')).toEqual([
      { type: 'send-failed', reason: 'no-answer-to-frame', code: 'OUTCOME_UNKNOWN' },
    ]);
  });

  it("an ACK to the frame lost outright: the terminal has the message, the POS reports 'no-answer-to-frame' (outcome unknown)", () => {
    const wire = new Wire({
      tamper: (from, b, nth) => (from === 'terminal' && nth === 1 ? new Uint8Array() : b),
    });
    wire.send('pos', REQUEST);
    wire.run();
    expect(wire.summary('terminal')).toEqual([{ type: 'message', data: REQUEST }]);
    expect(wire.summary('pos')).toEqual([
      { type: 'send-failed', reason: 'no-answer-to-frame', code: 'OUTCOME_UNKNOWN' },
    ]);
    expect(wire.links.terminal.state).toBe('idle');
  });

  it('a lost EOT: the receiver is idle again after the EOT timeout, silently', () => {
    const wire = new Wire({
      tamper: (_from, b) => (b.length === 1 && b[0] === EOT ? new Uint8Array() : b),
    });
    wire.send('pos', REQUEST);
    wire.run(0);
    expect(wire.links.terminal.state).toBe('awaiting-eot');
    wire.run();
    expect(wire.now).toBe(2000);
    expect(wire.links.terminal.state).toBe('idle');
    expect(wire.summary('terminal')).toEqual([{ type: 'message', data: REQUEST }]);
  });

  it('a lost EOT: the next ENQ is accepted at once as a new exchange', () => {
    const wire = new Wire({
      tamper: (_from, b) => (b.length === 1 && b[0] === EOT ? new Uint8Array() : b),
    });
    wire.send('pos', REQUEST);
    wire.run(0);
    wire.send('pos', 'SECOND');
    wire.run(0);
    expect(wire.summary('terminal')).toEqual([
      { type: 'message', data: REQUEST },
      { type: 'message', data: 'SECOND' },
    ]);
  });
});

describe('ConcertLink ENQ collision', () => {
  it('exports the documented rule: the terminal wins', () => {
    expect(CONCERT_COLLISION_RULE).toMatch(/terminal wins/);
  });

  it.each([
    ['the POS sends first', ['pos', 'terminal'] as const],
    ['the terminal sends first', ['terminal', 'pos'] as const],
  ])(
    '%s, the ENQs cross: the terminal frame goes first, then the POS frame, each once',
    (_case, order) => {
      const wire = new Wire();
      for (const side of order) wire.send(side, side === 'pos' ? REQUEST : ANSWER);
      wire.run();
      expect(wire.summary('pos')).toEqual([
        { type: 'message', data: ANSWER },
        { type: 'delivered' },
      ]);
      expect(wire.summary('terminal')).toEqual([
        { type: 'delivered' },
        { type: 'message', data: REQUEST },
      ]);
      expect(wire.trace.filter((t) => t.includes('>02'))).toEqual([
        `terminal>${frameHex(ANSWER)}`,
        `pos>${frameHex(REQUEST)}`,
      ]);
      expect(wire.now).toBe(0);
    },
  );

  it('the terminal, waiting for the ACK to its ENQ, ignores an ENQ; the POS answers one with ACK', () => {
    const terminal = new ConcertLink({ role: 'terminal' });
    terminal.send(ANSWER, 0);
    expect(terminal.push(bytes(ENQ), 1).write).toHaveLength(0);
    expect(terminal.state).toBe('enq-sent');
    const pos = new ConcertLink({ role: 'pos' });
    pos.send(REQUEST, 0);
    expect(hex(pos.push(bytes(ENQ), 1).write)).toBe('06');
    expect(pos.state).toBe('receiving');
    expect(pos.sending).toBe(true);
  });
});

describe('ConcertLink properties', () => {
  /** A transaction with line trouble: a collision, a corrupted frame, a garbled ACK. */
  function scenario(split?: (b: Uint8Array) => Uint8Array[]): Wire {
    let frames = 0;
    let acks = 0;
    const wire = new Wire({
      ...(split === undefined ? {} : { split }),
      tamper: (from, b) => {
        if (from === 'pos' && isFrame(b) && frames++ === 0) return corrupt(b);
        if (from === 'terminal' && b.length === 1 && b[0] === ACK && acks++ === 1)
          return Uint8Array.of(0x07);
        return b;
      },
    });
    wire.send('pos', REQUEST);
    wire.send('terminal', ANSWER);
    wire.run();
    return wire;
  }
  const written = (wire: Wire, side: ConcertRole): string =>
    wire.trace
      .filter((t) => t.startsWith(`${side}>`))
      .map((t) => t.replace(/^.*>|~.*$/g, ''))
      .join('');

  it('the wire cut into single bytes or at random offsets gives the same events and the same bytes', () => {
    const whole = scenario();
    expect(whole.summary('pos').filter((e) => e.type !== 'rejected')).toEqual([
      { type: 'message', data: ANSWER },
      { type: 'delivered' },
    ]);
    const check = (wire: Wire): void => {
      for (const side of ['pos', 'terminal'] as const) {
        expect(wire.summary(side)).toEqual(whole.summary(side));
        expect(written(wire, side)).toBe(written(whole, side));
      }
    };
    check(scenario(splitter([1])));
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 90 }), { maxLength: 12 }), (sizes) =>
        check(scenario(splitter(sizes))),
      ),
    );
  });

  it('property: garbage bytes, with real frames mixed in or not, never throw, never hold past the bound, and give a message only for a whole well-formed frame really in them', () => {
    const byte = fc.oneof(
      fc.constantFrom(STX, ETX, EOT, ENQ, ACK, NAK, 0x41),
      fc.integer({ min: 0, max: 255 }),
    );
    const text = fc.string({
      unit: fc.constantFrom('A', 'b', '7', ' ', '~'),
      minLength: 1,
      maxLength: 16,
    });
    const chunk = fc.record({
      data: fc.oneof(
        { weight: 4, arbitrary: fc.array(byte, { maxLength: 64 }) },
        { weight: 1, arbitrary: text.map((t) => [ENQ, ...encodeFrame(t, 16)]) },
      ),
      advance: fc.nat({ max: 3000 }),
    });
    let runsWithMessages = 0;
    fc.assert(
      fc.property(
        fc.constantFrom<ConcertRole>('pos', 'terminal'),
        fc.array(chunk, { maxLength: 30 }),
        fc.boolean(),
        (role, chunks, sendToo) => {
          const link = new ConcertLink({ role, maxDataBytes: 16 });
          const input: number[] = [];
          const messages: string[] = [];
          let now = 0;
          if (sendToo) link.send('HELLO', now);
          for (const { data, advance } of chunks) {
            now += advance;
            input.push(...data);
            const steps = [link.tick(now), link.push(Uint8Array.from(data), now)];
            for (const step of steps)
              for (const e of step.events) if (e.type === 'message') messages.push(e.data);
            expect(link.buffered).toBeLessThanOrEqual(16);
          }
          const stream = Buffer.from(input);
          for (const data of messages)
            expect(stream.indexOf(Buffer.from(encodeFrame(data, 16)))).toBeGreaterThanOrEqual(0);
          if (!input.includes(ETX)) expect(messages).toEqual([]);
          if (messages.length > 0) runsWithMessages++;
        },
      ),
      { numRuns: 3000 },
    );
    // The oracle above was really exercised: real frames got through the garbage in many runs.
    expect(runsWithMessages).toBeGreaterThan(100);
  });

  it('property: garbage alone (no ENQ before it) never emits a message and never writes a byte', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.integer({ min: 0, max: 255 }).filter((b) => b !== ENQ),
          { maxLength: 500 },
        ),
        (data) => {
          const link = new ConcertLink({ role: 'terminal' });
          const step = link.push(Uint8Array.from(data), 0);
          expect(step).toEqual({ write: new Uint8Array(), events: [] });
          expect(link.state).toBe('idle');
        },
      ),
      { numRuns: 1000 },
    );
  });
});
