import { join } from 'node:path';
import { TransactionService } from '../../src/core/transaction-service.js';
import type { TerminalDriver } from '../../src/core/driver.js';
import { PayableDriver } from '../../src/drivers/payable.js';
import { SemiDriver } from '../../src/drivers/semi.js';
import { SqliteJournal } from '../../src/journal/sqlite-journal.js';
import type { ChargeLedger } from '../../src/simulators/ledger.js';
import { PayableSimulator } from '../../src/simulators/payable/simulator.js';
import { SemiSimulator } from '../../src/simulators/semi/simulator.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { closedPort, tempDir } from '../helpers.js';

/**
 * A terminal reached over the network for the fault runs: a simulator on 127.0.0.1 behind a
 * FaultProxy, the real driver dialling the proxy, a TransactionService over a real SQLite journal.
 * The simulator listens on a fixed port so that it can be restarted under the driver; it keeps
 * its memory (batch, last transaction) across a restart, as a real terminal keeps its batch.
 */

export type NetworkTerminal = 'payable ws' | 'semi ws' | 'semi tcp';

/** Time the simulated cardholder takes: the window "after the request, before the card". */
export const CARD_DELAY_MS = 15;
/** The driver gives up waiting for an answer after this (scenario …54 waits it out). */
export const ANSWER_TIMEOUT_MS = 400;

export const TERMINAL_ID = 't1';
export const MERCHANT_ID = 'default';

export interface NetworkRig {
  readonly terminal: NetworkTerminal;
  readonly currency: string;
  readonly proxy: FaultProxy;
  readonly journal: SqliteJournal;
  readonly service: TransactionService;
  readonly driver: TerminalDriver;
  readonly ledger: ChargeLedger;
  /** The journal's file (the retry scenarios read its wire ids). */
  readonly journalPath: string;
  /** The simulator's control port (now): `POST /next` queues the next payment's scenario. */
  readonly controlPort: number;
  /**
   * The wire ids of every card request the terminal ran to an answer (SEMI's batch, which
   * survives a restart); undefined for PAYable, whose simulator keeps no such record.
   */
  terminalRecord(): ReadonlySet<string> | undefined;
  /** The protocol can say what became of an `unknown` (SEMI's status query). */
  readonly statusQuery: boolean;
  /** Called right before the first byte of each request goes out (after the link is up). */
  onSend: (() => void) | undefined;
  /** Stops the terminal (every link dropped, the card step abandoned) and starts it again. */
  restartTerminal(): Promise<void>;
  /** Makes the next payment open a new link (PAYable keeps one open between payments). */
  freshLink(): Promise<void>;
  close(): Promise<void>;
}

interface Simulator {
  readonly ledger: ChargeLedger;
  readonly controlPort: number;
  start(): Promise<unknown>;
  stop(): Promise<void>;
}

/**
 * Lets the test act right before a request's first byte: the driver's own `beforeSend` hook,
 * tapped on the instance (the driver and the service are untouched otherwise).
 */
function tapBeforeSend(driver: TerminalDriver, tap: () => void): void {
  const execute = driver.execute.bind(driver);
  driver.execute = (request, options = {}) =>
    execute(request, {
      ...options,
      beforeSend: async () => {
        await options.beforeSend?.();
        tap();
      },
    });
}

export async function networkRig(terminal: NetworkTerminal): Promise<NetworkRig> {
  const simPort = await closedPort();
  const dir = tempDir('faults-');
  let simulator: Simulator;
  let semi: SemiSimulator | undefined;
  let currency: string;
  if (terminal === 'payable ws') {
    currency = 'LKR';
    simulator = new PayableSimulator({
      port: simPort,
      statusPort: 0,
      controlPort: 0,
      token: 'FAULTS',
      cardDelayMs: CARD_DELAY_MS,
      slowAnswerMs: 50,
    });
  } else {
    currency = 'USD';
    simulator = semi = new SemiSimulator({
      wsPort: terminal === 'semi ws' ? simPort : null,
      tcpPort: terminal === 'semi tcp' ? simPort : null,
      controlPort: 0,
      cardDelayMs: CARD_DELAY_MS,
      slowAnswerMs: 50,
    });
  }
  await simulator.start();
  const proxy = await new FaultProxy(
    { host: '127.0.0.1', port: simPort },
    { framing: terminal === 'semi tcp' ? { type: 'chunks' } : { type: 'websocket' } },
  ).start();
  const journalPath = join(dir, 'ecr-bridge.db');
  const journal = new SqliteJournal({ path: journalPath });
  const common = { answerTimeoutMs: ANSWER_TIMEOUT_MS, connectTimeoutMs: 2_000 };
  const driver: TerminalDriver =
    terminal === 'payable ws'
      ? new PayableDriver({
          url: `ws://127.0.0.1:${proxy.port}`,
          token: 'FAULTS',
          posName: 'POS',
          ...common,
        })
      : new SemiDriver({
          url: `${terminal === 'semi ws' ? 'ws' : 'tcp'}://127.0.0.1:${proxy.port}`,
          ...common,
          statusTimeoutMs: 500,
          // Long enough for a card step cut short by a restart to end; short enough for a run.
          recoveryMs: 3_000,
          // The simulator's card step lasts CARD_DELAY_MS: a status answer naming an earlier
          // transaction is proof once this has passed.
          cardStepMs: 200,
        });
  const service = new TransactionService({ journal, pollIntervalMs: 5 });
  service.addTerminal(TERMINAL_ID, driver);
  const rig: NetworkRig = {
    terminal,
    currency,
    proxy,
    journal,
    service,
    driver,
    ledger: simulator.ledger,
    journalPath,
    // A getter: a restarted simulator's control port is a new one.
    get controlPort() {
      return simulator.controlPort;
    },
    terminalRecord: () =>
      semi === undefined
        ? undefined
        : new Set(semi.openBatch().flatMap((e) => (e.reqTxnId === undefined ? [] : [e.reqTxnId]))),
    statusQuery: terminal !== 'payable ws',
    onSend: undefined,
    restartTerminal: async () => {
      await simulator.stop();
      await simulator.start();
    },
    freshLink: async () => {
      if (terminal === 'payable ws') await driver.close();
    },
    close: async () => {
      await service.close();
      await proxy.stop();
      await simulator.stop();
      journal.close();
    },
  };
  tapBeforeSend(driver, () => rig.onSend?.());
  return rig;
}
