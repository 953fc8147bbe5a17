import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  JsonObjectFramer,
  SEMI_MAX_FRAME_BYTES,
  type FramerEvent,
} from '../../../src/protocols/semi/framer.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const frames = (events: FramerEvent[]): string[] =>
  events.flatMap((e) => (e.type === 'frame' ? [e.text] : []));

/** Feeds `input` cut at the given offsets and returns every event. */
function feed(input: Uint8Array, cuts: number[], framer = new JsonObjectFramer()): FramerEvent[] {
  const points = [...new Set(cuts.filter((c) => c > 0 && c < input.length))].sort((a, b) => a - b);
  const events: FramerEvent[] = [];
  let at = 0;
  for (const point of [...points, input.length]) {
    events.push(...framer.push(input.subarray(at, point)));
    at = point;
  }
  return events;
}

const SAMPLE =
  '{"TRAN_MODE":"1","TRAN_CODE":"1","AMOUNT":"100"}{"STATE":"0","MSG":"a } in \\"text\\" {"}\n{"EMOJI":"€😀","NESTED":{"A":"{"}}';

describe('JsonObjectFramer', () => {
  it('frames objects written back to back, with braces and escaped quotes inside strings, and newlines between', () => {
    expect(frames(feed(bytes(SAMPLE), []))).toEqual([
      '{"TRAN_MODE":"1","TRAN_CODE":"1","AMOUNT":"100"}',
      '{"STATE":"0","MSG":"a } in \\"text\\" {"}',
      '{"EMOJI":"€😀","NESTED":{"A":"{"}}',
    ]);
  });

  it('gives the same frames when the stream is split at every single offset, and byte by byte', () => {
    const input = bytes(SAMPLE);
    const whole = frames(feed(input, []));
    for (let cut = 1; cut < input.length; cut++) expect(frames(feed(input, [cut]))).toEqual(whole);
    expect(
      frames(
        feed(
          input,
          Array.from({ length: input.length }, (_, i) => i),
        ),
      ),
    ).toEqual(whole);
  });

  it('property: any sequence of objects, cut anywhere, decodes to the same objects', () => {
    const object = fc.dictionary(
      fc.string({ maxLength: 8 }),
      fc.oneof(fc.string({ maxLength: 20 }), fc.integer()),
      {
        maxKeys: 6,
      },
    );
    fc.assert(
      fc.property(
        fc.array(object, { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.boolean(),
        (objects, cuts, newlines) => {
          const input = bytes(objects.map((o) => JSON.stringify(o)).join(newlines ? '\n' : ''));
          const decoded = frames(
            feed(
              input,
              cuts.map((c) => c % (input.length + 1)),
            ),
          ).map((t) => JSON.parse(t) as unknown);
          expect(decoded).toEqual(objects);
        },
      ),
    );
  });

  it('garbage between objects is reported once per run and skipped to the next "{"', () => {
    const events = feed(bytes('{"A":"1"}junk]]"x{"B":"2"}  \r\n\t{"C":"3"}'), [3, 11]);
    expect(events.map((e) => e.type)).toEqual(['frame', 'garbage', 'frame', 'frame']);
    const garbage = events[1];
    expect(garbage?.type === 'garbage' && garbage.error).toMatchObject({
      code: 'PROTOCOL_ERROR',
      field: 'stream',
    });
  });

  it('an object over the bound is dropped whole, reported, and the next object still framed', () => {
    const framer = new JsonObjectFramer(1024);
    const big = JSON.stringify({ BIG: 'x'.repeat(5000) });
    const events = feed(bytes(`${big}{"NEXT":"1"}`), [100, 1500, 3000], framer);
    expect(events.map((e) => e.type)).toEqual(['oversize', 'frame']);
    expect(events[0]?.type === 'oversize' && events[0].error).toMatchObject({
      code: 'FRAME_TOO_LARGE',
      field: 'frame',
    });
    expect(frames(events)).toEqual(['{"NEXT":"1"}']);
  });

  it('property: garbage never throws and never holds more than the bound', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 30 }), (chunks) => {
        const framer = new JsonObjectFramer(512);
        for (const chunk of chunks) {
          framer.push(chunk);
          expect(framer.buffered).toBeLessThanOrEqual(512);
        }
      }),
    );
  });

  it('the default bound is 64 KiB', () => {
    expect(SEMI_MAX_FRAME_BYTES).toBe(65_536);
  });
});
