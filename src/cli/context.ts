import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { EcrError } from '../core/errors.js';
import { createLogger, type Logger } from '../core/logger.js';
import { TransactionService } from '../core/transaction-service.js';
import { JOURNAL_FILE_NAME, SqliteJournal } from '../journal/sqlite-journal.js';

/** Data directory when neither `--data-dir` nor ECR_BRIDGE_DATA_DIR says otherwise. */
export const DEFAULT_DATA_DIR = './data';

export interface Context {
  readonly dataDir: string;
  readonly logger: Logger;
  readonly journal: SqliteJournal;
  readonly service: TransactionService;
  close(): Promise<void>;
}

/**
 * Opens the journal of a data directory, with logs in `<data-dir>/logs/ecr-bridge.log`, and
 * recovers what a crashed process left in flight (rows become `unknown`).
 */
export async function openContext(options: {
  dataDir: string;
  logLevel: string;
  /** Requests that may wait per terminal. @default DEFAULT_MAX_QUEUE */
  maxQueue?: number;
}): Promise<Context> {
  const dataDir = resolve(options.dataDir);
  let logger: Logger;
  let journal: SqliteJournal;
  try {
    logger = createLogger({
      level: options.logLevel,
      destination: pino.destination({
        dest: join(dataDir, 'logs', 'ecr-bridge.log'),
        sync: true,
        mkdir: true,
      }),
    });
    journal = new SqliteJournal({ path: join(dataDir, JOURNAL_FILE_NAME) });
  } catch (error) {
    throw new EcrError(
      'INVALID_INPUT',
      `data-dir: cannot use ${dataDir}: ${(error as Error).message}`,
      {
        field: 'data-dir',
        rule: 'must be a writable directory',
        cause: error,
      },
    );
  }
  const service = new TransactionService({
    journal,
    logger,
    ...(options.maxQueue === undefined ? {} : { maxQueue: options.maxQueue }),
  });
  await service.recover();
  return {
    dataDir,
    logger,
    journal,
    service,
    close: async () => {
      await service.close();
      journal.close();
    },
  };
}
