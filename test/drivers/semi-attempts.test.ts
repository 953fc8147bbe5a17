import { createServer, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { StatusTarget } from '../../src/core/driver.js';
import { SemiDriver } from '../../src/drivers/semi.js';
import { JsonObjectFramer } from '../../src/protocols/semi/framer.js';

// A reference names every attempt of one payment (ARCHITECTURE.md invariant 1), and SEMI's status
// query is answered by MER_TXN_ID: a terminal that does not echo REQ_TXN_ID (the vendor's
// published answers carry none) gives an answer that may be about an earlier attempt under the
// same reference. Read as the current attempt's, an earlier decline would let the POS charge
// again. A raw TCP terminal answers every status query with `answer`.

type Fields = Record<string, string>;
const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function terminalAnswering(answer: Fields): Promise<SemiDriver> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    const framer = new JsonObjectFramer();
    socket.on('data', (chunk: Buffer) => {
      for (const event of framer.push(chunk))
        if (event.type === 'frame') socket.write(JSON.stringify(answer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  const driver = new SemiDriver({
    url: `tcp://127.0.0.1:${(server.address() as AddressInfo).port}`,
  });
  cleanups.push(() => driver.close());
  return driver;
}

const DECLINED: Fields = { TRAN_CODE: '9', STATE: '-1', MER_TXN_ID: 'R1', TXN_ID: 'T-1' };
const APPROVED: Fields = {
  TRAN_CODE: '9',
  STATE: '0',
  MER_TXN_ID: 'R1',
  TXN_ID: 'T-2',
  AMOUNT: '1000',
  CODE: '123456',
};
// Long ago: the card step is surely over, so no answer is held back as "may still be running".
const target = (extra: Partial<StatusTarget>): StatusTarget => ({
  reference: 'R1',
  sentAt: 0,
  ...extra,
});

describe('SEMI status query and attempts under one reference', () => {
  it('attempt 1: the answer naming the reference is its own', async () => {
    const driver = await terminalAnswering(DECLINED);
    expect(await driver.queryOutcome(target({ attempt: 1 }))).toMatchObject({
      outcome: 'declined',
    });
  });

  it('attempt 2: a refusal naming the reference without REQ_TXN_ID may be an earlier attempt’s → unknown, never “not charged”', async () => {
    const driver = await terminalAnswering(DECLINED);
    expect(await driver.queryOutcome(target({ attempt: 2, wireId: 7 }))).toMatchObject({
      outcome: 'unknown',
      errorCode: 'OUTCOME_UNKNOWN',
    });
  });

  it('attempt 2: an answer whose TXN_ID is an earlier attempt’s is that attempt’s → unknown, even approved', async () => {
    const driver = await terminalAnswering({ ...APPROVED, TXN_ID: 'T-1' });
    expect(
      await driver.queryOutcome(target({ attempt: 2, earlierTerminalTxIds: ['T-1'] })),
    ).toMatchObject({ outcome: 'unknown', errorCode: 'OUTCOME_UNKNOWN' });
  });

  it('attempt 2: an approval is this attempt’s (no earlier attempt was approved)', async () => {
    const driver = await terminalAnswering(APPROVED);
    expect(
      await driver.queryOutcome(target({ attempt: 2, earlierTerminalTxIds: ['T-1'] })),
    ).toMatchObject({ outcome: 'approved', approvalCode: '123456', terminalTxId: 'T-2' });
  });

  it('attempt 2: an answer echoing this attempt’s REQ_TXN_ID is its own, whatever it says', async () => {
    const driver = await terminalAnswering({ ...DECLINED, REQ_TXN_ID: '7' });
    expect(await driver.queryOutcome(target({ attempt: 2, wireId: 7 }))).toMatchObject({
      outcome: 'declined',
    });
  });
});
