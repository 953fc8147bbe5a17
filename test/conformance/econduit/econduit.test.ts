import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Gateway } from '../../../src/gateway/gateway.js';
import { SqliteTenantStore } from '../../../src/gateway/tenants.js';
import { SqliteJournal } from '../../../src/journal/sqlite-journal.js';
import { POS_ONLINE } from '../../../src/protocols/econduit/messages.js';
import { EconduitSimulator } from '../../../src/simulators/econduit/simulator.js';
import { tempDir, waitFor } from '../../helpers.js';
import { runScriptedClient, startScriptedPeer } from '../support/transcript.js';
import {
  agentRegisterAndHeartbeats,
  GATEWAY_REGISTER_AND_HEARTBEAT,
  GATEWAY_SEED_SAMPLE_VERBATIM,
  SEED_TERMINAL,
} from './transcripts.js';

// eConduit's terminal channel (seed 002) both ways: our gateway's terminal listener against a
// scripted terminal, and our terminal agent (inside the eConduit simulator) against a scripted
// cloud, each replaying hand-written transcripts on real sockets.

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * A real gateway with the seed's terminal provisioned as the seed's `TerminalType`, and no
 * other configuration: the provisioning alone decides what registers (issue 16's rule).
 */
async function gateway(): Promise<Gateway> {
  const journal = new SqliteJournal({ path: join(tempDir('conformance-econduit-'), 'journal.db') });
  cleanups.push(() => journal.close());
  const tenants = new SqliteTenantStore(journal);
  tenants.addMerchant('shop');
  tenants.addTerminal({
    terminalId: SEED_TERMINAL.terminalId,
    merchant: 'shop',
    terminalType: SEED_TERMINAL.terminalType,
  });
  const started = await new Gateway({ journal, tenants, tcpPort: 0, httpPort: 0 }).start();
  cleanups.push(() => started.close());
  return started;
}

describe('eConduit conformance: our gateway against a scripted terminal', () => {
  it("registers the seed's terminal and acks its heartbeat, whatever the write boundaries", async () => {
    const gw = await gateway();
    await runScriptedClient(
      GATEWAY_REGISTER_AND_HEARTBEAT,
      { port: gw.tcpPort },
      { role: 'terminal' },
    );
    expect(gw.listener.isOnline(SEED_TERMINAL.terminalId)).toBe(true);
  });

  it("refuses the seed's verbatim sample with FAILED-REGISTRATION, then still registers a good one", async () => {
    const gw = await gateway();
    await runScriptedClient(
      GATEWAY_SEED_SAMPLE_VERBATIM,
      { port: gw.tcpPort },
      { role: 'terminal' },
    );
    expect(gw.listener.isOnline(SEED_TERMINAL.terminalId)).toBe(false);
    // No crash, nothing stuck: the next terminal's conversation runs as usual.
    await runScriptedClient(
      GATEWAY_REGISTER_AND_HEARTBEAT,
      { port: gw.tcpPort },
      { role: 'terminal' },
    );
    expect(gw.listener.isOnline(SEED_TERMINAL.terminalId)).toBe(true);
  });
});

describe('eConduit conformance: our terminal agent against a scripted cloud', () => {
  it('registers with the seed fields, heartbeats while idle and stays on one connection', async () => {
    const heartbeatIntervalMs = 300;
    const cloud = await startScriptedPeer(
      agentRegisterAndHeartbeats(heartbeatIntervalMs * 10),
      'pos',
    );
    cleanups.push(() => cloud.close());
    const simulator = new EconduitSimulator({
      endpoints: [{ host: cloud.host, port: cloud.port }],
      ...SEED_TERMINAL,
      heartbeatIntervalMs,
    });
    cleanups.push(() => simulator.stop());
    await simulator.start();
    await cloud.done;
    const agent = simulator.terminals[0]?.agent;
    await waitFor(() => agent?.status === POS_ONLINE, 5_000, 'the terminal showing POS Online');
    // The acks were understood: no second connection, no new registration.
    expect(cloud.extraConnections).toBe(0);
  });
});
