import { describe, expect, it } from 'vitest';
import type { DriverOutcome } from '../../src/core/transaction.js';
import {
  decode,
  encode,
  outcomeFromWire,
  outcomeToWire,
  RpcReply,
} from '../../src/gateway/cluster/wire.js';

/** A holder's status answer as it crosses NATS, byte for byte through the codec. */
function roundTrip(outcome: DriverOutcome): DriverOutcome {
  const bytes = encode({ ok: true, outcome: outcomeToWire(outcome) });
  const reply = decode(RpcReply, bytes, 'reply');
  if (!reply.ok || !('outcome' in reply)) throw new Error('not an outcome reply');
  return outcomeFromWire(reply.outcome);
}

describe('cluster wire: outcomes between nodes', () => {
  it("keeps a status answer's lastReference, so the asking node can still doubt it", () => {
    const failed: DriverOutcome = {
      outcome: 'failed',
      errorCode: 'TERMINAL_REFUSED',
      message: 'the terminal names another transaction as its last',
      details: { resolvedBy: 'status-query' },
      lastReference: 'INV-7',
    };
    expect(roundTrip(failed)).toEqual(failed);
  });

  it('carries it as details.lastReference, what nodes of the previous version read', () => {
    const wire = JSON.parse(
      new TextDecoder().decode(
        encode(outcomeToWire({ outcome: 'failed', lastReference: 'INV-7' })),
      ),
    ) as unknown;
    expect(wire).toEqual({ outcome: 'failed', details: { lastReference: 'INV-7' } });
  });

  it('reads a previous-version node answer into the typed field', () => {
    const bytes = new TextEncoder().encode(
      JSON.stringify({
        ok: true,
        outcome: {
          outcome: 'failed',
          details: { resolvedBy: 'status-query', lastReference: 'A1' },
        },
      }),
    );
    const reply = decode(RpcReply, bytes, 'reply');
    if (!reply.ok || !('outcome' in reply)) throw new Error('not an outcome reply');
    expect(outcomeFromWire(reply.outcome)).toEqual({
      outcome: 'failed',
      details: { resolvedBy: 'status-query' },
      lastReference: 'A1',
    });
  });

  it('leaves an outcome without one as it was', () => {
    const approved: DriverOutcome = { outcome: 'approved', approvalCode: '123456' };
    expect(roundTrip(approved)).toEqual(approved);
  });
});
