import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { TerminalListenerOptions } from '../../src/gateway/terminal-listener-options.js';
import { TerminalListener } from '../../src/gateway/terminal-listener.js';
import { waitFor } from '../helpers.js';
import { FakeClock } from '../support/fake-clock.js';
import { RawTerminal, SEED_REGISTER, SEED_REGISTER_SAMPLE } from './raw-terminal.js';

const PROVISIONED: Record<string, string> = {
  '29531204': 'Valor',
  '29531205': 'Valor',
  '29531206': 'TerminalManufacturer',
};
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function listen(options: Partial<TerminalListenerOptions> = {}) {
  const listener = await new TerminalListener({
    port: 0,
    lookup: (id) =>
      Object.hasOwn(PROVISIONED, id)
        ? { terminalType: PROVISIONED[id] as string, payload: 'semi' }
        : undefined,
    heartbeatIntervalMs: 1_000,
    ...options,
  }).start();
  cleanups.push(() => listener.close());
  return listener;
}

async function terminal(listener: TerminalListener, localAddress?: string) {
  const raw = await RawTerminal.connect(listener.port, localAddress);
  cleanups.push(() => raw.destroy());
  return raw;
}

describe('terminal listener: registration', () => {
  it('answers OK-REGISTRATION to a provisioned terminal and shows it online', async () => {
    const listener = await listen();
    const raw = await terminal(listener);
    expect(await raw.register('29531204')).toBe('OK-REGISTRATION');
    expect(listener.isOnline('29531204')).toBe(true);
    expect(listener.terminal('29531204')).toMatchObject({
      terminalType: 'Valor',
      terminalModel: 'Model1',
      softwareVersion: 'SomeProcessor v1.2',
      ackHeartbeat: true,
      payload: 'semi',
      busy: false,
    });
    expect(listener.stats.registrations['OK-REGISTRATION']).toBe(1);
  });

  const refusals: [string, string, string][] = [
    [
      "the seed's own sample (typographic quotes, no opening brace)",
      SEED_REGISTER_SAMPLE,
      'FAILED-REGISTRATION',
    ],
    ['JSON that is not an object', '["Register"]', 'FAILED-REGISTRATION'],
    ['a JSON string', '"Register"', 'FAILED-REGISTRATION'],
    [
      'a Register without TerminalID',
      JSON.stringify({
        Command: 'Register',
        TerminalType: 'Valor',
        TerminalModel: 'M',
        SoftwareVersion: 'v1',
      }),
      'FAILED-REGISTRATION',
    ],
    [
      'a Register without SoftwareVersion',
      JSON.stringify({
        Command: 'Register',
        TerminalType: 'Valor',
        TerminalModel: 'M',
        TerminalID: '29531204',
      }),
      'FAILED-REGISTRATION',
    ],
    [
      'an unprovisioned TerminalID',
      JSON.stringify({
        Command: 'Register',
        TerminalType: 'Valor',
        TerminalModel: 'M',
        TerminalID: '11111111',
        SoftwareVersion: 'v1',
      }),
      'FAILED-REGISTRATION',
    ],
    ['a heartbeat before Register', '{"Command":"TerminalHeartbeat"}', 'FAILED-REGISTRATION'],
    [
      'a single 0x04 inside the message',
      '{"Command":"Register",\x04"TerminalType":"Valor"}',
      'FAILED-REGISTRATION',
    ],
    [
      "the seed's Register (straight quotes) from a terminal provisioned as another type",
      SEED_REGISTER.replace('"29531204"', '"29531205"'),
      'FAILED-INVALID-TERMINAL-TYPE',
    ],
    [
      'a type that is not the one provisioned',
      JSON.stringify({
        Command: 'Register',
        TerminalType: 'Dejavoo',
        TerminalModel: 'M',
        TerminalID: '29531204',
        SoftwareVersion: 'v1',
      }),
      'FAILED-INVALID-TERMINAL-TYPE',
    ],
  ];
  it.each(refusals)('refuses %s, then closes the connection', async (_name, text, answer) => {
    const listener = await listen();
    const raw = await terminal(listener);
    raw.send(text);
    expect(await raw.next()).toBe(answer);
    await raw.closed;
    expect(listener.onlineCount).toBe(0);
  });

  it("the seed's Register (straight quotes) from a terminal provisioned as TerminalManufacturer: OK-REGISTRATION with no type configured, SEMI payloads", async () => {
    const listener = await listen();
    const raw = await terminal(listener);
    raw.send(SEED_REGISTER.replace('"29531204"', '"29531206"'));
    expect(await raw.next()).toBe('OK-REGISTRATION');
    expect(listener.terminal('29531206')).toMatchObject({
      terminalType: 'TerminalManufacturer',
      terminalModel: 'Model1',
      softwareVersion: 'SomeProcessor v1.2',
      payload: 'semi',
    });
  });

  it('with a terminalTypes allow-list, a provisioned terminal of a type outside it is refused FAILED-INVALID-TERMINAL-TYPE before any lookup; one inside it registers', async () => {
    const looked: string[] = [];
    const listener = await listen({
      terminalTypes: ['Valor'],
      lookup: (id) => {
        looked.push(id);
        return { terminalType: PROVISIONED[id] as string, payload: 'semi' };
      },
    });
    const outside = await terminal(listener);
    outside.send(SEED_REGISTER.replace('"29531204"', '"29531206"'));
    expect(await outside.next()).toBe('FAILED-INVALID-TERMINAL-TYPE');
    await outside.closed;
    expect(looked).toEqual([]);
    const inside = await terminal(listener);
    expect(await inside.register('29531204', 'Valor')).toBe('OK-REGISTRATION');
    expect(looked).toEqual(['29531204']);
    expect(listener.stats.registrations).toMatchObject({
      'OK-REGISTRATION': 1,
      'FAILED-INVALID-TERMINAL-TYPE': 1,
    });
  });

  it('an empty terminalTypes allow-list is refused at construction, naming the option', () => {
    expect(
      () => new TerminalListener({ port: 0, terminalTypes: [], lookup: () => undefined }),
    ).toThrow(/terminalTypes: must name at least one type/);
  });

  it('a card number in TerminalModel or SoftwareVersion is masked before the gateway keeps or shows the registration', async () => {
    const listener = await listen();
    const raw = await terminal(listener);
    raw.send(
      JSON.stringify({
        Command: 'Register',
        TerminalType: 'Valor',
        TerminalModel: 'M 4111 1111 1111 1111',
        TerminalID: '29531204',
        SoftwareVersion: 'v1 card 4761739001010010',
        AckHeartbeat: 'true',
      }),
    );
    expect(await raw.next()).toBe('OK-REGISTRATION');
    const info = listener.terminal('29531204');
    expect(info).toMatchObject({
      terminalModel: 'M 411111******1111',
      softwareVersion: 'v1 card 476173******0010',
    });
    expect(JSON.stringify(info)).not.toMatch(/4111 1111 1111 1111|4761739001010010/);
  });

  it('waits for the second 0x04: a lone one ends nothing', async () => {
    const listener = await listen();
    const raw = await terminal(listener);
    const register = JSON.stringify({
      Command: 'Register',
      TerminalType: 'Valor',
      TerminalModel: 'M',
      TerminalID: '29531204',
      SoftwareVersion: 'v1',
    });
    raw.sendRaw(`${register}\x04`);
    await expect(raw.next(200)).rejects.toThrow('no frame in time');
    raw.sendRaw('\x04');
    expect(await raw.next()).toBe('OK-REGISTRATION');
  });

  it('closes a connection whose bytes never hold 0x04 0x04 past the bound', async () => {
    const listener = await listen({ maxFrameBytes: 1024 });
    const raw = await terminal(listener);
    raw.sendRaw('x'.repeat(4096));
    await raw.closed;
    expect(raw.frames).toEqual([]);
  });

  it('closes a connection that never registers', async () => {
    const listener = await listen({ registerTimeoutMs: 100 });
    const raw = await terminal(listener);
    const connectedAt = Date.now();
    // The terminal never closes its side: if the socket ends, the gateway ended it.
    const closedBy = await Promise.race([
      raw.closed.then(() => 'closed'),
      sleep(5_000).then(() => 'still open'),
    ]);
    expect(closedBy).toBe('closed');
    // Not at once: when the register bound ran out, and without a word.
    expect(Date.now() - connectedAt).toBeGreaterThanOrEqual(90);
    expect(raw.frames).toEqual([]);
    expect(listener.onlineCount).toBe(0);
    await waitFor(() => listener.connectionCount === 0, 5_000, 'the slot freed');
  });

  it('rate-limits a flood of registrations from one address, not from another', async () => {
    const listener = await listen({ registrationBurst: 3, registrationsPerSecond: 1 });
    const answers: string[] = [];
    for (let i = 0; i < 6; i++) {
      const raw = await terminal(listener);
      answers.push(await raw.register('29531204'));
    }
    expect(answers.slice(0, 3)).toEqual(['OK-REGISTRATION', 'OK-REGISTRATION', 'OK-REGISTRATION']);
    expect(answers.slice(3)).toEqual([
      'FAILED-REGISTRATION',
      'FAILED-REGISTRATION',
      'FAILED-REGISTRATION',
    ]);
    expect(listener.stats.registrations['rate-limited']).toBe(3);
    // Another source address has its own allowance.
    const other = await terminal(listener, '127.0.0.2');
    expect(await other.register('29531205')).toBe('OK-REGISTRATION');
  });
});

describe('terminal listener: registered terminals', () => {
  it('acks heartbeats when asked to, and stays silent otherwise', async () => {
    const listener = await listen();
    const acked = await terminal(listener);
    await acked.register('29531204', 'Valor', true);
    acked.send('{"Command":"TerminalHeartbeat"}');
    expect(await acked.next()).toBe('{"Status":"OK"}');
    const quiet = await terminal(listener);
    await quiet.register('29531205', 'Valor', false);
    quiet.send('{"Command":"TerminalHeartbeat"}');
    await expect(quiet.next(200)).rejects.toThrow('no frame in time');
    expect(listener.stats.heartbeats).toBe(2);
  });

  it('a new registration of the same terminal replaces a half-open connection', async () => {
    const listener = await listen();
    const events: string[] = [];
    listener.on('online', (t) => events.push(`online ${t.terminalId}`));
    listener.on('offline', (t) => events.push(`offline ${t.terminalId}`));
    const old = await terminal(listener);
    await old.register('29531204');
    // The old socket is never closed by its side (a pulled cable): the new one wins.
    const fresh = await terminal(listener);
    expect(await fresh.register('29531204')).toBe('OK-REGISTRATION');
    await old.closed;
    expect(listener.terminal('29531204')?.remote).toBe(`127.0.0.1:${fresh.socket.localPort ?? 0}`);
    expect(events).toEqual(['online 29531204', 'online 29531204']);
  });

  it('a live terminal keeps its place: a registration of it from another address is refused, logged and counted', async () => {
    const listener = await listen();
    const real = await terminal(listener, '127.0.0.1');
    await real.register('29531204');
    const impostor = await terminal(listener, '127.0.0.2');
    expect(await impostor.register('29531204')).toBe('FAILED-REGISTRATION');
    await impostor.closed;
    expect(listener.stats.refusedFromElsewhere).toBe(1);
    expect(listener.stats.replacedFromElsewhere).toBe(0);
    // The real one is untouched: still online on its own connection, still heard.
    expect(listener.terminal('29531204')?.remote).toBe(`127.0.0.1:${real.socket.localPort ?? 0}`);
    expect(real.isClosed).toBe(false);
    real.send('{"Command":"TerminalHeartbeat"}');
    expect(await real.next()).toBe('{"Status":"OK"}');
  });

  it('a terminal that really moved (a new address after its heartbeat window of silence) registers', async () => {
    const clock = new FakeClock();
    const listener = await listen({ heartbeatIntervalMs: 100, missedHeartbeats: 2, clock });
    const before = await terminal(listener, '127.0.0.1');
    await before.register('29531204');
    const early = await terminal(listener, '127.0.0.2');
    expect(await early.register('29531204')).toBe('FAILED-REGISTRATION');
    // Silent past 2 × 100 ms: gone, whether the sweep dropped it yet or not.
    await clock.advance(350);
    const moved = await terminal(listener, '127.0.0.2');
    expect(await moved.register('29531204')).toBe('OK-REGISTRATION');
    expect(listener.terminal('29531204')?.remote).toBe(`127.0.0.2:${moved.socket.localPort ?? 0}`);
  });

  it('marks a terminal silent for the configured heartbeats offline and closes its socket', async () => {
    const clock = new FakeClock();
    const listener = await listen({ heartbeatIntervalMs: 50, missedHeartbeats: 2, clock });
    const offline: string[] = [];
    listener.on('offline', (t, why) => offline.push(`${t.terminalId}: ${why}`));
    const raw = await terminal(listener);
    await raw.register('29531204');
    await clock.advance(100);
    expect(listener.isOnline('29531204')).toBe(true);
    await clock.advance(50);
    await raw.closed;
    expect(listener.isOnline('29531204')).toBe(false);
    expect(offline[0]).toMatch(/^29531204: silent for more than 100 ms/);
  });

  it('keeps a terminal that heartbeats in time', async () => {
    const clock = new FakeClock();
    const listener = await listen({ heartbeatIntervalMs: 100, missedHeartbeats: 2, clock });
    const raw = await terminal(listener);
    await raw.register('29531204');
    for (let i = 1; i <= 6; i++) {
      await clock.advance(60);
      raw.send('{"Command":"TerminalHeartbeat"}');
      await waitFor(() => listener.stats.heartbeats === i, 5_000, `heartbeat ${i}`);
    }
    expect(listener.isOnline('29531204')).toBe(true);
    expect(raw.isClosed).toBe(false);
  });

  it('ignores a transaction answer with no request waiting, and counts it', async () => {
    const listener = await listen();
    const raw = await terminal(listener);
    await raw.register('29531204');
    raw.send('{"TRAN_CODE":"1","STATE":"0","MER_TXN_ID":"nobody-asked"}');
    raw.send('{"TRAN_CODE":"1","STATE":"0","MER_TXN_ID":"nobody-asked-2"}');
    await waitFor(() => listener.stats.unexpectedAnswers === 2, 5_000, 'two unexpected answers');
    expect(listener.isOnline('29531204')).toBe(true);
    raw.send('{"Command":"TerminalHeartbeat"}');
    expect(await raw.next()).toBe('{"Status":"OK"}');
  });

  it('ignores an unknown command and keeps the terminal', async () => {
    const listener = await listen();
    const raw = await terminal(listener);
    await raw.register('29531204');
    raw.send('{"Command":"Reboot"}');
    raw.send('{"Command":"TerminalHeartbeat"}');
    expect(await raw.next()).toBe('{"Status":"OK"}');
    expect(listener.isOnline('29531204')).toBe(true);
  });

  it('gives a request channel only to an online terminal, one at a time', async () => {
    const listener = await listen();
    const source = listener.linkSource('29531204');
    await expect(source.open()).rejects.toMatchObject({ code: 'TERMINAL_OFFLINE' });
    const raw = await terminal(listener);
    await raw.register('29531204');
    const channel = await source.open();
    await expect(source.open()).rejects.toMatchObject({ code: 'TERMINAL_BUSY' });
    const got: string[] = [];
    channel.onMessage((text) => got.push(text));
    await channel.send('{"TRAN_CODE":"9"}');
    expect(await raw.next()).toBe('{"TRAN_CODE":"9"}');
    raw.send('{"TRAN_CODE":"9","STATE":"0"}');
    await waitFor(() => got.length === 1, 5_000, 'the answer on the channel');
    expect(listener.terminal('29531204')?.busy).toBe(true);
    channel.close();
    expect((await channel.closed).code).toBe(1000);
    expect(listener.terminal('29531204')?.busy).toBe(false);
    // The connection stays; a new request gets a new channel.
    const again = await source.open();
    raw.destroy();
    const closed = await again.closed;
    expect(closed.error?.code).toBe('LINK_LOST');
  });
});

describe('terminal listener: connections that hold slots', () => {
  it('drops a refused connection whose peer never closes its side', async () => {
    const listener = await listen();
    const raw = await terminal(listener);
    raw.socket.on('end', () => {}); // a half-open peer: it never ends its side
    raw.socket.allowHalfOpen = true;
    raw.send('not json');
    expect(await raw.next()).toBe('FAILED-REGISTRATION');
    await waitFor(() => listener.connectionCount === 0, 5_000, 'the slot freed');
  });

  it('holds at most the configured unregistered connections per address', async () => {
    const listener = await listen({ maxUnregisteredPerAddress: 3 });
    const held = [await terminal(listener), await terminal(listener), await terminal(listener)];
    const fourth = await terminal(listener);
    await fourth.closed;
    expect(held.every((t) => !t.isClosed)).toBe(true);
    // Another address is not affected, and a registered one frees its slot.
    expect(await (await terminal(listener, '127.0.0.3')).register('29531205')).toBe(
      'OK-REGISTRATION',
    );
    expect(await held[0]?.register('29531204')).toBe('OK-REGISTRATION');
    const again = await terminal(listener);
    await sleep(100);
    expect(again.isClosed).toBe(false);
  });

  it('allows only a small message before Register (4 KiB), the full bound after', async () => {
    const listener = await listen({ maxFrameBytes: 64 * 1024 });
    const early = await terminal(listener);
    early.sendRaw('x'.repeat(5 * 1024));
    await early.closed;
    const registered = await terminal(listener);
    await registered.register('29531204');
    registered.send(`{"padding":"${'x'.repeat(20 * 1024)}"}`);
    registered.send('{"Command":"TerminalHeartbeat"}');
    expect(await registered.next()).toBe('{"Status":"OK"}');
  });

  it('drops a terminal that sends heartbeats and never reads the acks', async () => {
    const listener = await listen();
    const raw = await terminal(listener);
    await raw.register('29531204');
    raw.socket.pause(); // never reads again
    const beat = Buffer.from('{"Command":"TerminalHeartbeat"}\x04\x04'.repeat(1_000));
    const deadline = Date.now() + 30_000;
    while (listener.isOnline('29531204') && Date.now() < deadline) {
      // The gateway may drop the socket mid-write (ECONNRESET): that is the drop awaited here.
      if (!raw.socket.write(beat))
        await Promise.race([once(raw.socket, 'drain').catch(() => undefined), sleep(50)]);
    }
    expect(listener.isOnline('29531204')).toBe(false);
  });
});
