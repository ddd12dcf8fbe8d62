/**
 * The supervised LISTEN connection. A notification is only a hint that the journal
 * has something new; the dispatcher's poll runs underneath, so a lost connection or
 * a missed notification costs latency, never an event. After every (re)connect the
 * dispatcher is woken, because changes may have committed while nobody listened.
 */
import pg from 'pg';
import type { Waiter } from '../../journal/types.js';
import type { DaemonEventBus } from '../../observability/events.js';
import { describeError } from '../../util/errors.js';
import { delay, jitter, type WakeSignal } from '../../util/wake.js';

const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 10_000;
/** A query on the LISTEN connection this often detects a half-open TCP connection. */
const PING_INTERVAL_MS = 15_000;

export class PgWaker implements Waiter {
  private client: pg.Client | undefined;
  private readonly stopController = new AbortController();
  private running: Promise<void> | undefined;
  private connectedOnce = false;
  /** True while LISTEN is in place. */
  connected = false;
  /** True while this connection holds the wait lock (writers then notify). */
  marked = false;
  otherWaiting = false;

  constructor(
    private readonly clientConfig: pg.ClientConfig,
    private readonly sql: { readonly listen: string; readonly tryWaitLock: string; readonly releaseWaitLock: string; readonly waitLockKey: string },
    private readonly wake: WakeSignal,
    private readonly bus: DaemonEventBus,
  ) {}

  async markWaiting(): Promise<boolean> {
    if (this.marked) return true;
    const client = this.client;
    if (!this.connected || !client) return false;
    try {
      // Prepared once per connection: a busy router marks and clears the wait often
      // (parsing the statement each time cost ~100 µs of the database's CPU).
      const r = await client.query<{ ok: boolean; other_waits: boolean }>({
        name: 'adl_try_wait_lock',
        text: this.sql.tryWaitLock,
        values: [this.sql.waitLockKey],
      });
      // The connection may have been replaced meanwhile; a lock on a dead one is gone.
      this.marked = r.rows[0]?.ok === true && client === this.client && this.connected;
      this.otherWaiting = !this.marked && r.rows[0]?.other_waits === true;
    } catch {
      this.marked = false;
      this.otherWaiting = false;
    }
    return this.marked;
  }

  async clearWaiting(): Promise<void> {
    if (!this.marked) return;
    this.marked = false;
    await this.client
      ?.query({ name: 'adl_release_wait_lock', text: this.sql.releaseWaitLock, values: [this.sql.waitLockKey] })
      .catch(() => undefined);
  }

  start(): void {
    this.running ??= this.supervise();
  }

  async stop(): Promise<void> {
    this.stopController.abort();
    await this.client?.end().catch(() => undefined);
    await this.running;
  }

  private async supervise(): Promise<void> {
    const signal = this.stopController.signal;
    let backoff = RECONNECT_MIN_MS;
    while (!signal.aborted) {
      const client = new pg.Client({ ...this.clientConfig, application_name: `${this.clientConfig.application_name ?? 'app-db-listener'}:listen` });
      this.client = client;
      const lost = new Promise<unknown>((resolve) => {
        client.on('error', resolve);
        client.on('end', () => resolve(new Error('connection ended')));
      });
      try {
        await client.connect();
        client.on('notification', () => this.wake.notify());
        await client.query(this.sql.listen);
        this.connected = true;
        this.bus.emit('listen:connected', { reconnect: this.connectedOnce });
        this.connectedOnce = true;
        backoff = RECONNECT_MIN_MS;
        this.wake.notify();
        const reason = await this.watch(client, lost, signal);
        if (signal.aborted) break;
        throw reason;
      } catch (err) {
        this.connected = false;
        this.marked = false;
        client.removeAllListeners('notification');
        await client.end().catch(() => undefined);
        if (signal.aborted) break;
        const wait = jitter(backoff);
        this.bus.emit('listen:lost', { error: describeError(err), retryInMs: Math.round(wait) });
        await delay(wait, signal);
        backoff = Math.min(backoff * 2, RECONNECT_MAX_MS);
      }
    }
    this.connected = false;
  }

  /** Resolves with the reason the connection is gone; pings to find half-open sockets. */
  private async watch(client: pg.Client, lost: Promise<unknown>, signal: AbortSignal): Promise<unknown> {
    for (;;) {
      const tick = delay(PING_INTERVAL_MS, signal).then(() => 'tick' as const);
      const first = await Promise.race([lost, tick]);
      if (first !== 'tick') return first;
      if (signal.aborted) return undefined;
      const ping = client.query('SELECT 1').then(
        () => 'ok' as const,
        (err: unknown) => err,
      );
      const timeout = delay(PING_INTERVAL_MS, signal).then(() => new Error('LISTEN connection did not answer a ping'));
      const result = await Promise.race([ping, timeout, lost]);
      if (result !== 'ok') return result;
    }
  }
}
