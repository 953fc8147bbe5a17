import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  acquirePidLock,
  isHolderAlive,
  PID_LOCK_WRITE_GRACE_MS,
  readPidLock,
} from '../../src/connector/pid-lock.js';
import { makeOwner } from '../../src/core/owner.js';
import { tempDir } from '../helpers.js';

/** The pid of a process that has run and exited. */
const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid as number;

describe('the pid lock file', () => {
  it('is created holding the pid and owner token; a second taker is refused and told the holder; release removes it', async () => {
    const path = join(tempDir('lock-'), 'x.lock');
    const owner = makeOwner();
    const first = await acquirePidLock(path, owner);
    expect(first).toMatchObject({ acquired: true, tookOver: undefined });
    expect(readFileSync(path, 'utf8')).toBe(`${process.pid}\n${owner.token}\n`);
    expect(readPidLock(path)).toEqual({
      holder: { pid: process.pid, token: owner.token },
      alive: true,
    });
    expect(await acquirePidLock(path, makeOwner())).toEqual({
      acquired: false,
      holder: { pid: process.pid, token: owner.token },
    });
    if (first.acquired) first.release();
    expect(existsSync(path)).toBe(false);
    expect(readPidLock(path)).toBeUndefined();
  });

  it('a lock whose pid is dead is taken over, with or without a token, and says whose it was', async () => {
    for (const content of [`${deadPid()}\n`, `${deadPid()}\nsomehost~x~1~2~abc\n`]) {
      const path = join(tempDir('lock-stale-'), 'x.lock');
      writeFileSync(path, content);
      const pid = Number(content.split('\n')[0]);
      expect(readPidLock(path)?.alive).toBe(false);
      const lock = await acquirePidLock(path);
      expect(lock).toMatchObject({ acquired: true, tookOver: { pid } });
      expect(readFileSync(path, 'utf8').startsWith(`${process.pid}\n`)).toBe(true);
    }
  });

  it('a live pid of another process life (pid reused, or an earlier boot) is stale: the token decides', () => {
    const [host, boot, namespace] = makeOwner().token.split('~');
    expect(isHolderAlive({ pid: process.pid })).toBe(true);
    expect(isHolderAlive({ pid: process.pid, token: makeOwner().token })).toBe(true);
    // Same pid, another start time: not this process.
    expect(
      isHolderAlive({ pid: process.pid, token: [host, boot, namespace, '1', 'abc'].join('~') }),
    ).toBe(boot === '');
    expect(isHolderAlive({ pid: deadPid() })).toBe(false);
  });

  it('an empty lock file (its creator between create and write) is held for the grace period, stale after it', async () => {
    const path = join(tempDir('lock-empty-'), 'x.lock');
    writeFileSync(path, '');
    expect(await acquirePidLock(path)).toEqual({ acquired: false, holder: undefined });
    const old = (Date.now() - PID_LOCK_WRITE_GRACE_MS - 1_000) / 1000;
    utimesSync(path, old, old);
    expect(await acquirePidLock(path)).toMatchObject({ acquired: true });
  });

  it('many takers of one stale lock at once: exactly one gets it', async () => {
    const path = join(tempDir('lock-race-'), 'x.lock');
    writeFileSync(path, `${deadPid()}\n`);
    const results = await Promise.all(
      Array.from({ length: 8 }, () => acquirePidLock(path, makeOwner())),
    );
    expect(results.filter((result) => result.acquired)).toHaveLength(1);
    expect(existsSync(`${path}.break`)).toBe(false);
  });
});
