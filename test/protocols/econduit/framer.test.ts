import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EcrError } from '../../../src/core/errors.js';
import {
  ECONDUIT_MAX_FRAME_BYTES,
  ECONDUIT_TERMINATOR,
  EconduitFramer,
  encodeFrame,
  type EconduitFramerEvent,
} from '../../../src/protocols/econduit/framer.js';
import { thrownBy } from '../../helpers.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const latin1 = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'latin1'));
const frames = (events: EconduitFramerEvent[]): string[] =>
  events.flatMap((e) => (e.type === 'frame' ? [e.text] : []));
const types = (events: EconduitFramerEvent[]): string[] => events.map((e) => e.type);

/** Feeds `input` cut at the given offsets and returns every event. */
function feed(
  input: Uint8Array,
  cuts: number[],
  framer = new EconduitFramer(),
): EconduitFramerEvent[] {
  const points = [...new Set(cuts.filter((c) => c > 0 && c < input.length))].sort((a, b) => a - b);
  const events: EconduitFramerEvent[] = [];
  let at = 0;
  for (const point of [...points, input.length]) {
    events.push(...framer.push(input.subarray(at, point)));
    at = point;
  }
  return events;
}

/** Every offset inside `input`: byte-by-byte delivery. */
const everyByte = (input: Uint8Array): number[] =>
  Array.from({ length: input.length }, (_, i) => i);

/** Any Unicode scalar value (no lone surrogates), 1- to 4-byte UTF-8 all likely. */
const scalar = fc
  .oneof(
    fc.integer({ min: 0, max: 0x7f }),
    fc.integer({ min: 0x80, max: 0x7ff }),
    fc.integer({ min: 0x800, max: 0xd7ff }),
    fc.integer({ min: 0xe000, max: 0xffff }),
    fc.integer({ min: 0x10000, max: 0x10ffff }),
  )
  .map((c) => String.fromCodePoint(c));

const REGISTER =
  '{"Command":"Register","TerminalType":"T","TerminalModel":"M1","TerminalID":"29531204","SoftwareVersion":"v1.2","AckHeartbeat":"true"}';
const HEARTBEAT = '{"Command":"TerminalHeartbeat"}';

describe('EconduitFramer', () => {
  it('frames one message delivered in one chunk', () => {
    const framer = new EconduitFramer();
    expect(framer.push(bytes(`${REGISTER}\x04\x04`))).toEqual([{ type: 'frame', text: REGISTER }]);
    expect(framer.buffered).toBe(0);
  });

  it('frames several messages delivered in one chunk, and holds the unfinished one', () => {
    const framer = new EconduitFramer();
    const events = framer.push(bytes(`${REGISTER}\x04\x04${HEARTBEAT}\x04\x04OK\x04\x04{"Sta`));
    expect(frames(events)).toEqual([REGISTER, HEARTBEAT, 'OK']);
    expect(types(events)).toEqual(['frame', 'frame', 'frame']);
    expect(framer.buffered).toBe(5);
    expect(framer.push(bytes('tus":"OK"}\x04\x04'))).toEqual([
      { type: 'frame', text: '{"Status":"OK"}' },
    ]);
    expect(framer.buffered).toBe(0);
  });

  it('gives the same frames when the stream is split at every single offset, terminator halves included', () => {
    const input = bytes(`${REGISTER}\x04\x04${HEARTBEAT}\x04\x04a\x04b\x04\x04\x04\x04`);
    const whole = frames(feed(input, []));
    expect(whole).toEqual([REGISTER, HEARTBEAT, 'a\x04b', '']);
    for (let cut = 1; cut < input.length; cut++) {
      expect(frames(feed(input, [cut])), `cut at ${cut}`).toEqual(whole);
    }
    // Every pair of cuts too, on a shorter stream, so a terminator may sit alone in a chunk.
    const short = latin1('ab\x04\x04\x04c\x04\x04');
    const shortWhole = frames(feed(short, []));
    expect(shortWhole).toEqual(['ab', '\x04c']);
    for (let i = 1; i < short.length; i++) {
      for (let j = i; j < short.length; j++) {
        expect(frames(feed(short, [i, j])), `cuts at ${i}, ${j}`).toEqual(shortWhole);
      }
    }
  });

  it('frames the same when the stream arrives byte by byte', () => {
    const input = bytes(`${REGISTER}\x04\x04${HEARTBEAT}\x04\x04x\x04y\x04\x04`);
    const framer = new EconduitFramer();
    expect(frames(feed(input, everyByte(input), framer))).toEqual([REGISTER, HEARTBEAT, 'x\x04y']);
    expect(framer.buffered).toBe(0);
  });

  it('takes a single 0x04 inside a message as an ordinary byte', () => {
    expect(frames(feed(latin1('a\x04b\x04\x04'), []))).toEqual(['a\x04b']);
    expect(frames(feed(latin1('\x04a\x04\x04'), []))).toEqual(['\x04a']);
    // A held 0x04 followed by something else is still an ordinary byte.
    const framer = new EconduitFramer();
    expect(framer.push(latin1('a\x04'))).toEqual([]);
    expect(framer.buffered).toBe(2);
    expect(framer.push(latin1('b'))).toEqual([]);
    expect(framer.push(latin1('\x04\x04'))).toEqual([{ type: 'frame', text: 'a\x04b' }]);
  });

  it('with three 0x04 in a row the leftmost pair ends the message and the third starts the next', () => {
    expect(frames(feed(latin1('a\x04\x04\x04b\x04\x04'), []))).toEqual(['a', '\x04b']);
    expect(frames(feed(latin1('\x04\x04\x04\x04\x04'), []))).toEqual(['', '']);

    // In one chunk: the third 0x04 is held as the start of the next message.
    const one = new EconduitFramer();
    expect(one.push(latin1('a\x04\x04\x04'))).toEqual([{ type: 'frame', text: 'a' }]);
    expect(one.buffered).toBe(1);
    expect(one.push(latin1('\x04'))).toEqual([{ type: 'frame', text: '' }]);
    expect(one.buffered).toBe(0);

    // Terminator split after its first byte, the third 0x04 in the next chunk.
    const split = new EconduitFramer();
    expect(split.push(latin1('a\x04'))).toEqual([]);
    expect(split.push(latin1('\x04\x04'))).toEqual([{ type: 'frame', text: 'a' }]);
    expect(split.buffered).toBe(1);
    expect(split.push(latin1('b\x04\x04'))).toEqual([{ type: 'frame', text: '\x04b' }]);

    // Each 0x04 in its own chunk.
    const single = new EconduitFramer();
    const events = ['a', '\x04', '\x04', '\x04', 'b', '\x04', '\x04'].flatMap((c) =>
      single.push(latin1(c)),
    );
    expect(frames(events)).toEqual(['a', '\x04b']);
  });

  it('frames an empty message', () => {
    const framer = new EconduitFramer();
    expect(framer.push(latin1('\x04\x04'))).toEqual([{ type: 'frame', text: '' }]);
    expect(framer.push(latin1('\x04'))).toEqual([]);
    expect(framer.push(latin1('\x04'))).toEqual([{ type: 'frame', text: '' }]);
    expect(framer.buffered).toBe(0);
  });

  it('ignores empty chunks, even between the halves of a terminator', () => {
    const framer = new EconduitFramer();
    expect(framer.push(new Uint8Array(0))).toEqual([]);
    expect(framer.push(latin1('a\x04'))).toEqual([]);
    expect(framer.push(new Uint8Array(0))).toEqual([]);
    expect(framer.push(latin1('\x04'))).toEqual([{ type: 'frame', text: 'a' }]);
  });

  it('decodes UTF-8 characters split across chunks', () => {
    const text = '{"Name":"Zoë €5 😀 日本"}';
    const input = bytes(`${text}\x04\x04`);
    for (let cut = 1; cut < input.length; cut++) {
      expect(frames(feed(input, [cut])), `cut at ${cut}`).toEqual([text]);
    }
    expect(frames(feed(input, everyByte(input)))).toEqual([text]);
  });

  it('reads a Uint8Array view into a larger buffer by its own offset and length', () => {
    const backing = latin1('XXXhello\x04\x04YYY');
    const view = backing.subarray(3, 10);
    expect(new EconduitFramer().push(view)).toEqual([{ type: 'frame', text: 'hello' }]);
  });

  describe('bound', () => {
    const MAX = 64;

    function expectOversize(event: EconduitFramerEvent | undefined, max = MAX): void {
      expect(event?.type).toBe('oversize');
      const error = event?.type === 'oversize' ? event.error : undefined;
      expect(error).toBeInstanceOf(EcrError);
      expect(error).toMatchObject({ code: 'FRAME_TOO_LARGE', field: 'message' });
      expect(error?.message).toContain(String(max));
    }

    it('reports bytes without a terminator once, holds at most bound + 1, then frames again', () => {
      const framer = new EconduitFramer(MAX);
      const events: EconduitFramerEvent[] = [];
      for (let i = 0; i < 50; i++) {
        events.push(...framer.push(latin1('x'.repeat(37))));
        expect(framer.buffered).toBeLessThanOrEqual(MAX + 1);
      }
      // Single 0x04 bytes in the dropped stream do not end it.
      events.push(...framer.push(latin1('y\x04z')));
      expect(framer.buffered).toBeLessThanOrEqual(MAX + 1);
      expect(events).toHaveLength(1);
      expectOversize(events[0]);
      expect(framer.buffered).toBe(0);

      // The next terminator ends the dropped message silently; framing resumes.
      expect(framer.push(latin1('tail\x04\x04next\x04\x04'))).toEqual([
        { type: 'frame', text: 'next' },
      ]);
      expect(framer.push(latin1('x'.repeat(MAX)))).toEqual([]);
      expect(framer.push(latin1('\x04\x04'))).toEqual([{ type: 'frame', text: 'x'.repeat(MAX) }]);
    });

    it('ends a dropped message at a terminator split across chunks', () => {
      const framer = new EconduitFramer(MAX);
      const first = framer.push(latin1('x'.repeat(MAX + 10)));
      expect(first).toHaveLength(1);
      expectOversize(first[0]);
      expect(framer.push(latin1('abc\x04'))).toEqual([]);
      expect(framer.push(latin1('\x04ok\x04\x04'))).toEqual([{ type: 'frame', text: 'ok' }]);
    });

    it('an oversize message and its terminator in one chunk: one oversize, then the next frame', () => {
      const events = new EconduitFramer(MAX).push(
        latin1(`${'x'.repeat(MAX + 1)}\x04\x04ok\x04\x04`),
      );
      expect(types(events)).toEqual(['oversize', 'frame']);
      expectOversize(events[0]);
      expect(frames(events)).toEqual(['ok']);
    });

    it('accepts exactly maxFrameBytes and refuses maxFrameBytes + 1, however the bytes are cut', () => {
      for (const [length, expected] of [
        [MAX - 1, 'frame'],
        [MAX, 'frame'],
        [MAX + 1, 'oversize'],
        [MAX + 2, 'oversize'],
      ] as const) {
        const body = 'm'.repeat(length);
        const input = latin1(`${body}\x04\x04after\x04\x04`);
        // Whole, then every single cut: inside the body, between the body and the terminator,
        // between the two 0x04 bytes, and after the terminator.
        for (let cut = 0; cut < input.length; cut++) {
          const framer = new EconduitFramer(MAX);
          const events = feed(input, [cut], framer);
          expect(types(events), `length ${length}, cut at ${cut}`).toEqual([expected, 'frame']);
          if (expected === 'frame') expect(frames(events)).toEqual([body, 'after']);
          else {
            expectOversize(events[0]);
            expect(frames(events)).toEqual(['after']);
          }
          expect(framer.buffered).toBe(0);
        }
        // Byte by byte, and with the body, each 0x04 and the rest in separate chunks.
        expect(types(feed(input, everyByte(input), new EconduitFramer(MAX)))).toEqual([
          expected,
          'frame',
        ]);
        expect(
          types(feed(input, [length, length + 1, length + 2], new EconduitFramer(MAX))),
        ).toEqual([expected, 'frame']);
      }
    });

    it('holds maxFrameBytes + 1 when the last byte may be the first half of the terminator', () => {
      const framer = new EconduitFramer(MAX);
      expect(framer.push(latin1(`${'m'.repeat(MAX)}\x04`))).toEqual([]);
      expect(framer.buffered).toBe(MAX + 1);
      expect(framer.push(latin1('\x04'))).toEqual([{ type: 'frame', text: 'm'.repeat(MAX) }]);
      expect(framer.buffered).toBe(0);
    });

    it('counts bytes, not characters', () => {
      const text = '€'.repeat(MAX / 3); // 3 bytes each
      expect(bytes(text).length).toBeLessThanOrEqual(MAX);
      expect(frames(feed(bytes(`${text}\x04\x04`), [1], new EconduitFramer(MAX)))).toEqual([text]);
      const tooBig = '€'.repeat(MAX / 3 + 1);
      expect(types(feed(bytes(`${tooBig}\x04\x04`), [], new EconduitFramer(MAX)))).toEqual([
        'oversize',
      ]);
    });

    it('the default bound is 64 KiB', () => {
      expect(ECONDUIT_MAX_FRAME_BYTES).toBe(65_536);
      const body = 'z'.repeat(ECONDUIT_MAX_FRAME_BYTES);
      expect(frames(new EconduitFramer().push(latin1(`${body}\x04\x04`)))).toEqual([body]);
      expect(types(new EconduitFramer().push(latin1(`${body}z\x04\x04`)))).toEqual(['oversize']);
    });
  });

  describe('encodeFrame', () => {
    it('appends 0x04 0x04', () => {
      expect(ECONDUIT_TERMINATOR).toBe('\x04\x04');
      expect(encodeFrame(HEARTBEAT)).toBe(`${HEARTBEAT}\x04\x04`);
      expect(encodeFrame('')).toBe('\x04\x04');
      expect(frames(new EconduitFramer().push(bytes(encodeFrame('Zoë 😀'))))).toEqual(['Zoë 😀']);
    });

    it('refuses text containing 0x04 anywhere', () => {
      for (const text of ['a\x04b', '\x04', 'end\x04', '\x04start', 'x\x04\x04y']) {
        expect(
          thrownBy(() => encodeFrame(text)),
          JSON.stringify(text),
        ).toMatchObject({
          code: 'INVALID_INPUT',
          field: 'message',
        });
      }
    });
  });

  describe('properties', () => {
    const MAX = 256;
    /** Text without 0x04, at most MAX bytes once encoded as UTF-8. */
    const message = fc
      .string({ unit: scalar, maxLength: 80 })
      .map((s) => s.replaceAll('\x04', ''))
      .filter((s) => Buffer.byteLength(s, 'utf8') <= MAX);

    it('property: messages encoded, concatenated and cut anywhere frame back to the same messages', () => {
      fc.assert(
        fc.property(
          fc.array(message, { maxLength: 10 }),
          fc.array(fc.nat(), { maxLength: 30 }),
          (messages, cuts) => {
            const input = bytes(messages.map(encodeFrame).join(''));
            const framer = new EconduitFramer(MAX);
            const events = feed(
              input,
              cuts.map((c) => c % (input.length + 1)),
              framer,
            );
            expect(types(events).every((t) => t === 'frame')).toBe(true);
            expect(frames(events)).toEqual(messages);
            expect(framer.buffered).toBe(0);
          },
        ),
        { numRuns: 1500 },
      );
    });

    it('property: arbitrary bytes in arbitrary chunks never throw and never hold more than bound + 1', () => {
      // Bytes rich in 0x04 so terminators, split terminators and triples all occur.
      const byte = fc.oneof(
        { arbitrary: fc.constant(0x04), weight: 2 },
        { arbitrary: fc.integer({ min: 0, max: 255 }), weight: 3 },
      );
      const chunk = fc.oneof(
        fc.array(byte, { maxLength: 12 }).map((a) => Uint8Array.from(a)),
        fc.uint8Array({ maxLength: 200 }),
      );
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 64 }),
          fc.array(chunk, { maxLength: 40 }),
          (max, chunks) => {
            const framer = new EconduitFramer(max);
            for (const piece of chunks) {
              const events = framer.push(piece);
              for (const event of events) {
                expect(['frame', 'oversize']).toContain(event.type);
                if (event.type === 'frame') {
                  expect(Buffer.byteLength(event.text, 'utf8')).toBeLessThanOrEqual(3 * max);
                } else {
                  expect(event.error).toMatchObject({ code: 'FRAME_TOO_LARGE', field: 'message' });
                }
              }
              expect(framer.buffered).toBeLessThanOrEqual(max + 1);
            }
          },
        ),
        { numRuns: 1500 },
      );
    });

    it('property: framing does not depend on how the bytes are cut', () => {
      const byte = fc.oneof(
        { arbitrary: fc.constant(0x04), weight: 1 },
        { arbitrary: fc.constantFrom(0x61, 0x62, 0xe2, 0x82, 0xac), weight: 2 },
      );
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 16 }),
          fc.array(byte, { maxLength: 80 }).map((a) => Uint8Array.from(a)),
          fc.array(fc.nat(), { maxLength: 20 }),
          (max, input, cuts) => {
            const whole = feed(input, [], new EconduitFramer(max));
            const cut = feed(
              input,
              cuts.map((c) => c % (input.length + 1)),
              new EconduitFramer(max),
            );
            expect(cut.map((e) => (e.type === 'frame' ? e.text : e.type))).toEqual(
              whole.map((e) => (e.type === 'frame' ? e.text : e.type)),
            );
          },
        ),
        { numRuns: 1000 },
      );
    });
  });
});
