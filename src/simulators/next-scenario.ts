import { z } from 'zod';
import { EcrError, invalid, isEcrError } from '../core/errors.js';
import { listenHttp, type HttpReply, type HttpRequestInfo } from '../transports/http-server.js';
import type { ListeningServer } from '../transports/serve.js';
import { SCENARIOS, scenarioFor, type ScenarioName } from './scenarios.js';

/** Most scenarios that may wait in a simulator's queue (`POST /next` is refused past it). */
export const MAX_QUEUED_SCENARIOS = 16;
/** Largest `POST /next` body (413 past it): `{"scenario":"drop-after-card"}` is 30 bytes. */
export const NEXT_BODY_MAX_BYTES = 1024;

/** The table's names, in table order, then `approve`. */
export const SCENARIO_NAMES: readonly ScenarioName[] = [
  ...Object.values(SCENARIOS).map((s) => s.name),
  'approve',
];

/** Past-tense names a test or an integrator may also write, and the scenario each stands for. */
export const SCENARIO_ALIASES: Readonly<Record<string, ScenarioName>> = {
  declined: 'decline',
  cancelled: 'cancel',
  approved: 'approve',
};

const ACCEPTED = [...SCENARIO_NAMES, ...Object.keys(SCENARIO_ALIASES)];
const ONE_OF = `one of ${ACCEPTED.join(', ')}`;

function canonical(name: string): ScenarioName | undefined {
  if (Object.hasOwn(SCENARIO_ALIASES, name)) return SCENARIO_ALIASES[name];
  return (SCENARIO_NAMES as readonly string[]).includes(name) ? (name as ScenarioName) : undefined;
}

/** The body of `POST /next`: `{"scenario": "<name>"}`, nothing else. */
export const NextScenarioBody = z.strictObject({
  scenario: z
    .string({
      error: (issue) =>
        issue.input === undefined ? `is required: ${ONE_OF}` : `must be a string: ${ONE_OF}`,
    })
    .refine((name) => canonical(name) !== undefined, { error: `must be ${ONE_OF}` })
    .transform((name) => canonical(name) as ScenarioName),
});

/**
 * Reads a `POST /next` body: JSON, an object with `scenario` naming a scenario of the table or
 * an alias. Anything else is an INVALID_INPUT naming the field (`body`, `scenario`, or the
 * unknown key) and the rule.
 */
export function parseNextScenario(text: string): ScenarioName {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw invalid('INVALID_INPUT', 'body', 'must be JSON: {"scenario": "<name>"}');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw invalid('INVALID_INPUT', 'body', 'must be a JSON object: {"scenario": "<name>"}');
  const result = NextScenarioBody.safeParse(json);
  if (result.success) return result.data.scenario;
  const issue = result.error.issues[0] as z.core.$ZodIssue;
  if (issue.code === 'unrecognized_keys')
    throw invalid('INVALID_INPUT', issue.keys.join(', '), 'is not a field of POST /next');
  throw invalid('INVALID_INPUT', issue.path.join('.') || 'body', issue.message);
}

/**
 * Scenarios queued for the next payments, whatever their amounts: each `push` appends, each
 * payment `take`s the oldest. Bounded by `capacity`. A simulator's several terminals may share
 * one (the eConduit simulator's do).
 */
export class NextScenarioQueue {
  private readonly queue: ScenarioName[] = [];

  constructor(readonly capacity = MAX_QUEUED_SCENARIOS) {}

  /** Appends `scenario`; INVALID_INPUT (field `scenario`) when `capacity` are already waiting. */
  push(scenario: ScenarioName): void {
    if (this.queue.length >= this.capacity)
      throw invalid(
        'INVALID_INPUT',
        'scenario',
        `at most ${this.capacity} scenarios may be queued; let payments take them or DELETE /next`,
      );
    this.queue.push(scenario);
  }

  /** Removes and returns the oldest queued scenario, if any. */
  take(): ScenarioName | undefined {
    return this.queue.shift();
  }

  /** What the next payment does: the oldest queued scenario (taken), else the amount's. */
  scenarioFor(amountMinor: number): ScenarioName {
    return this.take() ?? scenarioFor(amountMinor);
  }

  /** Empties the queue; returns how many were dropped. */
  clear(): number {
    return this.queue.splice(0).length;
  }

  queued(): readonly ScenarioName[] {
    return [...this.queue];
  }

  toJSON(): { queued: readonly ScenarioName[]; capacity: number } {
    return { queued: this.queued(), capacity: this.capacity };
  }
}

function jsonReply(status: number, value: unknown): HttpReply {
  return { status, contentType: 'application/json', body: `${JSON.stringify(value)}\n` };
}

function errorReply(error: EcrError): HttpReply {
  return jsonReply(error.httpStatus, { error: error.toJSON() });
}

/** `GET`, `POST` and `DELETE /next` on `queue`. */
export function nextScenarioRoute(queue: NextScenarioQueue, request: HttpRequestInfo): HttpReply {
  switch (request.method) {
    case 'GET':
    case 'HEAD':
      return jsonReply(200, queue);
    case 'POST':
      try {
        queue.push(parseNextScenario(request.body));
      } catch (error) {
        if (isEcrError(error)) return errorReply(error);
        throw error;
      }
      return jsonReply(200, queue);
    case 'DELETE': {
      const cleared = queue.clear();
      return jsonReply(200, { ...queue.toJSON(), cleared });
    }
    default:
      return {
        status: 405,
        contentType: 'text/plain; charset=utf-8',
        body: 'method: must be GET, POST or DELETE\n',
      };
  }
}

/**
 * A simulator's control port: `/next` on `queue`, and for GET the simulator's own `pages`
 * (status page, `/ledger`, …); other methods elsewhere are refused with 405.
 */
export function listenControl(options: {
  readonly host: string;
  readonly port: number;
  /** Name of the port setting, for the error when the port is taken. @default 'controlPort' */
  readonly field?: string;
  readonly queue: NextScenarioQueue;
  readonly pages: (path: string) => HttpReply;
}): Promise<ListeningServer> {
  return listenHttp({
    host: options.host,
    port: options.port,
    field: options.field ?? 'controlPort',
    bodyMethods: ['POST', 'DELETE'],
    maxBodyBytes: NEXT_BODY_MAX_BYTES,
    handle: (path, _query, request) => {
      if (path === '/next') return nextScenarioRoute(options.queue, request);
      if (request.method !== 'GET' && request.method !== 'HEAD')
        return {
          status: 405,
          contentType: 'text/plain; charset=utf-8',
          body: `method: must be GET (only /next takes POST and DELETE)\n`,
        };
      return options.pages(path);
    },
  });
}
