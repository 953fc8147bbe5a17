import { afterEach, describe, expect, it } from 'vitest';
import { backoffDelay, DEFAULT_BACKOFF_MAX_MS } from '../../src/transports/backoff.js';
import {
  DEFAULT_MAX_BUFFERED_MESSAGES,
  type MessageLink,
} from '../../src/transports/message-link.js';
import {
  connectWebSocket,
  listenWebSocket,
  type ListeningServer,
} from '../../src/transports/websocket.js';
import { waitFor } from '../helpers.js';

const servers: ListeningServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

async function server(
  onConnection: (link: MessageLink) => void,
  accept = true,
): Promise<ListeningServer> {
  const listening = await listenWebSocket<null>({
    port: 0,
    authorize: () => (accept ? { accept: true, context: null } : { accept: false, status: 404 }),
    onConnection: (link) => onConnection(link),
  });
  servers.push(listening);
  return listening;
}

describe('WebSocket links', () => {
  it('messages sent before a handler is set are delivered to it, in order', async () => {
    const listening = await server((link) => {
      for (let i = 0; i < 5; i++) void link.send(`m${i}`);
    });
    const link = await connectWebSocket(`ws://127.0.0.1:${listening.port}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const got: string[] = [];
    link.onMessage((text) => got.push(text));
    await waitFor(() => got.length === 5);
    expect(got).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    link.close();
  });

  it('a handler that detaches itself leaves later messages buffered for the next one', async () => {
    const listening = await server((link) => {
      for (let i = 0; i < 3; i++) void link.send(`m${i}`);
    });
    const link = await connectWebSocket(`ws://127.0.0.1:${listening.port}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const first: string[] = [];
    link.onMessage((text) => {
      first.push(text);
      link.onMessage(undefined);
    });
    const rest: string[] = [];
    link.onMessage((text) => rest.push(text));
    expect(first).toEqual(['m0']);
    expect(rest).toEqual(['m1', 'm2']);
    link.close();
  });

  it('more unread messages than the bound close the link with a coded error', async () => {
    const listening = await server((link) => {
      for (let i = 0; i <= DEFAULT_MAX_BUFFERED_MESSAGES; i++) void link.send(`m${i}`);
    });
    const link = await connectWebSocket(`ws://127.0.0.1:${listening.port}`);
    const closed = await link.closed;
    expect(closed.error?.code).toBe('FRAME_TOO_LARGE');
  });

  it('a message over the size bound closes the link with FRAME_TOO_LARGE', async () => {
    const listening = await server((link) => void link.send('x'.repeat(2048)));
    const link = await connectWebSocket(`ws://127.0.0.1:${listening.port}`, {
      maxMessageBytes: 1024,
    });
    link.onMessage(() => undefined);
    expect((await link.closed).error?.code).toBe('FRAME_TOO_LARGE');
  });

  it('a refused handshake is TERMINAL_AUTH_FAILED; nothing listening is TERMINAL_UNREACHABLE; an abort is ABORTED', async () => {
    const refusing = await server(() => undefined, false);
    await expect(
      connectWebSocket(`ws://127.0.0.1:${refusing.port}/?token=SECRET`),
    ).rejects.toMatchObject({
      code: 'TERMINAL_AUTH_FAILED',
      message: expect.not.stringContaining('SECRET'),
    });
    const port = refusing.port;
    await refusing.close();
    servers.pop();
    await expect(connectWebSocket(`ws://127.0.0.1:${port}`)).rejects.toMatchObject({
      code: 'TERMINAL_UNREACHABLE',
    });
    await expect(
      connectWebSocket(`ws://127.0.0.1:${port}`, { signal: AbortSignal.abort() }),
    ).rejects.toMatchObject({
      code: 'ABORTED',
    });
  });
});

describe('backoff', () => {
  it('grows exponentially with full jitter and never passes the ceiling', () => {
    for (let attempt = 0; attempt < 20; attempt++) {
      const high = backoffDelay(attempt, 100, DEFAULT_BACKOFF_MAX_MS, () => 0.999999);
      expect(high).toBeLessThanOrEqual(Math.min(DEFAULT_BACKOFF_MAX_MS, 100 * 2 ** attempt));
      expect(backoffDelay(attempt, 100, DEFAULT_BACKOFF_MAX_MS, () => 0)).toBe(0);
    }
    expect(backoffDelay(3, 100, 10_000, () => 0.5)).toBe(400);
  });
});
