import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { EcrError } from '../../src/core/errors.js';
import { redactPans } from '../../src/core/pan.js';
import {
  arbitraryUnits,
  chunksOf,
  cutPoints,
  fromUnits,
  mutatedUnits,
  oversizeUnits,
  unitsOf,
  type Cuts,
} from './arbitraries.js';
import { FuzzInvariantError } from './harness.js';
import { FUZZ_TARGETS, type FuzzTarget } from './targets.js';

/**
 * Fuzzing (issue 9): every target of `targets.ts` under arbitrary input, mutated valid frames,
 * input past its documented bound and, for framers, the input in random chunks. A case passes
 * when the target returns or throws an EcrError with one of its codes, within CASE_LIMIT_MS;
 * each family keeps the heap's growth under HEAP_GROWTH_LIMIT_BYTES.
 *
 * `npm test` runs 2,000 cases per target; `npm run fuzz` 100,000. A failure prints the seed and
 * path to replay it and the input as code units (never as text: a card number in it must not
 * reach a log).
 */

function envInteger(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value)) throw new Error(`${name} must be an integer, got "${raw}"`);
  return value;
}

/**
 * Cases per target, shared out among its families: 1% past the bound (20 to 250), the rest
 * split between arbitrary input, mutated frames and (framers) chunked feeding.
 */
const RUNS = envInteger('ECR_BRIDGE_FUZZ_RUNS', 2_000);
/** Base seed; each family's own is derived from it and the family's name. */
const SEED = envInteger('ECR_BRIDGE_FUZZ_SEED', 0x0ec4b41d);
/**
 * Longest one case may take, plus CASE_MS_PER_UNIT per unit of input: a decoder past it is
 * superlinear somewhere (or hangs). Generous: the suite runs beside other test files.
 */
const CASE_LIMIT_MS = envInteger('ECR_BRIDGE_FUZZ_CASE_MS', 1_000);
const CASE_MS_PER_UNIT = 0.05;
/** A family that does not end within this is a failure (a hang that slipped past the case check). */
const FAMILY_BUDGET_MS = envInteger('ECR_BRIDGE_FUZZ_BUDGET_MS', Math.max(120_000, RUNS * 12));
/** Heap growth allowed over one family, measured after a full garbage collection. */
const HEAP_GROWTH_LIMIT_BYTES = 64 * 1024 * 1024;

// A full collection before and after each family, so heap growth means retained memory.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  gc();
  return process.memoryUsage().heapUsed;
}

/** FNV-1a, to derive a family's seed from the base seed. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h | 0;
}

/** A message fit for a log: card numbers masked, long digit runs too, bounded. */
function safeText(text: string): string {
  return redactPans(text.slice(0, 1_000))
    .replace(/\d{13,}/g, (run) => '#'.repeat(run.length))
    .slice(0, 300);
}

/** `-t` takes a pattern: target names hold parentheses. */
function regexEscape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * An input as code units (bytes or UTF-16), comma-separated, runs as `unit*count`: replayable
 * and never a card number (no two digits of the input end up side by side).
 */
function describeUnits(input: Uint8Array | string): string {
  const units = unitsOf(input);
  const parts: string[] = [];
  for (let i = 0; i < units.length && parts.length < 1_000;) {
    let j = i + 1;
    while (j < units.length && units[j] === units[i]) j++;
    parts.push(j - i >= 4 ? `${units[i]}*${j - i}` : units.slice(i, j).join(','));
    i = j;
  }
  const shown = parts.join(',');
  const cut = parts.length >= 1_000 ? ',…' : '';
  return `${typeof input === 'string' ? 'text' : 'bytes'} of ${units.length} units: [${shown}${cut}]`;
}

/** A throw that is not a typed rejection becomes the failure, with what was thrown. */
function typedRejection(target: FuzzTarget, error: unknown): void {
  if (error instanceof FuzzInvariantError) throw error;
  if (!(error instanceof EcrError)) {
    const name = error instanceof Error ? error.name : typeof error;
    const message = error instanceof Error ? error.message : String(error);
    throw new FuzzInvariantError(`threw ${name}, not an EcrError: ${safeText(message)}`, {
      cause: error,
    });
  }
  if (!target.codes.includes(error.code))
    throw new FuzzInvariantError(
      `rejected with ${error.code}, not one of ${target.codes.join(', ')}`,
    );
}

function timed(started: number, units: number): void {
  const elapsed = performance.now() - started;
  const limit = CASE_LIMIT_MS + units * CASE_MS_PER_UNIT;
  if (elapsed > limit) {
    const took = `one case of ${units} units took ${Math.round(elapsed)} ms`;
    throw new FuzzInvariantError(`${took} (limit ${Math.round(limit)} ms)`);
  }
}

interface Family<T> {
  readonly name: string;
  readonly runs: number;
  readonly arbitrary: fc.Arbitrary<T>;
  /** One case: the target's call; may be async when the target is. */
  readonly call: (value: T) => unknown;
  /** Size of a case, in units, for its time limit. */
  readonly size: (value: T) => number;
  readonly describe: (value: T) => string;
}

function runFamily<T>(target: FuzzTarget, family: Family<T>, async: boolean): void | Promise<void> {
  const seed = (SEED ^ hash(`${target.name} ${family.name}`)) | 0;
  const parameters: fc.Parameters<[T]> = {
    numRuns: family.runs,
    seed,
    plugins: [
      fc.interruptAfterTimeLimit(FAMILY_BUDGET_MS, { failOnInterrupt: true }),
    ] as NonNullable<fc.Parameters<[T]>['plugins']>,
  };
  const report = (details: fc.RunDetails<[T]>): void => {
    if (!details.failed) return;
    const [value] = details.counterexample ?? [];
    const error = details.errorInstance;
    const lines = [
      `${target.name} — ${family.name}: ${
        details.interrupted
          ? `not done within ${FAMILY_BUDGET_MS} ms (${details.numRuns} cases run)`
          : error instanceof Error
            ? `${error.name}: ${safeText(error.message)}`
            : safeText(String(error))
      }`,
      `  seed ${details.seed} (base ECR_BRIDGE_FUZZ_SEED=${SEED}), path "${details.counterexamplePath ?? ''}", after ${details.numRuns} cases`,
      ...(value === undefined ? [] : [`  input: ${family.describe(value)}`]),
      `  replay: ECR_BRIDGE_FUZZ_SEED=${SEED} npx vitest run test/fuzz -t "${regexEscape(`${target.name} ${family.name}`)}"`,
    ];
    expect.fail(lines.join('\n'));
  };
  if (!async) {
    const property = fc.property(family.arbitrary, (value) => {
      const started = performance.now();
      try {
        family.call(value);
      } catch (error) {
        typedRejection(target, error);
      }
      timed(started, family.size(value));
    });
    report(fc.check(property, parameters) as fc.RunDetails<[T]>);
    return;
  }
  const property = fc.asyncProperty(family.arbitrary, async (value) => {
    const started = performance.now();
    try {
      await family.call(value);
    } catch (error) {
      typedRejection(target, error);
    }
    timed(started, family.size(value));
  });
  return fc.check(property, parameters).then((details) => report(details as fc.RunDetails<[T]>));
}

/** The names of the families `families` builds for `target`, known before any is built. */
function familyNames(target: FuzzTarget): string[] {
  return [
    'arbitrary input',
    'mutated valid frames',
    ...(target.maxInputBytes === undefined ? [] : [`past the ${target.maxInputBytes}-byte bound`]),
    ...(target.kind === 'bytes' && target.feed !== undefined ? ['fed in random chunks'] : []),
  ];
}

/** The families a target is fuzzed with, sharing RUNS cases out. */
function families(target: FuzzTarget): Family<unknown>[] {
  const kind = target.kind;
  const dictionary = (target.dictionary ?? []).map(unitsOf);
  // A corpus drawn once (drawing a valid frame costs more than running most decoders), from
  // which the mutations start; it grows with RUNS, up to 5,000 frames.
  const corpus = fc
    .sample(target.valid() as fc.Arbitrary<Uint8Array | string>, {
      numRuns: Math.min(5_000, Math.max(200, Math.ceil(RUNS / 20))),
      seed: (SEED ^ hash(`${target.name} corpus`)) | 0,
    })
    .map(unitsOf);
  const valid = fc.nat({ max: corpus.length - 1 }).map((i) => corpus[i] as number[]);
  const run = (units: number[]) =>
    (target.run as (input: Uint8Array | string) => unknown)(fromUnits(kind, units));
  const describeInput = (units: number[]) => describeUnits(fromUnits(kind, units));
  const size = (units: number[]) => units.length;
  const arbitrary = arbitraryUnits(kind, dictionary);
  const mutated = mutatedUnits(kind, valid, dictionary);
  const oversize =
    target.maxInputBytes === undefined
      ? undefined
      : oversizeUnits(kind, valid, target.maxInputBytes, dictionary);
  const feed = target.kind === 'bytes' ? target.feed?.bind(target) : undefined;

  // Past the bound a case is up to 64 KiB (a hundred times the others' cost): 1%, 20 to 250.
  const oversizeRuns =
    oversize === undefined ? 0 : Math.min(250, Math.max(20, Math.ceil(RUNS / 100)));
  const rest = Math.max(0, RUNS - oversizeRuns);
  const chunkedRuns = feed === undefined ? 0 : Math.floor(rest * 0.3);
  const arbitraryRuns = Math.floor((rest - chunkedRuns) / 2);
  const mutatedRuns = rest - chunkedRuns - arbitraryRuns;

  const list: Family<unknown>[] = [
    {
      name: 'arbitrary input',
      runs: arbitraryRuns,
      arbitrary,
      call: run,
      size,
      describe: describeInput,
    } as Family<unknown>,
    {
      name: 'mutated valid frames',
      runs: mutatedRuns,
      arbitrary: mutated,
      call: run,
      size,
      describe: describeInput,
    } as Family<unknown>,
  ];
  if (oversize !== undefined) {
    list.push({
      name: `past the ${target.maxInputBytes}-byte bound`,
      runs: oversizeRuns,
      arbitrary: oversize,
      call: run,
      size,
      describe: describeInput,
    } as Family<unknown>);
  }
  if (feed !== undefined) {
    const splitInvariant = target.kind === 'bytes' && target.splitInvariant === true;
    list.push({
      name: 'fed in random chunks',
      runs: chunkedRuns,
      // Inputs past the bound are a hundredth here too: they cost a thousand times more.
      arbitrary: fc.tuple(
        fc.oneof(
          { arbitrary, weight: 50 },
          { arbitrary: mutated, weight: 50 },
          ...(oversize === undefined ? [] : [{ arbitrary: oversize, weight: 1 }]),
        ),
        cutPoints,
      ),
      call: ([units, cuts]: [number[], Cuts]) => {
        const input = fromUnits('bytes', units);
        const chunked = feed(chunksOf(input, cuts));
        if (splitInvariant) {
          const whole = feed([input]);
          if (JSON.stringify(chunked) !== JSON.stringify(whole))
            throw new FuzzInvariantError(
              'fed in chunks, the framer gave another result than whole',
            );
        }
      },
      size: ([units]: [number[], Cuts]) => units.length,
      describe: ([units, cuts]: [number[], Cuts]) =>
        `${describeInput(units)}, cut at ${cuts === 'every-unit' ? 'every unit' : `[${cuts.join(',')}]`}`,
    } as Family<unknown>);
  }
  return list;
}

describe.each(FUZZ_TARGETS.map((target) => [target.name, target] as const))(
  'fuzz: %s',
  (_, target) => {
    const empty = target.kind === 'bytes' ? new Uint8Array(0) : '';
    let probe: unknown;
    try {
      probe = (target.run as (input: Uint8Array | string) => unknown)(empty);
    } catch {
      probe = undefined;
    }
    const async = typeof (probe as { then?: unknown } | undefined)?.then === 'function';
    if (async) (probe as Promise<unknown>).catch(() => undefined);

    // Built when the target's turn comes and dropped after it: twenty corpora held at once
    // (built while collecting) made garbage collection, and so every case, several times slower.
    let built: Map<string, Family<unknown>> | undefined;
    const family = (name: string): Family<unknown> => {
      built ??= new Map(families(target).map((f) => [f.name, f]));
      const found = built.get(name);
      if (found === undefined) throw new Error(`no family "${name}" for ${target.name}`);
      return found;
    };
    afterAll(() => {
      built = undefined;
    });

    for (const name of familyNames(target)) {
      it(
        `${name}: returns or throws a typed EcrError, in bounded time and memory`,
        async () => {
          const chosen = family(name);
          const before = heapAfterGc();
          await runFamily(target, chosen, async);
          const growth = heapAfterGc() - before;
          expect(growth, `heap grew by ${growth} bytes`).toBeLessThan(HEAP_GROWTH_LIMIT_BYTES);
        },
        FAMILY_BUDGET_MS + 60_000,
      );
    }

    it(`most valid frames are accepted (the mutations start inside the format)`, () => {
      const samples = fc.sample(target.valid() as fc.Arbitrary<Uint8Array | string>, {
        numRuns: 200,
        seed: SEED,
      });
      let accepted = 0;
      for (const sample of samples) {
        try {
          const result = (target.run as (input: Uint8Array | string) => unknown)(sample);
          if (typeof (result as { then?: unknown } | undefined)?.then === 'function') return;
          accepted++;
        } catch (error) {
          typedRejection(target, error);
        }
      }
      expect(accepted, `${accepted} of ${samples.length} valid frames accepted`).toBeGreaterThan(
        samples.length / 2,
      );
    });
  },
);
