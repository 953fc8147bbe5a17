import { describe, expect, it } from 'vitest';
import { CONCERT_CONTROL, encodeFrame } from '../../../src/protocols/concert/frame.js';
import {
  CONCERT_ACK_TIMEOUT_MS,
  ConcertLink,
  type ConcertRole,
} from '../../../src/protocols/concert/link.js';
import { thrownBy } from '../../helpers.js';
import {
  ANSWER,
  bytes,
  corrupt,
  frameHex,
  hex,
  isFrame,
  REQUEST,
  summarize,
  Wire,
} from './wire.js';

const { STX, ETX, EOT, ENQ, ACK, NAK } = CONCERT_CONTROL;

describe('ConcertLink exchanges', () => {
  it('POS → terminal: ENQ, ACK, frame, ACK, EOT; the terminal gets one message, the POS delivered', () => {
    const wire = new Wire();
    wire.send('pos', REQUEST);
    expect(wire.links.pos.sending).toBe(true);
    wire.run();
    expect(wire.trace).toEqual([
      'pos>05',
      'terminal>06',
      `pos>${frameHex(REQUEST)}`,
      'terminal>06',
      'pos>04',
    ]);
    expect(wire.summary('terminal')).toEqual([{ type: 'message', data: REQUEST }]);
    expect(wire.summary('pos')).toEqual([{ type: 'delivered' }]);
    expect(wire.now).toBe(0);
    for (const link of Object.values(wire.links)) {
      expect(link.state).toBe('idle');
      expect(link.sending).toBe(false);
      expect(link.nextDeadline()).toBeUndefined();
    }
  });

  it('terminal → POS: the same exchange the other way carries the 80-character answer', () => {
    const wire = new Wire();
    wire.send('terminal', ANSWER);
    wire.run();
    expect(wire.trace).toEqual([
      'terminal>05',
      'pos>06',
      `terminal>${frameHex(ANSWER)}`,
      'pos>06',
      'terminal>04',
    ]);
    expect(wire.summary('pos')).toEqual([{ type: 'message', data: ANSWER }]);
    expect(wire.summary('terminal')).toEqual([{ type: 'delivered' }]);
  });

  it('an answer sent from inside the message handler waits for the EOT, then goes as its own exchange', () => {
    const wire = new Wire();
    wire.onEvent = (side, event) => {
      if (side === 'terminal' && event.type === 'message') wire.send('terminal', ANSWER);
    };
    wire.send('pos', REQUEST);
    wire.run();
    expect(wire.trace.slice(4)).toEqual([
      'pos>04',
      'terminal>05',
      'pos>06',
      `terminal>${frameHex(ANSWER)}`,
      'pos>06',
      'terminal>04',
    ]);
    expect(wire.summary('pos')).toEqual([{ type: 'delivered' }, { type: 'message', data: ANSWER }]);
  });

  it('a NAKed frame (bad LRC on the line) is resent and then delivered once', () => {
    const wire = new Wire({
      tamper: (from, b, nth) => (from === 'pos' && nth === 1 ? corrupt(b) : b),
    });
    wire.send('pos', REQUEST);
    wire.run();
    expect(wire.trace.slice(2, 6)).toEqual([
      `pos>${frameHex(REQUEST)}~${hex(corrupt(encodeFrame(REQUEST)))}`,
      'terminal>15',
      `pos>${frameHex(REQUEST)}`,
      'terminal>06',
    ]);
    expect(wire.summary('terminal')).toEqual([
      { type: 'rejected', code: 'PROTOCOL_ERROR', field: 'lrc' },
      { type: 'message', data: REQUEST },
    ]);
    expect(wire.summary('pos')).toEqual([{ type: 'delivered' }]);
  });

  it("a frame NAKed on its first sending and on all 3 resends ends in 'nak-limit' after exactly 4 sendings, then EOT", () => {
    const wire = new Wire({ tamper: (from, b) => (from === 'pos' && isFrame(b) ? corrupt(b) : b) });
    wire.send('pos', REQUEST);
    wire.run();
    expect(wire.trace.filter((t) => t.startsWith(`pos>02`))).toHaveLength(4);
    expect(wire.trace.at(-1)).toBe('pos>04');
    expect(wire.summary('pos')).toEqual([
      { type: 'send-failed', reason: 'nak-limit', code: 'PROTOCOL_ERROR' },
    ]);
    expect(wire.summary('terminal').filter((e) => e.type === 'message')).toEqual([]);
    expect(wire.summary('terminal')).toHaveLength(4);
    expect(wire.links.terminal.state).toBe('idle');
  });

  it("no ACK to the ENQ within 2 s → 'no-answer-to-enq' (TERMINAL_UNREACHABLE) and EOT; not a millisecond before", () => {
    const pos = new ConcertLink({ role: 'pos' });
    expect(hex(pos.send(REQUEST, 1000).write)).toBe('05');
    expect(pos.nextDeadline()).toBe(1000 + CONCERT_ACK_TIMEOUT_MS);
    expect(pos.tick(2999)).toEqual({ write: new Uint8Array(), events: [] });
    const step = pos.tick(3000);
    expect(hex(step.write)).toBe('04');
    expect(summarize(step.events)).toEqual([
      { type: 'send-failed', reason: 'no-answer-to-enq', code: 'TERMINAL_UNREACHABLE' },
    ]);
    expect(pos.sending).toBe(false);
  });

  it("an ENQ NAKed is retried 3 times, then 'no-answer-to-enq'", () => {
    const pos = new ConcertLink({ role: 'pos' });
    pos.send(REQUEST, 0);
    const steps = [1, 2, 3, 4].map((t) => pos.push(bytes(NAK), t));
    expect(steps.map((s) => hex(s.write))).toEqual(['05', '05', '05', '04']);
    expect(summarize(steps[3]?.events ?? [])).toEqual([
      { type: 'send-failed', reason: 'no-answer-to-enq', code: 'TERMINAL_UNREACHABLE' },
    ]);
  });

  it("no ACK or NAK to the frame within 2 s → 'no-answer-to-frame' (OUTCOME_UNKNOWN) and EOT", () => {
    const pos = new ConcertLink({ role: 'pos' });
    pos.send(REQUEST, 0);
    expect(hex(pos.push(bytes(ACK), 10).write)).toBe(frameHex(REQUEST));
    expect(pos.state).toBe('frame-sent');
    const step = pos.tick(10 + CONCERT_ACK_TIMEOUT_MS);
    expect(hex(step.write)).toBe('04');
    expect(summarize(step.events)).toEqual([
      { type: 'send-failed', reason: 'no-answer-to-frame', code: 'OUTCOME_UNKNOWN' },
    ]);
  });

  it('an ACK arriving after the deadline does not rescue the exchange: the timeout is applied first', () => {
    const pos = new ConcertLink({ role: 'pos' });
    pos.send(REQUEST, 0);
    const step = pos.push(bytes(ACK), 2500);
    expect(hex(step.write)).toBe('04'); // EOT, and no frame
    expect(summarize(step.events)).toEqual([
      { type: 'send-failed', reason: 'no-answer-to-enq', code: 'TERMINAL_UNREACHABLE' },
    ]);
  });
});

describe('ConcertLink receiving', () => {
  const receiver = (role: ConcertRole = 'terminal', maxDataBytes?: number): ConcertLink => {
    const link = new ConcertLink(maxDataBytes === undefined ? { role } : { role, maxDataBytes });
    expect(hex(link.push(bytes(ENQ), 0).write)).toBe('06');
    return link;
  };

  it('a frame with a bad LRC is NAKed and reported, and the good resend is ACKed', () => {
    const link = receiver();
    const bad = link.push(bytes(STX, 'ABC', ETX, 0x00), 5);
    expect(hex(bad.write)).toBe('15');
    expect(summarize(bad.events)).toEqual([
      { type: 'rejected', code: 'PROTOCOL_ERROR', field: 'lrc' },
    ]);
    const good = link.push(encodeFrame('ABC'), 6);
    expect(hex(good.write)).toBe('06');
    expect(summarize(good.events)).toEqual([{ type: 'message', data: 'ABC' }]);
  });

  it('bytes before STX are ignored', () => {
    const link = receiver();
    const step = link.push(bytes(0x00, 'junk', ACK, NAK, 0xff, encodeFrame('OK')), 5);
    expect(hex(step.write)).toBe('06');
    expect(summarize(step.events)).toEqual([{ type: 'message', data: 'OK' }]);
  });

  it("a frame without ETX is dropped as 'rejected' (TIMEOUT) 2 s after the ENQ was ACKed, back to idle", () => {
    const link = receiver();
    expect(link.push(bytes(STX, 'ABCDEF'), 1500)).toEqual({ write: new Uint8Array(), events: [] });
    expect(link.tick(1999).events).toEqual([]);
    const step = link.tick(2000);
    expect(summarize(step.events)).toEqual([{ type: 'rejected', code: 'TIMEOUT', field: 'frame' }]);
    expect(step.write).toHaveLength(0);
    expect(link.state).toBe('idle');
    expect(link.buffered).toBe(0);
  });

  it('a frame past 80 data bytes is NAKed (FRAME_TOO_LARGE) and never held past the bound', () => {
    const link = receiver();
    const steps = [link.push(bytes(STX), 1)];
    for (let i = 0; i < 1000; i++) {
      steps.push(link.push(new Uint8Array(100).fill(0x41), 2));
      expect(link.buffered).toBeLessThanOrEqual(80);
    }
    // 100 000 equal bytes XOR to 0: the LRC is ETX alone, so only the length is wrong.
    const end = link.push(bytes(ETX, ETX), 3);
    expect(hex(end.write)).toBe('15');
    expect(summarize(end.events)).toEqual([
      { type: 'rejected', code: 'FRAME_TOO_LARGE', field: 'frame' },
    ]);
    expect(steps.every((s) => s.write.length === 0 && s.events.length === 0)).toBe(true);
    expect(link.buffered).toBe(0);
    expect(summarize(link.push(encodeFrame('x'.repeat(80)), 4).events)).toEqual([
      { type: 'message', data: 'x'.repeat(80) },
    ]);
  });

  it('a smaller maxDataBytes bounds both ways', () => {
    const link = receiver('pos', 10);
    expect(summarize(link.push(encodeFrame('x'.repeat(11), 11), 1).events)).toMatchObject([
      { code: 'FRAME_TOO_LARGE' },
    ]);
    expect(
      thrownBy(() => new ConcertLink({ role: 'pos', maxDataBytes: 10 }).send('x'.repeat(11), 0)),
    ).toMatchObject({ code: 'INVALID_INPUT', field: 'data' });
  });

  it.each([
    ['a non-ASCII byte', bytes('AB', 0xe9, 'C'), 'data'],
    ['a control byte', bytes('AB', ENQ, 'C'), 'data'],
    ['no data at all', bytes(), 'frame'],
  ])('a frame with %s but a good LRC is NAKed, naming %s', (_case, data, field) => {
    const link = receiver();
    const framed = bytes(
      STX,
      data,
      ETX,
      [...data, ETX].reduce((a, b) => a ^ b, 0),
    );
    const step = link.push(framed, 1);
    expect(hex(step.write)).toBe('15');
    expect(summarize(step.events)).toEqual([{ type: 'rejected', code: 'PROTOCOL_ERROR', field }]);
  });

  it('EOT inside a frame means the sender gave up: rejected, back to idle, no NAK', () => {
    const link = receiver();
    const step = link.push(bytes(STX, 'AB', EOT), 1);
    expect(step.write).toHaveLength(0);
    expect(summarize(step.events)).toEqual([
      { type: 'rejected', code: 'PROTOCOL_ERROR', field: 'frame' },
    ]);
    expect(link.state).toBe('idle');
  });

  it('the rejections never quote the frame data', () => {
    const link = receiver();
    const step = link.push(bytes(STX, 'SECRET', 0x01, ETX, 0x00), 1);
    expect(
      JSON.stringify(step.events.map((e) => (e.type === 'rejected' ? e.error.message : ''))),
    ).not.toContain('SECRET');
  });
});

describe('ConcertLink API', () => {
  it('send while a frame is being sent throws INTERNAL; bad data throws INVALID_INPUT', () => {
    const pos = new ConcertLink({ role: 'pos' });
    pos.send(REQUEST, 0);
    expect(thrownBy(() => pos.send(REQUEST, 1))).toMatchObject({ code: 'INTERNAL' });
    expect(thrownBy(() => new ConcertLink({ role: 'pos' }).send('caf\u00e9', 0))).toMatchObject({
      code: 'INVALID_INPUT',
      field: 'data',
    });
  });

  it.each([
    ['ackTimeoutMs', 0],
    ['frameTimeoutMs', 1.5],
    ['maxResends', -1],
    ['maxDataBytes', 1_000_000],
    ['role', 'cash'],
  ])('refuses the option %s = %j with INVALID_INPUT', (field, value) => {
    expect(thrownBy(() => new ConcertLink({ role: 'pos', [field]: value } as never))).toMatchObject(
      { code: 'INVALID_INPUT', field },
    );
  });
});
