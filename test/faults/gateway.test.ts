import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'vitest';
import { EconduitAgent } from '../../src/gateway/agent.js';
import { Gateway } from '../../src/gateway/gateway.js';
import { SqliteTenantStore } from '../../src/gateway/tenants.js';
import { JOURNAL_FILE_NAME, SqliteJournal } from '../../src/journal/sqlite-journal.js';
import { closedPort, tempDir, waitForAsync } from '../helpers.js';
import { FaultProxy, type Direction } from '../support/fault-proxy.js';
import {
  atPickedPoint,
  CARD_MS,
  checksOn,
  CliProcess,
  cleanupsOf,
  faultScenario,
  openFeed,
  payment,
  posPay,
  POS_PATIENCE_MS,
  simulatorAt,
  terminalsOnline,
  warmUp,
  type Cleanup,
  type Merchant,
  type Payment,
} from './gateway-support.js';
import { runs, type Rng } from './harness.js';

/**
 * Invariant suite, single gateway (issue 9): payments through the eConduit-compatible gateway
 * while the terminal's link is cut at a random point, the terminal restarts, or the gateway
 * process is SIGKILLed; after each run the four invariants are checked against the simulated
 * terminal's charge ledger, the journal, what the POS was told and the dashboard's live stream.
 */

const TERMINAL = 'FAULTGW';
const EOT = { type: 'delimiter', delimiter: Buffer.from([0x04, 0x04]) } as const;
/** Per scenario: room for its runs on a loaded machine. */
const SCENARIO_TIMEOUT_MS = runs({ short: 60_000, long: 600_000 });

const REGISTRATION = {
  terminalType: 'Valor',
  terminalModel: 'VL100',
  terminalId: TERMINAL,
  softwareVersion: 'faults',
  ackHeartbeat: true,
};

/** A SQLite journal at `path` with the merchant and the terminal in it; closed at cleanup. */
function journalAt(cleanups: Cleanup[], path: string) {
  const journal = new SqliteJournal({ path });
  cleanups.push(() => journal.close());
  const tenants = new SqliteTenantStore(journal);
  const merchant = tenants.addMerchant('shop');
  tenants.addTerminal({ terminalId: TERMINAL, merchant: 'shop', terminalType: 'Valor' });
  return { journal, tenants, merchant };
}

/** The POS of these scenarios: the one gateway at `base`. */
function posAt(base: string, merchant: Merchant) {
  return (pay: Payment) => posPay(() => [base], merchant, TERMINAL, pay, POS_PATIENCE_MS);
}

/**
 * One in-process gateway (SQLite journal) whose terminal reaches it through a fault proxy, with
 * the driver bounds an operator would set for this terminal (its longest card step is well
 * under `cardStepMs`), and the dashboard's live stream open.
 */
async function singleGateway(cleanups: Cleanup[]) {
  const dir = tempDir('faults-gateway-');
  const { journal, tenants, merchant } = journalAt(cleanups, join(dir, 'journal.db'));
  const gateway = await new Gateway({
    journal,
    tenants,
    tcpPort: 0,
    httpPort: 0,
    answerTimeoutMs: 2_500,
    statusTimeoutMs: 1_000,
    recoveryMs: 20_000,
    cardStepMs: 1_500,
    terminals: { heartbeatIntervalMs: 1_000 },
  }).start();
  cleanups.push(() => gateway.close());
  const proxy = await new FaultProxy(
    { host: '127.0.0.1', port: gateway.tcpPort },
    { framing: EOT },
  ).start();
  cleanups.push(() => proxy.stop());
  const { simulator, virtual } = await simulatorAt(cleanups, TERMINAL, [proxy.port], {
    cardDelayMs: CARD_MS,
    slowAnswerMs: 400,
    startMs: 10_000,
  });
  const base = `http://127.0.0.1:${gateway.httpPort}`;
  const feed = await openFeed(cleanups, base, merchant);
  // A terminal with a history: its status query can name an earlier transaction of ours.
  await warmUp(() => [base], merchant, TERMINAL);
  return { journal, gateway, proxy, simulator, virtual, base, merchant, feed };
}

type SingleGateway = Awaited<ReturnType<typeof singleGateway>>;

describe.concurrent('invariant suite: single gateway', () => {
  /**
   * A scenario on one in-process gateway: `faultOf` makes, once the gateway is up, the fault
   * for the payment `reference`.
   */
  const singleGatewayScenario = (
    name: string,
    faultOf: (
      setup: SingleGateway,
      cleanups: Cleanup[],
    ) => (rng: Rng, reference: string) => Promise<void>,
  ) =>
    it(
      name,
      async (context) => {
        const cleanups = cleanupsOf(context);
        const setup = await singleGateway(cleanups);
        const fault = faultOf(setup, cleanups);
        const { base, merchant, simulator, journal, feed } = setup;
        await faultScenario(
          context,
          name,
          { short: 3, long: 40 },
          {
            payment: (rng) => payment(rng, 'GW'),
            pay: posAt(base, merchant),
            fault: (rng, pay) => fault(rng, pay.reference),
            check: checksOn(simulator, journal, TERMINAL, feed),
          },
        );
      },
      SCENARIO_TIMEOUT_MS,
    );

  /** The payment's frame going `direction` cut after a random number (1 to `upTo`) of its bytes. */
  const frameCut =
    (direction: Direction, upTo: number) =>
    ({ proxy }: SingleGateway) =>
    async (rng: Rng, ref: string) => {
      proxy.injectFaults([
        { direction, kind: 'cut', at: { contains: ref, offset: rng.int(1, upTo) } },
      ]);
    };

  // The request's frame, gateway → terminal, cut after a random number of its bytes (all of
  // them, sometimes: then the link ends right after the terminal got it).
  singleGatewayScenario(
    'gateway: terminal link cut after the request bytes',
    frameCut('down', 260),
  );

  singleGatewayScenario(
    'gateway: terminal link cut after the card read',
    ({ proxy, simulator, virtual }) =>
      async (rng, ref) => {
        await atPickedPoint(rng, ['card-step', 'charge', 'after-charge'], simulator, virtual, ref);
        proxy.dropConnections();
      },
  );

  // The terminal's answer, terminal → gateway, cut inside its frame.
  singleGatewayScenario('gateway: terminal link cut mid-answer', frameCut('up', 300));

  singleGatewayScenario(
    'gateway: terminal simulator restarted mid-payment',
    ({ proxy, simulator, virtual }, cleanups) => {
      // The terminal's program restarts: its cloud agent goes (a new one comes up after a
      // while) and a card step in progress is abandoned; its memory of transactions (the batch
      // and the last transaction, which a real terminal keeps in flash) survives.
      let agent: EconduitAgent = virtual.agent;
      cleanups.push(() => agent.stop());
      const restart = async (rng: Rng) => {
        const old = agent;
        await Promise.all([old.stop(), virtual.terminal.stop()]);
        await sleep(rng.int(0, 800));
        agent = new EconduitAgent({
          endpoints: [{ host: '127.0.0.1', port: proxy.port }],
          registration: REGISTRATION,
          heartbeatIntervalMs: 1_000,
        });
        agent.on('session', (link) => virtual.terminal.attach(link));
        agent.start();
      };
      return async (rng, ref) => {
        await atPickedPoint(
          rng,
          ['card-step', 'charge', 'after-charge', 'early'],
          simulator,
          virtual,
          ref,
        );
        await restart(rng);
      };
    },
  );

  it(
    'gateway: SIGKILL of the gateway process mid-payment, then restarted',
    async (context) => {
      const name = 'gateway: SIGKILL of the gateway process mid-payment, then restarted';
      const cleanups = cleanupsOf(context);
      // The real CLI (`ecr-bridge gateway start`) on a SQLite journal file; its tenants are
      // written before it starts, and the test reads the same file to check (SQLite in WAL mode
      // is shared between processes).
      const dataDir = tempDir('faults-gateway-cli-');
      const { journal, merchant } = journalAt(cleanups, join(dataDir, JOURNAL_FILE_NAME));
      const [tcpPort, httpPort] = [await closedPort(), await closedPort()];
      const base = `http://127.0.0.1:${httpPort}`;
      const cli = new CliProcess(
        [
          'gateway',
          'start',
          '--data-dir',
          dataDir,
          '--tcp-port',
          String(tcpPort),
          '--http-port',
          String(httpPort),
          '--heartbeat-interval',
          '1000',
          '--json',
        ],
        'the gateway',
      );
      cleanups.push(() => cli.kill());
      await cli.start();
      const { simulator, virtual } = await simulatorAt(cleanups, TERMINAL, [tcpPort], {
        cardDelayMs: CARD_MS,
        slowAnswerMs: 300,
        startMs: 15_000,
      });
      await warmUp(() => [base], merchant, TERMINAL);
      // The CLI's answer timeout is 3 minutes: amounts whose scenario is "no answer" or "slow"
      // are left out; and kill points are those where the terminal has the request (the
      // CLI's card-step bound of 3 minutes would keep a never-delivered request unknown that
      // long, by design; the in-process scenarios cover those points).
      await faultScenario(
        context,
        name,
        { short: 2, long: 30 },
        {
          payment: (rng) => payment(rng, 'GW', true),
          pay: posAt(base, merchant),
          fault: async (rng, pay) => {
            await atPickedPoint(
              rng,
              ['card-step', 'charge', 'after-charge'],
              simulator,
              virtual,
              pay.reference,
            );
            await cli.kill();
            await sleep(rng.int(0, 500));
            await cli.start();
          },
          beforeCheck: async () => {
            if (!cli.up) await cli.start();
          },
          check: checksOn(simulator, journal, TERMINAL),
          // The next run starts with the terminal back.
          afterCheck: () =>
            waitForAsync(
              async () => (await terminalsOnline(base)) === 1,
              30_000,
              'the terminal back',
            ),
        },
      );
    },
    SCENARIO_TIMEOUT_MS,
  );
});
