import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { Owner } from '../../src/core/journal-port.js';
import {
  isOwnerAlive,
  makeOwner,
  OWNER_STALE_AFTER_MS,
  processStartTime,
} from '../../src/core/owner.js';
import { containsPan } from '../../src/core/pan.js';

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid as number;
}

/** The owner with one part of its token replaced: 0 host, 1 boot, 2 pid namespace, 3 start time. */
function withPart(owner: Owner, index: number, value: string): Owner {
  const parts = owner.token.split('~');
  parts[index] = value;
  return { pid: owner.pid, token: parts.join('~') };
}

describe('owner identity and liveness', () => {
  const self = makeOwner();

  it('this service, another service object in this process, and a running child are alive', () => {
    expect(isOwnerAlive(self, self)).toBe(true);
    expect(isOwnerAlive(makeOwner(), self)).toBe(true);
    const child = spawn('sleep', ['5']);
    try {
      expect(isOwnerAlive(makeOwner(child.pid as number), self)).toBe(true);
    } finally {
      child.kill();
    }
  });

  it('a process that exited is dead', async () => {
    expect(isOwnerAlive(makeOwner(await deadPid()), self)).toBe(false);
  });

  it('a reused pid (same pid, another start time) is not the owner', () => {
    const child = spawn('sleep', ['5']);
    try {
      expect(isOwnerAlive(withPart(makeOwner(child.pid as number), 3, '1'), self)).toBe(false);
      expect(isOwnerAlive(withPart(makeOwner(), 3, '1'), self)).toBe(false);
    } finally {
      child.kill();
    }
  });

  it('an owner from an earlier boot is dead, even if its pid runs now', () => {
    expect(isOwnerAlive(withPart(makeOwner(), 1, 'earlierboot'), self)).toBe(false);
  });

  it('what cannot be checked, with no heartbeat on record, is assumed alive', async () => {
    const gone = makeOwner(await deadPid());
    expect(isOwnerAlive(withPart(gone, 0, 'other-host'), self)).toBe(true);
    expect(isOwnerAlive(withPart(gone, 2, '4026530000'), self)).toBe(true);
    expect(isOwnerAlive({ pid: gone.pid, token: 'not-a-token' }, self)).toBe(true);
  });

  it('tokens name host, boot, pid namespace and start time, and never look like a card number', () => {
    expect(processStartTime(process.pid)).toMatch(/^\d+$/);
    expect(self.token.split('~')).toHaveLength(5);
    for (let i = 0; i < 2000; i++) expect(containsPan(makeOwner().token)).toBe(false);
  });
});

describe('owners that cannot be checked directly: the heartbeat decides', () => {
  const self = makeOwner();
  const now = Date.now();

  it.each([
    ['another host', 0, 'other-host'],
    ['another pid namespace', 2, '4026530000'],
  ])(
    '%s: alive with a fresh heartbeat, gone after OWNER_STALE_AFTER_MS without one',
    async (_case, part, value) => {
      const owner = withPart(makeOwner(await deadPid()), part, value);
      expect(isOwnerAlive({ ...owner, heartbeatAt: now - 1_000 }, self, now)).toBe(true);
      expect(
        isOwnerAlive({ ...owner, heartbeatAt: now - OWNER_STALE_AFTER_MS - 1 }, self, now),
      ).toBe(false);
    },
  );

  it('a running pid whose start time is unknown: the heartbeat decides (a process already gone is gone)', async () => {
    const child = spawn('sleep', ['5']);
    try {
      const owner = withPart(makeOwner(child.pid as number), 3, '');
      expect(isOwnerAlive({ ...owner, heartbeatAt: now - 1_000 }, self, now)).toBe(true);
      expect(
        isOwnerAlive({ ...owner, heartbeatAt: now - OWNER_STALE_AFTER_MS - 1 }, self, now),
      ).toBe(false);
    } finally {
      child.kill();
    }
    expect(
      isOwnerAlive({ ...withPart(makeOwner(await deadPid()), 3, ''), heartbeatAt: now }, self, now),
    ).toBe(false);
  });

  it('a checkable owner is judged by its process, not its heartbeat', async () => {
    const gone = makeOwner(await deadPid());
    expect(isOwnerAlive({ ...gone, heartbeatAt: now }, self, now)).toBe(false);
    expect(
      isOwnerAlive({ ...makeOwner(), heartbeatAt: now - 10 * OWNER_STALE_AFTER_MS }, self, now),
    ).toBe(true);
  });
});
