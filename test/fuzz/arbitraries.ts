import fc from 'fast-check';

/**
 * Input generators for the fuzz targets (`targets.ts`): arbitrary bytes and text, mutations of
 * valid frames, inputs past a documented bound, and cut points for feeding a framer in chunks.
 * Both kinds of input are handled as arrays of code units — bytes (0–255) or UTF-16 code units
 * (0–0xFFFF, lone surrogates included) — so one mutation engine serves both.
 */

/** Longest input the arbitrary and mutation families produce ("a few KB"). */
export const MAX_FUZZ_UNITS = 8 * 1024;
/** Longest input drawn unit by unit by fast-check (shrinks well); longer ones are bulk. */
const MAX_DRAWN_UNITS = 256;

export type UnitKind = 'bytes' | 'text';

const UNIT_MAX: Record<UnitKind, number> = { bytes: 0xff, text: 0xffff };

/** Units worth seeing often: delimiters and control bytes of every protocol here, UTF-8 leads. */
const SPECIAL_BYTES = [
  0x00, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0a, 0x0d, 0x15, 0x20, 0x22, 0x2c, 0x30, 0x31, 0x34, 0x39,
  0x3a, 0x3d, 0x5b, 0x5c, 0x5d, 0x7b, 0x7d, 0x7f, 0x80, 0xbf, 0xc0, 0xe2, 0xed, 0xef, 0xf0, 0xff,
];
/** The same for text, plus lone surrogates, a BOM, C1 controls and the replacement character. */
const SPECIAL_TEXT_UNITS = [
  ...SPECIAL_BYTES.filter((unit) => unit < 0x80),
  0x85,
  0xa0,
  0x2028,
  0xd800,
  0xdbff,
  0xdc00,
  0xdfff,
  0xfeff,
  0xfffd,
  0xffff,
];

/** Code units of a string, or bytes of a latin1 string (tokens for byte targets are so written). */
export function unitsOf(value: string | Uint8Array): number[] {
  if (typeof value !== 'string') return Array.from(value);
  const units = new Array<number>(value.length);
  for (let i = 0; i < value.length; i++) units[i] = value.charCodeAt(i);
  return units;
}

export function fromUnits(kind: 'bytes', units: readonly number[]): Uint8Array;
export function fromUnits(kind: 'text', units: readonly number[]): string;
export function fromUnits(kind: UnitKind, units: readonly number[]): Uint8Array | string;
export function fromUnits(kind: UnitKind, units: readonly number[]): Uint8Array | string {
  // Every unit of a byte input is 0–255 already (drawn so, flips masked).
  if (kind === 'bytes') return new Uint8Array(units);
  let text = '';
  // In slices: `String.fromCharCode(...units)` overflows the stack on long inputs.
  for (let at = 0; at < units.length; at += 4096)
    text += String.fromCharCode(...units.slice(at, at + 4096));
  return text;
}

/** One code unit: any value, a special one, or (text) printable ASCII and digits for realism. */
function unit(kind: UnitKind): fc.Arbitrary<number> {
  const special = kind === 'bytes' ? SPECIAL_BYTES : SPECIAL_TEXT_UNITS;
  return fc.oneof(
    { arbitrary: fc.integer({ min: 0, max: UNIT_MAX[kind] }), weight: 3 },
    { arbitrary: fc.constantFrom(...special), weight: 2 },
    { arbitrary: fc.integer({ min: 0x20, max: 0x7e }), weight: 3 },
  );
}

/** A token of the target's dictionary, or a few random units. */
function insertion(kind: UnitKind, dictionary: readonly number[][]): fc.Arbitrary<number[]> {
  const random = fc.array(unit(kind), { minLength: 1, maxLength: 8 });
  return dictionary.length === 0
    ? random
    : fc.oneof(
        random,
        fc.constantFrom(...dictionary).map((token) => [...token]),
      );
}

/** `piece` `times` over, in one array (`fill().flat()` is slow on 64 K units). */
function repeat(piece: readonly number[], times: number): number[] {
  // Pushed, not preallocated: `new Array(n)` past a few thousand is a slow dictionary array.
  const out: number[] = [];
  for (let t = 0; t < times; t++) for (const unit of piece) out.push(unit);
  return out;
}

/** xorshift32: bulk inputs are derived from a seed, so they cost little and still reproduce. */
function prng(seed: number): () => number {
  let state = seed | 0 || 0x2545f491;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
}

/** `length` units from `seed`: mostly noise, with runs of specials, printable text and tokens. */
function bulk(kind: UnitKind, length: number, seed: number, dictionary: readonly number[][]) {
  const next = prng(seed);
  const special = kind === 'bytes' ? SPECIAL_BYTES : SPECIAL_TEXT_UNITS;
  const units: number[] = [];
  while (units.length < length) {
    const roll = next() % 10;
    if (roll < 4) units.push(next() & UNIT_MAX[kind]);
    else if (roll < 6) units.push(special[next() % special.length] as number);
    else if (roll < 8) units.push(0x20 + (next() % 0x5f));
    else if (roll < 9 && dictionary.length > 0)
      units.push(...(dictionary[next() % dictionary.length] as number[]));
    else units.push(0x30 + (next() % 10));
  }
  return units.slice(0, length);
}

/** (a) Arbitrary input: short ones drawn unit by unit, longer ones up to a few KB in bulk. */
export function arbitraryUnits(
  kind: UnitKind,
  dictionary: readonly number[][],
): fc.Arbitrary<number[]> {
  const tokens = fc.array(insertion(kind, dictionary), { maxLength: 24 }).map((t) => t.flat());
  return fc.oneof(
    { arbitrary: fc.array(unit(kind), { maxLength: MAX_DRAWN_UNITS }), weight: 4 },
    { arbitrary: tokens, weight: 2 },
    {
      arbitrary: fc
        .tuple(fc.integer({ min: MAX_DRAWN_UNITS, max: 4096 }), fc.integer())
        .map(([length, seed]) => bulk(kind, length, seed, dictionary)),
      weight: 1,
    },
  );
}

type Mutation =
  | { readonly op: 'set'; readonly at: number; readonly value: number }
  | { readonly op: 'flip'; readonly at: number; readonly bit: number }
  | { readonly op: 'insert'; readonly at: number; readonly units: number[] }
  /** Inserted where a value starts (after `"`, `:`, `=`…): lands inside fields. */
  | { readonly op: 'insert-value'; readonly at: number; readonly units: number[] }
  | { readonly op: 'delete'; readonly at: number; readonly length: number }
  | { readonly op: 'truncate'; readonly at: number }
  | {
      readonly op: 'duplicate';
      readonly at: number;
      readonly length: number;
      readonly times: number;
    }
  | {
      readonly op: 'splice';
      readonly at: number;
      readonly other: readonly number[];
      readonly from: number;
    };

function mutation(
  kind: UnitKind,
  valid: fc.Arbitrary<number[]>,
  dictionary: readonly number[][],
): fc.Arbitrary<Mutation> {
  const at = fc.nat();
  return fc.oneof(
    fc.record({ op: fc.constant('set' as const), at, value: unit(kind) }),
    fc.record({
      op: fc.constant('flip' as const),
      at,
      bit: fc.integer({ min: 0, max: kind === 'bytes' ? 7 : 15 }),
    }),
    fc.record({ op: fc.constant('insert' as const), at, units: insertion(kind, dictionary) }),
    fc.record({
      op: fc.constant('insert-value' as const),
      at,
      units: insertion(kind, dictionary),
    }),
    fc.record({ op: fc.constant('delete' as const), at, length: fc.integer({ min: 1, max: 16 }) }),
    fc.record({ op: fc.constant('truncate' as const), at }),
    fc.record({
      op: fc.constant('duplicate' as const),
      at,
      length: fc.integer({ min: 1, max: 64 }),
      times: fc.integer({ min: 1, max: 64 }),
    }),
    // The other frame is drawn only for this mutation: valid frames cost the most to draw.
    fc.record({ op: fc.constant('splice' as const), at, other: valid, from: fc.nat() }),
  );
}

function apply(units: number[], m: Mutation, kind: UnitKind): number[] {
  const at = units.length === 0 ? 0 : m.at % (units.length + 1);
  switch (m.op) {
    case 'set':
      if (at < units.length) units[at] = m.value;
      return units;
    case 'flip':
      if (at < units.length) units[at] = ((units[at] as number) ^ (1 << m.bit)) & UNIT_MAX[kind];
      return units;
    case 'insert':
      units.splice(at, 0, ...m.units);
      return units;
    case 'insert-value':
      units.splice(insertionPoint(units, m.at, true), 0, ...m.units);
      return units;
    case 'delete':
      units.splice(at, m.length);
      return units;
    case 'truncate':
      return units.slice(0, at);
    case 'duplicate': {
      const piece = units.slice(at, at + m.length);
      const end = at + piece.length;
      return units.slice(0, end).concat(repeat(piece, m.times), units.slice(end));
    }
    case 'splice':
      // This frame's head, another frame's tail: two valid halves that do not belong together.
      return units.slice(0, at).concat(m.other.slice(m.from % (m.other.length + 1)));
  }
}

/**
 * (b) A valid frame, mutated 1–6 times: byte/unit set and bit flips, insertions (random units or
 * the target's tokens), deletions, truncation, duplication of a range, splicing with another
 * valid frame. Results past `MAX_FUZZ_UNITS` are cut there.
 */
export function mutatedUnits(
  kind: UnitKind,
  valid: fc.Arbitrary<number[]>,
  dictionary: readonly number[][],
): fc.Arbitrary<number[]> {
  return fc
    .tuple(valid, fc.array(mutation(kind, valid, dictionary), { minLength: 1, maxLength: 6 }))
    .map(([frame, mutations]) => {
      let units = frame.slice();
      for (const m of mutations) {
        units = apply(units, m, kind);
        if (units.length > MAX_FUZZ_UNITS) units = units.slice(0, MAX_FUZZ_UNITS);
      }
      return units;
    });
}

/** Size of `units` once encoded the way the target's bound counts it (bytes, or UTF-8 bytes). */
function encodedSize(kind: UnitKind, units: readonly number[]): number {
  return kind === 'bytes' ? units.length : Buffer.byteLength(fromUnits('text', units), 'utf8');
}

/** Units after which a value starts: a quote, `:`, `=`, `,`, a space. */
const VALUE_STARTS = new Set([0x22, 0x3a, 0x3d, 0x2c, 0x20]);

/** Where to insert: anywhere, or (half the time) where a value starts, so inside a field. */
function insertionPoint(units: readonly number[], at: number, atValue: boolean): number {
  if (atValue) {
    const starts: number[] = [];
    for (let i = 1; i <= units.length; i++)
      if (VALUE_STARTS.has(units[i - 1] as number)) starts.push(i);
    if (starts.length > 0) return starts[at % starts.length] as number;
  }
  return at % (units.length + 1);
}

/**
 * Inputs past a documented bound: a valid frame with a run of one token (a digit, a space, `[`,
 * a delimiter…) inserted somewhere — often where a value starts, so that one field grows — long
 * enough that the whole is 1 to 1,024 units past `bound`.
 */
export function oversizeUnits(
  kind: UnitKind,
  valid: fc.Arbitrary<number[]>,
  bound: number,
  dictionary: readonly number[][],
): fc.Arbitrary<number[]> {
  const filler = fc.oneof(
    fc.constantFrom(...[0x30, 0x31, 0x34, 0x20, 0x41, 0x5b, 0x7b, 0x22].map((u) => [u])),
    insertion(kind, dictionary),
  );
  return fc
    .tuple(valid, fc.nat(), fc.boolean(), filler, fc.integer({ min: 1, max: 1024 }))
    .map(([frame, at, atValue, fill, extra]) => {
      const size = Math.max(1, encodedSize(kind, fill));
      const missing = Math.max(0, bound - encodedSize(kind, frame)) + extra;
      const where = insertionPoint(frame, at, atValue);
      const run = repeat(fill, Math.ceil(missing / size));
      return frame.slice(0, where).concat(run, frame.slice(where));
    });
}

/** (c) Where to cut an input of `length` units into chunks: offsets, or every unit. */
export const cutPoints = fc.oneof(
  { arbitrary: fc.array(fc.nat(), { maxLength: 24 }), weight: 4 },
  { arbitrary: fc.constant('every-unit' as const), weight: 1 },
);

export type Cuts = number[] | 'every-unit';

/** `input` cut at `cuts` (offsets taken modulo its length; every unit up to 2,048 units). */
export function chunksOf(input: Uint8Array, cuts: Cuts): Uint8Array[] {
  if (cuts === 'every-unit' && input.length <= 2048)
    return Array.from({ length: input.length }, (_, i) => input.subarray(i, i + 1));
  const offsets = cuts === 'every-unit' ? [] : cuts.map((c) => c % (input.length + 1));
  const points = [...new Set(offsets)].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const point of [...points, input.length]) {
    chunks.push(input.subarray(from, point));
    from = point;
  }
  return chunks;
}
