import { PassThrough } from 'node:stream';
import { expect, it } from 'vitest';
import { humanLogDestination } from '../../src/cli/human-log.js';
import { createLogger } from '../../src/core/logger.js';

it('simulator logs for people: one line per event, time, level, message, fields; card keys still censored', () => {
  const out = new PassThrough();
  let text = '';
  out.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  const logger = createLogger({ level: 'info', destination: humanLogDestination(out) });
  logger.info({ reference: 'ORDER-1', txid: 7, pan: '4111111111111111' }, 'card charged');
  logger.debug('not shown');
  expect(text).toMatch(
    /^\d\d:\d\d:\d\d info {2}card charged reference=ORDER-1 txid=7 pan=\[redacted\]\n$/,
  );
});
