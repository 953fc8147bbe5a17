import { existsSync, statSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { openPtyPair, type PtyPair } from '../../src/transports/pty.js';

const closers: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function ptyPair(options?: Parameters<typeof openPtyPair>[0]): Promise<PtyPair> {
  const pair = await openPtyPair(options);
  closers.push(() => pair.close());
  return pair;
}

describe('pty pairs made with socat', () => {
  it('gives two distinct /dev/pts devices that exist', async () => {
    const pair = await ptyPair();
    expect(pair.posPath).toMatch(/^\/dev\/pts\/\d+$/);
    expect(pair.terminalPath).toMatch(/^\/dev\/pts\/\d+$/);
    expect(pair.posPath).not.toBe(pair.terminalPath);
    expect(statSync(pair.posPath).isCharacterDevice()).toBe(true);
    expect(statSync(pair.terminalPath).isCharacterDevice()).toBe(true);
  });

  it('close() stops socat and both devices disappear; a second close() is a no-op', async () => {
    const pair = await ptyPair();
    await pair.close();
    expect(existsSync(pair.posPath)).toBe(false);
    expect(existsSync(pair.terminalPath)).toBe(false);
    await pair.close();
  });

  it('two pairs at once get four different devices', async () => {
    const a = await ptyPair();
    const b = await ptyPair();
    expect(new Set([a.posPath, a.terminalPath, b.posPath, b.terminalPath]).size).toBe(4);
  });

  it('an already-aborted signal → ABORTED before socat is started', async () => {
    await expect(openPtyPair({ signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'ABORTED',
    });
  });

  it('socat missing from PATH → INVALID_INPUT saying how to install it', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      await expect(openPtyPair()).rejects.toMatchObject({
        code: 'INVALID_INPUT',
        message: 'socat is not installed: apt-get install socat',
      });
    } finally {
      process.env.PATH = path;
    }
  });
});
