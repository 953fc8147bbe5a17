import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { EcrError } from '../../src/core/errors.js';
import { parseRequest, requestIssueError } from '../../src/http/parse-request.js';

const Body = z.strictObject({
  reference: z.string().min(1).max(8, 'must be at most 8 characters'),
  amount: z.string().regex(/^\d+\.\d\d$/, 'digits with two decimals'),
  kind: z.enum(['sale', 'refund'], { error: 'must be sale or refund' }).optional(),
});

/** What `parseRequest` threw, as its JSON. */
function refusal(run: () => unknown) {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(EcrError);
    return (error as EcrError).toJSON();
  }
  throw new Error('expected a refusal');
}

describe('parseRequest: bad input names the field and the rule it broke', () => {
  it('passes good input through as the schema reads it', () => {
    expect(parseRequest(Body, { reference: 'INV-1', amount: '1.00' })).toEqual({
      reference: 'INV-1',
      amount: '1.00',
    });
  });

  it('a missing field "is required"; a wrong one states the rule', () => {
    expect(refusal(() => parseRequest(Body, { amount: '1.00' }))).toEqual({
      code: 'INVALID_INPUT',
      message: 'reference: is required',
      field: 'reference',
      rule: 'is required',
    });
    expect(refusal(() => parseRequest(Body, { reference: 'INV-1', amount: '1' }))).toMatchObject({
      code: 'INVALID_INPUT',
      field: 'amount',
      rule: 'digits with two decimals',
    });
    expect(
      refusal(() => parseRequest(Body, { reference: 'INV-123456', amount: '1.00' })),
    ).toMatchObject({ field: 'reference', rule: 'must be at most 8 characters' });
  });

  it("an unknown field of a strict object is named, unless the edge keeps zod's wording", () => {
    const input = { reference: 'INV-1', amount: '1.00', tip: '1' };
    expect(refusal(() => parseRequest(Body, input))).toMatchObject({
      field: 'tip',
      rule: 'is not a field of this request',
    });
    expect(
      refusal(() => parseRequest(Body, input, { whole: 'request', namesUnknownKeys: false })),
    ).toMatchObject({ code: 'INVALID_INPUT', field: 'request' });
  });

  it('the input as a whole is `body` unless named otherwise', () => {
    expect(refusal(() => parseRequest(Body, 'text'))).toMatchObject({ field: 'body' });
    expect(refusal(() => parseRequest(Body, 'text', { whole: 'request' }))).toMatchObject({
      field: 'request',
    });
  });

  it("the edge may choose the code per field, and keep its schema's message for a missing field", () => {
    const codeFor = (field: string) => (field === 'amount' ? 'INVALID_AMOUNT' : 'INVALID_INPUT');
    expect(
      refusal(() => parseRequest(Body, { reference: 'INV-1', amount: 'x' }, { codeFor })),
    ).toMatchObject({ code: 'INVALID_AMOUNT', field: 'amount' });
    expect(refusal(() => parseRequest(Body, { amount: '1.00' }, { codeFor }))).toMatchObject({
      code: 'INVALID_INPUT',
      field: 'reference',
    });
    const Note = z.strictObject({ note: z.string({ error: 'must be text' }) });
    expect(refusal(() => parseRequest(Note, {}, { missingIsRequired: false }))).toMatchObject({
      field: 'note',
      rule: 'must be text',
    });
    expect(refusal(() => parseRequest(Note, {}))).toMatchObject({
      field: 'note',
      rule: 'is required',
    });
  });

  it('requestIssueError turns one zod issue into the same error', () => {
    const result = Body.safeParse({ amount: '1.00' }, { reportInput: true });
    expect(result.success).toBe(false);
    const issue = result.error?.issues[0] as z.core.$ZodIssue;
    expect(requestIssueError(issue).toJSON()).toEqual({
      code: 'INVALID_INPUT',
      message: 'reference: is required',
      field: 'reference',
      rule: 'is required',
    });
  });
});
