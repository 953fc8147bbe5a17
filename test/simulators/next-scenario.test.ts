import { describe, expect, it } from 'vitest';
import {
  MAX_QUEUED_SCENARIOS,
  nextScenarioRoute,
  NextScenarioQueue,
  parseNextScenario,
  SCENARIO_ALIASES,
  SCENARIO_NAMES,
} from '../../src/simulators/next-scenario.js';
import { SCENARIOS } from '../../src/simulators/scenarios.js';
import { thrownBy } from '../helpers.js';

describe('NextScenarioQueue', () => {
  it('hands queued scenarios out oldest first, one per payment, then the amount decides again', () => {
    const queue = new NextScenarioQueue();
    queue.push('decline');
    queue.push('cancel');
    expect(queue.queued()).toEqual(['decline', 'cancel']);
    // 20.00 would approve, 20.51 would decline: the queue wins while it has something.
    expect(queue.scenarioFor(2000)).toBe('decline');
    expect(queue.scenarioFor(2000)).toBe('cancel');
    expect(queue.scenarioFor(2000)).toBe('approve');
    expect(queue.scenarioFor(2051)).toBe('decline');
    expect(queue.queued()).toEqual([]);
  });

  it('a queued approve overrides an amount that would decline', () => {
    const queue = new NextScenarioQueue();
    queue.push('approve');
    expect(queue.scenarioFor(2051)).toBe('approve');
    expect(queue.scenarioFor(2051)).toBe('decline');
  });

  it(`holds at most ${MAX_QUEUED_SCENARIOS} by default; one more is refused naming scenario, and the queue is unchanged`, () => {
    const queue = new NextScenarioQueue();
    for (let i = 0; i < MAX_QUEUED_SCENARIOS; i++) queue.push('busy');
    const error = thrownBy(() => queue.push('decline'));
    expect(error).toMatchObject({ code: 'INVALID_INPUT', field: 'scenario' });
    expect(error.message).toMatch(/at most 16 scenarios may be queued/);
    expect(queue.queued()).toHaveLength(MAX_QUEUED_SCENARIOS);
    expect(queue.queued()).not.toContain('decline');
  });

  it('clear empties the queue and says how many it dropped', () => {
    const queue = new NextScenarioQueue(3);
    queue.push('decline');
    queue.push('partial');
    expect(queue.clear()).toBe(2);
    expect(queue.take()).toBeUndefined();
    expect(queue.toJSON()).toEqual({ queued: [], capacity: 3 });
  });
});

describe('parseNextScenario', () => {
  it('takes every name of the table and approve', () => {
    expect(SCENARIO_NAMES).toEqual([...Object.values(SCENARIOS).map((s) => s.name), 'approve']);
    for (const name of SCENARIO_NAMES)
      expect(parseNextScenario(JSON.stringify({ scenario: name }))).toBe(name);
  });

  it('takes the past-tense aliases declined, cancelled, approved as their scenarios', () => {
    expect(parseNextScenario('{"scenario":"declined"}')).toBe('decline');
    expect(parseNextScenario('{"scenario":"cancelled"}')).toBe('cancel');
    expect(parseNextScenario('{"scenario":"approved"}')).toBe('approve');
    expect(Object.keys(SCENARIO_ALIASES)).toEqual(['declined', 'cancelled', 'approved']);
  });

  it('an unknown name is refused naming scenario and listing every valid name', () => {
    const error = thrownBy(() => parseNextScenario('{"scenario":"rejected"}'));
    expect(error).toMatchObject({ code: 'INVALID_INPUT', field: 'scenario' });
    for (const name of [...SCENARIO_NAMES, 'declined', 'cancelled', 'approved'])
      expect(error.rule).toContain(name);
  });

  it.each([
    ['not JSON', 'scenario=declined', 'body', /must be JSON/],
    ['empty', '', 'body', /must be JSON/],
    ['an array', '["declined"]', 'body', /must be a JSON object/],
    ['a bare string', '"declined"', 'body', /must be a JSON object/],
    ['scenario a number', '{"scenario":51}', 'scenario', /must be a string: one of decline/],
    ['scenario null', '{"scenario":null}', 'scenario', /must be a string/],
    ['scenario missing', '{}', 'scenario', /is required: one of decline/],
    ['an unknown key', '{"scenario":"declined","count":2}', 'count', /is not a field/],
  ])('%s is refused naming %s', (_what, body, field, rule) => {
    const error = thrownBy(() => parseNextScenario(body));
    expect(error).toMatchObject({ code: 'INVALID_INPUT', field });
    expect(error.message).toMatch(rule);
  });
});

describe('nextScenarioRoute (the /next route, without a socket)', () => {
  it('POST appends, GET shows the queue, DELETE clears it: JSON with the capacity', () => {
    const queue = new NextScenarioQueue();
    const post = nextScenarioRoute(queue, { method: 'POST', body: '{"scenario":"declined"}' });
    expect(post.status).toBe(200);
    expect(post.contentType).toBe('application/json');
    expect(JSON.parse(post.body)).toEqual({ queued: ['decline'], capacity: MAX_QUEUED_SCENARIOS });
    nextScenarioRoute(queue, { method: 'POST', body: '{"scenario":"slow-approve"}' });
    expect(JSON.parse(nextScenarioRoute(queue, { method: 'GET', body: '' }).body)).toEqual({
      queued: ['decline', 'slow-approve'],
      capacity: MAX_QUEUED_SCENARIOS,
    });
    const cleared = nextScenarioRoute(queue, { method: 'DELETE', body: '' });
    expect(JSON.parse(cleared.body)).toEqual({
      queued: [],
      capacity: MAX_QUEUED_SCENARIOS,
      cleared: 2,
    });
    expect(queue.queued()).toEqual([]);
  });

  it('a bad body is 400 with the error as JSON, and a full queue is 400 naming scenario', () => {
    const queue = new NextScenarioQueue(1);
    const bad = nextScenarioRoute(queue, { method: 'POST', body: '{"scenario":"nope"}' });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body)).toMatchObject({
      error: { code: 'INVALID_INPUT', field: 'scenario' },
    });
    expect(nextScenarioRoute(queue, { method: 'POST', body: '{"scenario":"busy"}' }).status).toBe(
      200,
    );
    const full = nextScenarioRoute(queue, { method: 'POST', body: '{"scenario":"busy"}' });
    expect(full.status).toBe(400);
    expect(JSON.parse(full.body)).toMatchObject({
      error: {
        code: 'INVALID_INPUT',
        field: 'scenario',
        rule: expect.stringMatching(/at most 1 /),
      },
    });
    expect(queue.queued()).toEqual(['busy']);
  });

  it('another method is 405', () => {
    const reply = nextScenarioRoute(new NextScenarioQueue(), { method: 'PUT', body: '' });
    expect(reply.status).toBe(405);
  });
});
