import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { isOwnerAlive, makeOwner, PROCESS_OWNER, processStartTime } from '../../src/core/owner.js';
import { containsPan } from '../../src/core/pan.js';

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid as number;
}

describe('owner identity and liveness', () => {
  it('this process, another owner object in it, and a running child are alive', () => {
    expect(isOwnerAlive(PROCESS_OWNER)).toBe(true);
    expect(isOwnerAlive(makeOwner())).toBe(true);
    const child = spawn('sleep', ['5']);
    try {
      expect(isOwnerAlive(makeOwner(child.pid as number))).toBe(true);
    } finally {
      child.kill();
    }
  });

  it('a process that exited is dead', async () => {
    expect(isOwnerAlive(makeOwner(await deadPid()))).toBe(false);
  });

  it('a reused pid (same pid, another start time) is not the owner', () => {
    const child = spawn('sleep', ['5']);
    try {
      const owner = makeOwner(child.pid as number);
      const earlierLife = { pid: owner.pid, token: owner.token.replace(/~\d*~/, '~1~') };
      expect(isOwnerAlive(earlierLife)).toBe(false);
      const ourPidEarlierLife = {
        pid: process.pid,
        token: PROCESS_OWNER.token.replace(/~\d*~/, '~1~'),
      };
      expect(isOwnerAlive(ourPidEarlierLife)).toBe(false);
    } finally {
      child.kill();
    }
  });

  it('an owner on another host is assumed alive (its pid means nothing here)', async () => {
    expect(isOwnerAlive({ pid: await deadPid(), token: 'other-host~1~abcdef' })).toBe(true);
  });

  it('tokens name host and start time and can never look like a card number', () => {
    expect(processStartTime(process.pid)).toMatch(/^\d+$/);
    for (let i = 0; i < 2000; i++) expect(containsPan(makeOwner().token)).toBe(false);
  });
});
