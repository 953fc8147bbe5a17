import { CONCERT_CONTROL, encodeFrame } from '../../../src/protocols/concert/frame.js';
import {
  ConcertLink,
  type ConcertLinkEvent,
  type ConcertLinkOptions,
  type ConcertLinkStep,
  type ConcertRole,
} from '../../../src/protocols/concert/link.js';

/**
 * Two ConcertLinks, a POS and a terminal, on a simulated serial line with a fake clock: what one
 * writes is delivered to the other (optionally tampered with, and cut into chunks), deadlines
 * are ticked when the line is quiet. Nothing sleeps.
 */

export interface WireOptions {
  readonly link?: Omit<ConcertLinkOptions, 'role'>;
  /** Cuts each delivery into the chunks `push` receives. @default one chunk */
  readonly split?: (bytes: Uint8Array) => Uint8Array[];
  /** What the `nth` write (from 0) of `from` becomes on the line; empty drops it. */
  readonly tamper?: (from: ConcertRole, bytes: Uint8Array, nth: number) => Uint8Array;
}

/** An event without its error object, for comparisons. */
export type EventSummary =
  | { type: 'message'; data: string }
  | { type: 'delivered' }
  | { type: 'send-failed'; reason: string; code: string }
  | { type: 'rejected'; code: string; field: string | undefined };

export function summarize(events: readonly ConcertLinkEvent[]): EventSummary[] {
  return events.map((e) => {
    switch (e.type) {
      case 'message':
        return { type: 'message', data: e.data };
      case 'delivered':
        return { type: 'delivered' };
      case 'send-failed':
        return { type: 'send-failed', reason: e.reason, code: e.error.code };
      case 'rejected':
        return { type: 'rejected', code: e.error.code, field: e.error.field };
    }
  });
}

export const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** A 34-character request and an 80-character answer (no card number: the link does not care). */
export const REQUEST = `0100001000110978${' '.repeat(10)}A010B010`;
export const ANSWER = `010000010001${'APPROVED'.padEnd(55)}978          `;

/** Bytes from control bytes, latin1 text and byte arrays. */
export const bytes = (...parts: (number | string | Uint8Array)[]): Uint8Array =>
  Uint8Array.from(
    parts.flatMap((p) =>
      typeof p === 'number' ? [p] : typeof p === 'string' ? [...Buffer.from(p, 'latin1')] : [...p],
    ),
  );
export const frameHex = (data: string): string => hex(encodeFrame(data));
/** A copy of `frame` with its first data byte flipped: its LRC no longer matches. */
export const corrupt = (frame: Uint8Array): Uint8Array => {
  const copy = Uint8Array.from(frame);
  copy[1] = (copy[1] as number) ^ 0x01;
  return copy;
};
export const isFrame = (b: Uint8Array): boolean => b[0] === CONCERT_CONTROL.STX;

const other = (side: ConcertRole): ConcertRole => (side === 'pos' ? 'terminal' : 'pos');

export class Wire {
  now = 0;
  readonly links: Record<ConcertRole, ConcertLink>;
  readonly events: Record<ConcertRole, ConcertLinkEvent[]> = { pos: [], terminal: [] };
  /** Every write as it went on the line, in order: `pos>05`, `terminal>06`, … */
  readonly trace: string[] = [];
  /** Called on every event, with the side that emitted it (a simulated application). */
  onEvent: ((side: ConcertRole, event: ConcertLinkEvent) => void) | undefined;
  private readonly inFlight: { to: ConcertRole; bytes: Uint8Array }[] = [];
  private readonly writes: Record<ConcertRole, number> = { pos: 0, terminal: 0 };

  constructor(private readonly options: WireOptions = {}) {
    this.links = {
      pos: new ConcertLink({ ...options.link, role: 'pos' }),
      terminal: new ConcertLink({ ...options.link, role: 'terminal' }),
    };
  }

  send(side: ConcertRole, data: string): void {
    this.apply(side, this.links[side].send(data, this.now));
  }

  summary(side: ConcertRole): EventSummary[] {
    return summarize(this.events[side]);
  }

  /** Delivers bytes and ticks deadlines until the line is quiet and nothing is awaited. */
  run(limitMs = 60_000): this {
    for (let guard = 0; guard < 10_000; guard++) {
      const delivery = this.inFlight.shift();
      if (delivery !== undefined) {
        const chunks = this.options.split?.(delivery.bytes) ?? [delivery.bytes];
        for (const chunk of chunks) {
          this.apply(delivery.to, this.links[delivery.to].push(chunk, this.now));
        }
        continue;
      }
      const deadlines = (['pos', 'terminal'] as const).flatMap((side) => {
        const at = this.links[side].nextDeadline();
        return at === undefined ? [] : [{ side, at }];
      });
      if (deadlines.length === 0) return this;
      const next = deadlines.reduce((a, b) => (b.at < a.at ? b : a));
      if (next.at > limitMs) return this;
      this.now = Math.max(this.now, next.at);
      this.apply(next.side, this.links[next.side].tick(this.now));
    }
    throw new Error('the wire never settled');
  }

  private apply(side: ConcertRole, step: ConcertLinkStep): void {
    if (step.write.length > 0) {
      const bytes = this.options.tamper?.(side, step.write, this.writes[side]++) ?? step.write;
      this.trace.push(`${side}>${hex(step.write)}${bytes === step.write ? '' : `~${hex(bytes)}`}`);
      if (bytes.length > 0) this.inFlight.push({ to: other(side), bytes });
    }
    for (const event of step.events) {
      this.events[side].push(event);
      this.onEvent?.(side, event);
    }
  }
}

/** Splits bytes into chunks of the given sizes, used in turn (cyclically). */
export function splitter(sizes: readonly number[]): (bytes: Uint8Array) => Uint8Array[] {
  let turn = 0;
  return (bytes) => {
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < bytes.length;) {
      const size = Math.max(
        1,
        sizes.length === 0 ? bytes.length : (sizes[turn++ % sizes.length] as number),
      );
      chunks.push(bytes.subarray(at, at + size));
      at += size;
    }
    return chunks;
  };
}
