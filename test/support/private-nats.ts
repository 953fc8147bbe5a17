import { spawn, type ChildProcess } from 'node:child_process';
import { connect as tcpConnect } from 'node:net';
import { closedPort, waitForAsync } from '../helpers.js';

/** Where the machine's nats-server binary is (the cluster tests' NATS). */
export const NATS_SERVER_BINARY = '/usr/sbin/nats-server';

/**
 * A private NATS server a test may stop and start again on the same port: never the machine's
 * shared one, which other tests use at the same time.
 */
export class PrivateNats {
  private child: ChildProcess | undefined;

  private constructor(readonly port: number) {}

  /** Starts one on a free port; `cleanups` gets its kill. */
  static async start(cleanups: (() => Promise<void> | void)[]): Promise<PrivateNats> {
    const nats = new PrivateNats(await closedPort());
    cleanups.push(() => nats.kill());
    await nats.start();
    return nats;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** (Re)starts the server on its port; resolves once it accepts connections. */
  async start(): Promise<void> {
    const child = spawn(NATS_SERVER_BINARY, ['-a', '127.0.0.1', '-p', String(this.port)], {
      stdio: 'ignore',
    });
    this.child = child;
    await waitForAsync(
      () =>
        new Promise<boolean>((resolve) => {
          const socket = tcpConnect(this.port, '127.0.0.1');
          socket.once('connect', () => {
            socket.destroy();
            resolve(true);
          });
          socket.once('error', () => resolve(false));
        }),
      15_000,
      'nats-server up',
    );
  }

  /** SIGKILL (no goodbye to the clients); resolves once it is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const closed = new Promise((resolve) => child.once('close', resolve));
    child.kill('SIGKILL');
    await closed;
  }
}
