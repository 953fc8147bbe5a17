import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { EcrError, invalid } from '../core/errors.js';
import { createLogger, type Logger } from '../core/logger.js';
import { TransactionService } from '../core/transaction-service.js';
import { PostgresTenantStore } from '../gateway/postgres-tenants.js';
import { SqliteTenantStore, type TenantStore } from '../gateway/tenants.js';
import type { Journal } from '../core/journal-port.js';
import { isPostgresUrl, PostgresJournal } from '../journal/postgres-journal.js';
import { JOURNAL_FILE_NAME, SqliteJournal } from '../journal/sqlite-journal.js';

/** Data directory when neither `--data-dir` nor ECR_BRIDGE_DATA_DIR says otherwise. */
export const DEFAULT_DATA_DIR = './data';

export interface Context {
  readonly dataDir: string;
  readonly logger: Logger;
  readonly journal: Journal;
  /** Where the journal is, for messages: a file, or `PostgreSQL at host:port/db`. */
  readonly journalWhere: string;
  /** The gateway's merchants and terminals, next to the journal. */
  readonly tenants: TenantStore;
  readonly service: TransactionService;
  close(): Promise<void>;
}

/** Exit code of a process whose journal broke under it (sysexits.h EX_IOERR). */
export const JOURNAL_BROKEN_EXIT_CODE = 74;
/** How long the answers already on their way get before such a process stops. */
const BROKEN_EXIT_DELAY_MS = 200;

/**
 * The journal broke under the process (its shared memory cut, see guardSharedMemory): every
 * access is refused already; say why on standard error and stop with JOURNAL_BROKEN_EXIT_CODE,
 * so a supervisor restarts it (the restart repairs the file).
 */
function stopBroken(error: Error): void {
  process.exitCode = JOURNAL_BROKEN_EXIT_CODE;
  try {
    process.stderr.write(`ecr-bridge: stopping: ${error.message}\n`);
  } finally {
    setTimeout(() => process.exit(JOURNAL_BROKEN_EXIT_CODE), BROKEN_EXIT_DELAY_MS);
  }
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
  /** A postgres:// URL; the data directory's SQLite file otherwise. */
  journal?: string | undefined;
}): Promise<Context> {
  const dataDir = resolve(options.dataDir);
  let logger: Logger;
  let sqlite: SqliteJournal | undefined;
  try {
    logger = createLogger({
      level: options.logLevel,
      destination: pino.destination({
        dest: join(dataDir, 'logs', 'ecr-bridge.log'),
        sync: true,
        mkdir: true,
      }),
    });
    if (options.journal === undefined)
      sqlite = new SqliteJournal({ path: join(dataDir, JOURNAL_FILE_NAME), onBroken: stopBroken });
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
  let journal: Journal;
  let tenants: TenantStore;
  let journalWhere: string;
  if (sqlite !== undefined) {
    journal = sqlite;
    tenants = new SqliteTenantStore(sqlite);
    journalWhere = join(dataDir, JOURNAL_FILE_NAME);
  } else {
    const url = options.journal ?? '';
    if (!isPostgresUrl(url)) {
      throw invalid('INVALID_INPUT', 'journal', 'must be a postgres:// or postgresql:// URL');
    }
    // `?schema=name` keeps the tables in a schema of their own (several clusters, or tests, in
    // one database); pg itself does not know the parameter.
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw invalid('INVALID_INPUT', 'journal', 'must be a postgres://user@host:port/database URL');
    }
    const schema = parsed.searchParams.get('schema') ?? undefined;
    parsed.searchParams.delete('schema');
    const postgres = await PostgresJournal.open({
      url: parsed.toString(),
      logger,
      ...(schema === undefined ? {} : { schema }),
    });
    journal = postgres;
    tenants = new PostgresTenantStore(postgres.pool);
    journalWhere = postgres.where;
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
    journalWhere,
    tenants,
    service,
    close: async () => {
      await service.close();
      await journal.close();
    },
  };
}
